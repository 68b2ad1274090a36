/* tls_compat.h - the few places where mbedTLS 2.28 and 3.x differ.
 * Everything version-specific goes here so that building against 3.6
 * (and getting TLS 1.3) is a configure switch, not a rewrite. */
#ifndef TLSTERM_TLS_COMPAT_H
#define TLSTERM_TLS_COMPAT_H

#include <mbedtls/version.h>
#include <mbedtls/ssl.h>

#if MBEDTLS_VERSION_MAJOR >= 3
#define TLS_COMPAT_V3 1
static inline int
tls_compat_hs_over(const mbedtls_ssl_context *ssl)
{
    return mbedtls_ssl_is_handshake_over(ssl);
}
/* 3.x keeps the resumption flag private; report full handshakes. */
static inline int
tls_compat_hs_resumed(const mbedtls_ssl_context *ssl)
{
    (void)ssl;
    return 0;
}
/* 3.x hides struct fields; the user-data slot replaces p_bio peeking. */
static inline void *
tls_compat_bio(const mbedtls_ssl_context *ssl)
{
    return mbedtls_ssl_get_user_data_p(ssl);
}
static inline void
tls_compat_set_user(mbedtls_ssl_context *ssl, void *p)
{
    mbedtls_ssl_set_user_data_p(ssl, p);
}
static inline void
tls_compat_min_tls12(mbedtls_ssl_config *conf)
{
    mbedtls_ssl_conf_min_tls_version(conf, MBEDTLS_SSL_VERSION_TLS1_2);
}
#define tls_compat_pk_parse_keyfile(pk, path, pw, rng, prng) \
    mbedtls_pk_parse_keyfile((pk), (path), (pw), (rng), (prng))
#define tls_compat_check_pair(pub, prv, rng, prng) \
    mbedtls_pk_check_pair((pub), (prv), (rng), (prng))
#else
#include <mbedtls/ssl_internal.h>
static inline int
tls_compat_hs_over(const mbedtls_ssl_context *ssl)
{
    return ssl->state == MBEDTLS_SSL_HANDSHAKE_OVER;
}
/* Valid only while the handshake runs: mbedTLS frees it at the end. */
static inline int
tls_compat_hs_resumed(const mbedtls_ssl_context *ssl)
{
    return ssl->handshake != NULL && ssl->handshake->resume;
}
/* 2.28 has no user-data slot, but its bio pointer is a public field. */
static inline void *
tls_compat_bio(const mbedtls_ssl_context *ssl)
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
tls_compat_min_tls12(mbedtls_ssl_config *conf)
{
    /* Debian's 2.28 still compiles in TLS 1.0/1.1: pin both ends to 1.2. */
    mbedtls_ssl_conf_min_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3,
                                 MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_max_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3,
                                 MBEDTLS_SSL_MINOR_VERSION_3);
}
#define tls_compat_pk_parse_keyfile(pk, path, pw, rng, prng) \
    mbedtls_pk_parse_keyfile((pk), (path), (pw))
#define tls_compat_check_pair(pub, prv, rng, prng) \
    mbedtls_pk_check_pair((pub), (prv))
#endif

#endif
