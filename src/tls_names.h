/* SPDX-License-Identifier: BSD-2-Clause */
/* tls_names.h - the cipher-suite and curve names operators write in a
 * config, mapped to mbedTLS identifiers.  Pure tables, no state. */
#ifndef TLSTERM_TLS_NAMES_H
#define TLSTERM_TLS_NAMES_H

#include <stddef.h>

/* Accepts OpenSSL names (ECDHE-RSA-AES128-GCM-SHA256), IANA names
 * (TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256) and mbedTLS names
 * (TLS-ECDHE-RSA-WITH-AES-128-GCM-SHA256), case-insensitively.
 * Returns the mbedTLS ciphersuite id, or 0 when unknown or not allowed
 * (only ECDHE key exchange with an AEAD cipher is allowed). */
int tls_cipher_id(const char *name);
/* OpenSSL-style name of an allowed id, or NULL. */
const char *tls_cipher_name(int id);
/* Comma-separated OpenSSL-style names, for error messages. */
const char *tls_cipher_valid_names(void);
/* Default server-preference order, 0-terminated. */
const int *tls_cipher_defaults(void);

/* The suites tlsterm can negotiate numbered 0..8 (TLS 1.2 ones by their
 * mbedTLS id, TLS 1.3 ones by IANA id, which mbedTLS uses too); 9 for any
 * other.  The name is the IANA one, for metric labels. */
#define TLS_SUITE_SLOTS 10
unsigned tls_suite_slot(int id);
const char *tls_suite_slot_name(unsigned slot);

/* x25519, secp256r1 (P-256, prime256v1), secp384r1 (P-384),
 * secp521r1 (P-521).  Returns the IANA TLS group id, or 0 when unknown. */
int tls_curve_id(const char *name);
const char *tls_curve_name(int id);
const char *tls_curve_valid_names(void);
/* Default order, 0-terminated. */
const int *tls_curve_defaults(void);

/* TLS 1.3 suites by their RFC 8446 names (TLS_AES_128_GCM_SHA256,
 * TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256), any case, '-'
 * or '_'.  Returns the IANA id (0x1301...), or 0 when unknown. */
int tls_suite13_id(const char *name);
const char *tls_suite13_name(int id);
const char *tls_suite13_valid_names(void);
const int *tls_suite13_defaults(void);

/* A TLS alert's registry name (unknown_ca, ...), or NULL when the code
 * is not a known alert; what it says when a client sends it, or NULL. */
const char *tls_alert_name(int code);
const char *tls_alert_from_client(int code);

/* The newest TLS version this build of mbedTLS can speak, as the minor
 * number (3 = TLS 1.2, 4 = TLS 1.3). */
int tls_max_minor(void);

#endif
