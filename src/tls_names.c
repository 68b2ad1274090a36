/* SPDX-License-Identifier: BSD-2-Clause */
#include "autoconf.h"
/* tls_names.c - cipher-suite and curve names as operators write them,
 * mapped to mbedTLS identifiers.  Only constant tables live here. */

#include <ctype.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include <mbedtls/ecp.h>
#include <mbedtls/ssl_ciphersuites.h>

#include "tls_compat.h"
#include "tls_names.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Only ECDHE key exchange with an AEAD cipher: forward secrecy, and no
 * CBC-mode MAC-then-encrypt. */
struct tls_cipher {
    int id;
    const char *openssl;        /* ECDHE-RSA-AES128-GCM-SHA256 */
    const char *iana;           /* TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256; with
                                 * '-' for '_' it is also the mbedTLS name */
};

static const struct tls_cipher ciphers[] = {
    { MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
      "ECDHE-ECDSA-AES128-GCM-SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" },
    { MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
      "ECDHE-RSA-AES128-GCM-SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" },
    { MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
      "ECDHE-ECDSA-AES256-GCM-SHA384", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" },
    { MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
      "ECDHE-RSA-AES256-GCM-SHA384", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" },
    { MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
      "ECDHE-ECDSA-CHACHA20-POLY1305", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256" },
    { MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
      "ECDHE-RSA-CHACHA20-POLY1305", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" },
};

/* Same order as the table above. */
static const char cipher_valid_names[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256, ECDHE-RSA-AES128-GCM-SHA256, "
    "ECDHE-ECDSA-AES256-GCM-SHA384, ECDHE-RSA-AES256-GCM-SHA384, "
    "ECDHE-ECDSA-CHACHA20-POLY1305, ECDHE-RSA-CHACHA20-POLY1305";

/* Server preference: ChaCha20-Poly1305 first, because Debian's mbedTLS
 * runs it faster than AES-GCM; ECDSA before RSA within each cipher. */
static const int cipher_defaults[] = {
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    0
};

struct tls_curve {
    int id;
    const char *name;
    const char *aliases[2];
};

/* IANA TLS group ids (RFC 8446 4.2.7), the same numbers on every mbedTLS
 * version; tls_compat.h turns them into the library's own form. */
static const struct tls_curve curves[] = {
    { 29, "x25519", { "curve25519", "X25519" } },
    { 23, "secp256r1", { "P-256", "prime256v1" } },
    { 24, "secp384r1", { "P-384", NULL } },
    { 25, "secp521r1", { "P-521", NULL } },
};

static const char curve_valid_names[] = "x25519, secp256r1, secp384r1, secp521r1";

static const int curve_defaults[] = { 29, 23, 24, 0 };

/* TLS 1.3 suites, by their RFC 8446 names (OpenSSL uses the same); the
 * ids are the IANA numbers, which are also mbedTLS 3.6's. */
static const struct tls_cipher suites13[] = {
    { 0x1301, "TLS_AES_128_GCM_SHA256", "TLS1-3-AES-128-GCM-SHA256" },
    { 0x1302, "TLS_AES_256_GCM_SHA384", "TLS1-3-AES-256-GCM-SHA384" },
    { 0x1303, "TLS_CHACHA20_POLY1305_SHA256", "TLS1-3-CHACHA20-POLY1305-SHA256" },
};

static const char suite13_valid_names[] =
    "TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256";

/* OpenSSL's order.  It is only a set: mbedTLS 3.6 takes the client's first
 * choice among the suites allowed (ssl_tls13_select_ciphersuite()). */
static const int suite13_defaults[] = { 0x1301, 0x1303, 0x1302, 0 };

/* Case and '_' versus '-' do not matter in cipher names. */
static int
cipher_char(char ch)
{
    return ch == '_' ? '-' : toupper((unsigned char)ch);
}

static int
cipher_name_eq(const char *a, const char *b)
{
    for (; *a != '\0' && *b != '\0'; a++, b++) {
        if (cipher_char(*a) != cipher_char(*b))
            return 0;
    }
    return *a == *b;
}

/* "MBEDTLS_TLS_ECDHE_..." (the macro name) is the IANA name with a prefix. */
static const char *
cipher_strip_prefix(const char *name)
{
    static const char prefix[] = "MBEDTLS-";
    size_t i;

    for (i = 0; i < sizeof(prefix) - 1; i++) {
        if (name[i] == '\0' || cipher_char(name[i]) != prefix[i])
            return name;
    }
    return name + i;
}

/* Both suite tables: the first column by its name, the second also with
 * the "MBEDTLS_" of a macro name. */
static int
suite_id(const struct tls_cipher *t, size_t n, const char *name)
{
    const char *bare = cipher_strip_prefix(name);

    for (size_t i = 0; i < n; i++) {
        if (cipher_name_eq(name, t[i].openssl) || cipher_name_eq(bare, t[i].iana))
            return t[i].id;
    }
    return 0;
}

static const char *
suite_name(const struct tls_cipher *t, size_t n, int id)
{
    for (size_t i = 0; i < n; i++) {
        if (t[i].id == id)
            return t[i].openssl;
    }
    return NULL;
}

int
tls_cipher_id(const char *name)
{
    return suite_id(ciphers, ARRAY_LEN(ciphers), name);
}

const char *
tls_cipher_name(int id)
{
    return suite_name(ciphers, ARRAY_LEN(ciphers), id);
}

const char *
tls_cipher_valid_names(void)
{
    return cipher_valid_names;
}

const int *
tls_cipher_defaults(void)
{
    return cipher_defaults;
}

static int
curve_matches(const struct tls_curve *c, const char *name)
{
    if (strcasecmp(name, c->name) == 0)
        return 1;
    for (size_t i = 0; i < ARRAY_LEN(c->aliases); i++) {
        if (c->aliases[i] != NULL && strcasecmp(name, c->aliases[i]) == 0)
            return 1;
    }
    return 0;
}

int
tls_curve_id(const char *name)
{
    for (size_t i = 0; i < ARRAY_LEN(curves); i++) {
        if (curve_matches(&curves[i], name))
            return curves[i].id;
    }
    return 0;
}

const char *
tls_curve_name(int id)
{
    for (size_t i = 0; i < ARRAY_LEN(curves); i++) {
        if (curves[i].id == id)
            return curves[i].name;
    }
    return NULL;
}

const char *
tls_curve_valid_names(void)
{
    return curve_valid_names;
}

const int *
tls_curve_defaults(void)
{
    return curve_defaults;
}

/* The second column of suites13 holds mbedTLS's own spelling. */
int
tls_suite13_id(const char *name)
{
    return suite_id(suites13, ARRAY_LEN(suites13), name);
}

const char *
tls_suite13_name(int id)
{
    return suite_name(suites13, ARRAY_LEN(suites13), id);
}

const char *
tls_suite13_valid_names(void)
{
    return suite13_valid_names;
}

const int *
tls_suite13_defaults(void)
{
    return suite13_defaults;
}

int
tls_max_minor(void)
{
    return TLS_COMPAT_MAX_MINOR;
}

/* Every alert of the TLS registry (RFC 5246 7.2, RFC 8446 6, and the
 * RFCs that added to it), with what it means when the client sends it. */
static const struct {
    int code;
    const char *name;
    const char *from_client;
} alerts[] = {
    { 0, "close_notify", "it is closing the connection" },
    { 10, "unexpected_message", "it received a message it did not expect at that point" },
    { 20, "bad_record_mac", "a record from us failed its integrity check" },
    { 21, "decryption_failed", "a record from us could not be decrypted" },
    { 22, "record_overflow", "a record from us was too long" },
    { 30, "decompression_failure", "a record from us could not be decompressed" },
    { 40, "handshake_failure", "it found no acceptable set of security parameters" },
    { 41, "no_certificate", "it has no certificate to send (SSL 3.0)" },
    { 42, "bad_certificate", "it rejected this certificate (corrupt, or a bad signature)" },
    { 43, "unsupported_certificate", "it does not support this certificate's type" },
    { 44, "certificate_revoked", "it says this certificate was revoked" },
    { 45, "certificate_expired", "it says this certificate has expired (or is not valid "
      "until later)" },
    { 46, "certificate_unknown", "it does not accept this certificate (often: an untrusted "
      "issuer or a name that does not match)" },
    { 47, "illegal_parameter", "a field of our handshake was out of range or inconsistent" },
    { 48, "unknown_ca", "it does not trust this certificate's issuer" },
    { 49, "access_denied", "it refuses to go on (its access control)" },
    { 50, "decode_error", "it could not decode one of our messages" },
    { 51, "decrypt_error", "a signature or Finished check of ours failed for it" },
    { 52, "too_many_cids_requested", "we asked for too many connection IDs" },
    { 60, "export_restriction", "export restrictions forbid it (obsolete)" },
    { 70, "protocol_version", "it does not accept the protocol version we chose" },
    { 71, "insufficient_security", "it requires stronger security than we offered" },
    { 80, "internal_error", "it failed for a reason of its own" },
    { 86, "inappropriate_fallback", "it saw a protocol downgrade it did not ask for" },
    { 90, "user_canceled", "it gave up the handshake" },
    { 100, "no_renegotiation", "it refuses to renegotiate" },
    { 109, "missing_extension", "a required extension was missing from our handshake" },
    { 110, "unsupported_extension", "we sent an extension it did not offer" },
    { 111, "certificate_unobtainable", "it could not fetch a certificate from a URL" },
    { 112, "unrecognized_name", "it does not recognise the server name" },
    { 113, "bad_certificate_status_response", "it rejected our OCSP status response" },
    { 114, "bad_certificate_hash_value", "a certificate hash did not match" },
    { 115, "unknown_psk_identity", "it knows no such pre-shared key" },
    { 116, "certificate_required", "it required a certificate that was not sent" },
    { 120, "no_application_protocol", "no ALPN protocol is common to it and this listener" },
    { 121, "ech_required", "it requires Encrypted Client Hello" },
};

const char *
tls_alert_name(int code)
{
    for (size_t i = 0; i < ARRAY_LEN(alerts); i++)
        if (alerts[i].code == code)
            return alerts[i].name;
    return NULL;
}

const char *
tls_alert_from_client(int code)
{
    for (size_t i = 0; i < ARRAY_LEN(alerts); i++)
        if (alerts[i].code == code)
            return alerts[i].from_client;
    return NULL;
}

unsigned
tls_suite_slot(int id)
{
    for (size_t i = 0; i < ARRAY_LEN(ciphers); i++)
        if (ciphers[i].id == id)
            return (unsigned)i;
    for (size_t i = 0; i < ARRAY_LEN(suites13); i++)
        if (suites13[i].id == id)
            return (unsigned)(ARRAY_LEN(ciphers) + i);
    return TLS_SUITE_SLOTS - 1;
}

const char *
tls_suite_slot_name(unsigned slot)
{
    if (slot < ARRAY_LEN(ciphers))
        return ciphers[slot].iana;
    if (slot - ARRAY_LEN(ciphers) < ARRAY_LEN(suites13))
        return suites13[slot - ARRAY_LEN(ciphers)].openssl;
    return "other";
}

_Static_assert(ARRAY_LEN(ciphers) + ARRAY_LEN(suites13) + 1 == TLS_SUITE_SLOTS,
               "TLS_SUITE_SLOTS counts every suite plus one for the rest");
