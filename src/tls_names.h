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

/* x25519, secp256r1 (P-256, prime256v1), secp384r1 (P-384),
 * secp521r1 (P-521).  Returns an mbedtls_ecp_group_id, or 0 (NONE). */
int tls_curve_id(const char *name);
const char *tls_curve_name(int id);
const char *tls_curve_valid_names(void);
/* Default order, terminated by 0 (MBEDTLS_ECP_DP_NONE). */
const int *tls_curve_defaults(void);

#endif
