/* SPDX-License-Identifier: BSD-2-Clause */
/* tls_compat.h - the places where mbedTLS 2.28 and 3.6 differ.
 * Everything version-specific lives here; the rest of tlsterm is written
 * against the helpers below.  2.28 (Debian 12) speaks TLS 1.2 only;
 * 3.6 (Debian 13, or built from source) adds TLS 1.3.
 *
 * A few helpers read mbedTLS 3.x fields marked MBEDTLS_PRIVATE, because
 * 3.6 has no public accessor for them (whether a handshake resumed, which
 * post-handshake message was refused).  Each says why; all are read-only
 * and checked by the integration tests on both versions. */
#ifndef TLSTERM_TLS_COMPAT_H
#define TLSTERM_TLS_COMPAT_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>
#include <mbedtls/pk.h>
#include <mbedtls/rsa.h>
#include <mbedtls/sha256.h>
#include <mbedtls/ssl.h>
#include <mbedtls/version.h>

/* Workers share the session cache, and a worker's handshake thread and
 * relaying thread share its RNG (TLS 1.3 tickets are written after the
 * handshake): both rely on mbedTLS's own locks. */
#if !defined(MBEDTLS_THREADING_C)
#error "tlsterm needs mbedTLS built with MBEDTLS_THREADING_C (and MBEDTLS_THREADING_PTHREAD)"
#endif

#if MBEDTLS_VERSION_MAJOR >= 3
#define TLS_COMPAT_V3 1
#include <psa/crypto.h>
#if !(MBEDTLS_VERSION_NUMBER >= 0x03060600)
#error "mbedTLS 3.x older than 3.6.6 has known server-side TLS 1.3 bugs; use 3.6.6 or newer"
#endif
#if defined(MBEDTLS_SSL_PROTO_TLS1_3)
#define TLS_COMPAT_HAVE_TLS13 1
#endif
/* Without it (Debian's build), mbedTLS cannot skip the 0-RTT records of a
 * client it did not allow early data, and fails that handshake. */
#if defined(MBEDTLS_SSL_EARLY_DATA)
#define TLS_COMPAT_SKIPS_EARLY_DATA 1
#endif
#endif

#ifdef TLS_COMPAT_HAVE_TLS13
#define TLS_COMPAT_MAX_MINOR 4          /* TLS 1.3 */
#else
#define TLS_COMPAT_MAX_MINOR 3          /* TLS 1.2 */
#endif

/* Tickets carry wall-clock milliseconds between hosts (see below). */
static inline int64_t
tls_compat_wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The negotiated suite's id: 3.x has an accessor, 2.28's field is public. */
static inline int
tls_compat_suite_id(const mbedtls_ssl_context *ssl)
{
#ifdef TLS_COMPAT_V3
    return mbedtls_ssl_get_ciphersuite_id_from_ssl(ssl);
#else
    return ssl->session != NULL ? ssl->session->ciphersuite : 0;
#endif
}

#ifdef TLS_COMPAT_V3

/* TLS 1.3 in 3.6 runs on PSA crypto: initialised once, before threads. */
static inline int
tls_compat_global_init(void)
{
    return psa_crypto_init() == PSA_SUCCESS ? 0 : -1;
}

static inline void
tls_compat_global_free(void)
{
    mbedtls_psa_crypto_free();
}

static inline int
tls_compat_hs_over(mbedtls_ssl_context *ssl)
{
    return mbedtls_ssl_is_handshake_over(ssl);
}

/* 3.6 keeps the resumption flag in its private handshake struct.  Both
 * server state machines skip MBEDTLS_SSL_SERVER_CERTIFICATE exactly when
 * they resume (TLS 1.2 from ServerHello to ChangeCipherSpec, TLS 1.3 with
 * a PSK from EncryptedExtensions to Finished), so a handshake that never
 * reached that state was resumed.  Called after every handshake step. */
static inline bool
tls_compat_sent_certificate(const mbedtls_ssl_context *ssl)
{
    return ssl->MBEDTLS_PRIVATE(state) == MBEDTLS_SSL_SERVER_CERTIFICATE;
}

/* The next handshake step does public-key crypto: TLS 1.3's ServerHello
 * (key share and handshake secret) and CertificateVerify, TLS 1.2's
 * ServerKeyExchange and ClientKeyExchange, client certificate checks. */
static inline bool
tls_compat_heavy_step(const mbedtls_ssl_context *ssl)
{
    switch (ssl->MBEDTLS_PRIVATE(state)) {
    case MBEDTLS_SSL_SERVER_HELLO:
        return ssl->MBEDTLS_PRIVATE(tls_version) == MBEDTLS_SSL_VERSION_TLS1_3;
    case MBEDTLS_SSL_SERVER_KEY_EXCHANGE:
    case MBEDTLS_SSL_CLIENT_CERTIFICATE:
    case MBEDTLS_SSL_CLIENT_KEY_EXCHANGE:
    case MBEDTLS_SSL_CERTIFICATE_VERIFY:
    case MBEDTLS_SSL_CLIENT_CERTIFICATE_VERIFY:
        return true;
    default:
        return false;
    }
}

static inline void *
tls_compat_bio(mbedtls_ssl_context *ssl)
{
    return mbedtls_ssl_get_user_data_p(ssl);
}

static inline void
tls_compat_set_user(mbedtls_ssl_context *ssl, void *p)
{
    mbedtls_ssl_set_user_data_p(ssl, p);
}

/* minor: 3 = TLS 1.2, 4 = TLS 1.3. */
static inline void
tls_compat_versions(mbedtls_ssl_config *conf, int min_minor, int max_minor)
{
    mbedtls_ssl_conf_min_tls_version(conf, (mbedtls_ssl_protocol_version)(0x0300 | min_minor));
    mbedtls_ssl_conf_max_tls_version(conf, (mbedtls_ssl_protocol_version)(0x0300 | max_minor));
#ifdef TLS_COMPAT_HAVE_TLS13
    /* Resumption only with a fresh (EC)DHE exchange: forward secrecy even
     * for a resumed session, as OpenSSL's servers do by default. */
    mbedtls_ssl_conf_tls13_key_exchange_modes(conf,
                                              MBEDTLS_SSL_TLS1_3_KEY_EXCHANGE_MODE_EPHEMERAL_ALL);
#endif
#ifdef TLS_COMPAT_SKIPS_EARLY_DATA
    mbedtls_ssl_conf_early_data(conf, MBEDTLS_SSL_EARLY_DATA_DISABLED);    /* never 0-RTT */
#endif
}

/* The library's own form of a group list, built from IANA ids once per
 * worker context (mbedTLS keeps the pointer). */
typedef uint16_t tls_compat_group;
#define TLS_COMPAT_GROUP_END 0

static inline tls_compat_group
tls_compat_group_from_iana(uint16_t id)
{
    return id;
}

static inline void
tls_compat_groups(mbedtls_ssl_config *conf, const tls_compat_group *groups)
{
    mbedtls_ssl_conf_groups(conf, groups);
}

#define tls_compat_pk_parse_key(pk, key, len, pw, pwlen, rng, prng) \
    mbedtls_pk_parse_key((pk), (key), (len), (pw), (pwlen), (rng), (prng))
#define tls_compat_check_pair(pub, prv, rng, prng) \
    mbedtls_pk_check_pair((pub), (prv), (rng), (prng))
#define tls_compat_sha256(in, len, out) mbedtls_sha256((in), (len), (out), 0)

/* mbedTLS 3.6 stamps a ticket's session with mbedtls_ms_time(), which on
 * Linux is CLOCK_BOOTTIME: a stamp from another host (or from before a
 * reboot) means nothing here, and mbedTLS's own TLS 1.3 check compares it
 * with the age the client reports.  So the sealed ticket carries wall-clock
 * time, and an opened ticket gets this host's boot clock back. */
/* On a shallow copy that only mbedtls_ssl_session_save() reads. */
static inline void
tls_compat_ticket_to_wall(mbedtls_ssl_session *copy)
{
    mbedtls_ms_time_t *t = &copy->MBEDTLS_PRIVATE(ticket_creation_time);

    *t = (mbedtls_ms_time_t)tls_compat_wall_ms() - (mbedtls_ms_time() - *t);
}

/* Wall-clock milliseconds at which an opened ticket's session was made. */
static inline int
tls_compat_ticket_made_ms(mbedtls_ssl_session *s, int64_t *ms)
{
    mbedtls_ms_time_t t;

    if (mbedtls_ssl_session_get_ticket_creation_time(s, &t) != 0)
        return -1;
    *ms = (int64_t)t;
    return 0;
}

static inline void
tls_compat_ticket_from_wall(mbedtls_ssl_session *s, int64_t age_ms)
{
    s->MBEDTLS_PRIVATE(ticket_creation_time) = mbedtls_ms_time() - (mbedtls_ms_time_t)age_ms;
}

/* mbedTLS 3.6 answers a TLS 1.3 KeyUpdate with UNEXPECTED_MESSAGE: it has
 * no key update.  The decrypted message is still in its input buffer, which
 * is how the log can say what the client did instead of "unexpected
 * message".  24 = key_update (RFC 8446, 4). */
static inline bool
tls_compat_refused_key_update(const mbedtls_ssl_context *ssl, int ret)
{
    return ret == MBEDTLS_ERR_SSL_UNEXPECTED_MESSAGE &&
           ssl->MBEDTLS_PRIVATE(in_msgtype) == MBEDTLS_SSL_MSG_HANDSHAKE &&
           ssl->MBEDTLS_PRIVATE(in_msg) != NULL && ssl->MBEDTLS_PRIVATE(in_msg)[0] == 24;
}

/* After MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE the peer's alert is still the
 * last input message: [0] level, [1] description (RFC 8446, 6), already
 * decrypted.  3.6 has no accessor.  -1: no alert there. */
static inline int
tls_compat_received_alert(const mbedtls_ssl_context *ssl)
{
    if (ssl->MBEDTLS_PRIVATE(in_msgtype) != MBEDTLS_SSL_MSG_ALERT ||
        ssl->MBEDTLS_PRIVATE(in_msg) == NULL)
        return -1;
    return ssl->MBEDTLS_PRIVATE(in_msg)[1];
}

/* The fatal alert 3.6 sent for the error ret: most of its paths (all of
 * TLS 1.3's) record it with the error beside it before sending it; a
 * plain-text one is also seen on the wire (tls.c).  -1: not known. */
static inline int
tls_compat_sent_alert(const mbedtls_ssl_context *ssl, int ret)
{
    if (ret == 0 || ssl->MBEDTLS_PRIVATE(alert_reason) != ret)
        return -1;
    return ssl->MBEDTLS_PRIVATE(alert_type);
}

/* Raw signatures, for tests/bench/crypto_floor.c only. */
#define tls_compat_ecdsa_sign(k, md, h, hlen, sig, slen, rng, prng) \
    mbedtls_ecdsa_write_signature((k), (md), (h), (hlen), (sig), sizeof(sig), (slen), \
                                  (rng), (prng))
#define tls_compat_rsa_sign(k, rng, prng, md, hlen, h, sig) \
    mbedtls_rsa_pkcs1_sign((k), (rng), (prng), (md), (hlen), (h), (sig))
#define tls_compat_rsa_init(k) mbedtls_rsa_init(k)

#else /* mbedTLS 2.28 */
#include <mbedtls/ssl_internal.h>

static inline int
tls_compat_global_init(void)
{
    return 0;
}

static inline void
tls_compat_global_free(void)
{
}

static inline int
tls_compat_hs_over(mbedtls_ssl_context *ssl)
{
    return ssl->state == MBEDTLS_SSL_HANDSHAKE_OVER;
}

/* 2.28's state machine is the same as 3.6's here (see above). */
static inline bool
tls_compat_sent_certificate(const mbedtls_ssl_context *ssl)
{
    return ssl->state == MBEDTLS_SSL_SERVER_CERTIFICATE;
}

static inline bool
tls_compat_heavy_step(const mbedtls_ssl_context *ssl)
{
    switch (ssl->state) {
    case MBEDTLS_SSL_SERVER_KEY_EXCHANGE:
    case MBEDTLS_SSL_CLIENT_CERTIFICATE:
    case MBEDTLS_SSL_CLIENT_KEY_EXCHANGE:
    case MBEDTLS_SSL_CERTIFICATE_VERIFY:
        return true;
    default:
        return false;
    }
}

/* 2.28 has no user-data slot, but its bio pointer is a public field. */
static inline void *
tls_compat_bio(mbedtls_ssl_context *ssl)
{
    return ssl->p_bio;
}

static inline void
tls_compat_set_user(mbedtls_ssl_context *ssl, void *p)
{
    (void)ssl;
    (void)p;
}

static inline void
tls_compat_versions(mbedtls_ssl_config *conf, int min_minor, int max_minor)
{
    /* Debian's 2.28 still compiles in TLS 1.0/1.1: pin both ends. */
    mbedtls_ssl_conf_min_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3, min_minor);
    mbedtls_ssl_conf_max_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3, max_minor);
}

typedef mbedtls_ecp_group_id tls_compat_group;
#define TLS_COMPAT_GROUP_END MBEDTLS_ECP_DP_NONE

static inline tls_compat_group
tls_compat_group_from_iana(uint16_t id)
{
    const mbedtls_ecp_curve_info *i = mbedtls_ecp_curve_info_from_tls_id(id);

    return i != NULL ? i->grp_id : MBEDTLS_ECP_DP_NONE;
}

static inline void
tls_compat_groups(mbedtls_ssl_config *conf, const tls_compat_group *groups)
{
    mbedtls_ssl_conf_curves(conf, groups);
}

#define tls_compat_pk_parse_key(pk, key, len, pw, pwlen, rng, prng) \
    ((void)(rng), (void)(prng), mbedtls_pk_parse_key((pk), (key), (len), (pw), (pwlen)))
#define tls_compat_check_pair(pub, prv, rng, prng) \
    ((void)(rng), (void)(prng), mbedtls_pk_check_pair((pub), (prv)))
#define tls_compat_sha256(in, len, out) mbedtls_sha256_ret((in), (len), (out), 0)
#define tls_compat_ecdsa_sign(k, md, h, hlen, sig, slen, rng, prng) \
    mbedtls_ecdsa_write_signature((k), (md), (h), (hlen), (sig), (slen), (rng), (prng))
#define tls_compat_rsa_sign(k, rng, prng, md, hlen, h, sig) \
    mbedtls_rsa_pkcs1_sign((k), (rng), (prng), MBEDTLS_RSA_PRIVATE, (md), (unsigned)(hlen), \
                           (h), (sig))
#define tls_compat_rsa_init(k) mbedtls_rsa_init((k), MBEDTLS_RSA_PKCS_V15, 0)

/* 2.28's session start is already wall-clock seconds (time()). */
static inline void
tls_compat_ticket_to_wall(mbedtls_ssl_session *copy)
{
    (void)copy;
}

static inline void
tls_compat_ticket_from_wall(mbedtls_ssl_session *s, int64_t age_ms)
{
    (void)s;
    (void)age_ms;
}

static inline int
tls_compat_ticket_made_ms(mbedtls_ssl_session *s, int64_t *ms)
{
    if (s->start < 0 || (int64_t)s->start > INT64_MAX / 1000)
        return -1;
    *ms = (int64_t)s->start * 1000;
    return 0;
}

static inline bool
tls_compat_refused_key_update(const mbedtls_ssl_context *ssl, int ret)
{
    (void)ssl;
    (void)ret;
    return false;
}

/* As in 3.6 (above), with public fields. */
static inline int
tls_compat_received_alert(const mbedtls_ssl_context *ssl)
{
    if (ssl->in_msgtype != MBEDTLS_SSL_MSG_ALERT || ssl->in_msg == NULL)
        return -1;
    return ssl->in_msg[1];
}

/* 2.28 sends its alerts without recording them; the plain-text ones (all
 * of a TLS 1.2 handshake before ChangeCipherSpec) are seen on the wire. */
static inline int
tls_compat_sent_alert(const mbedtls_ssl_context *ssl, int ret)
{
    (void)ssl;
    (void)ret;
    return -1;
}
#endif

#endif
