/* tls.h - everything mbedTLS.  A tls_ctx belongs to one worker thread (its
 * own RNG, certificates and keys, so no mbedTLS object is ever shared
 * between threads); a tls_conn is one connection's TLS session, driven on a
 * non-blocking socket. */
#ifndef TLSTERM_TLS_H
#define TLSTERM_TLS_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct tls_ctx;
struct tls_conn;

enum tls_status {
    TLS_OK = 0,
    TLS_WANT_READ,
    TLS_WANT_WRITE,
    TLS_EOF,            /* close_notify, or TCP FIN without one */
    TLS_ERROR,
};

/* Loads every certificate and key of every listener.  On failure returns
 * NULL and adds one error per problem, positioned at the config entry. */
struct tls_ctx *tls_ctx_new(const struct config *cfg, struct config_errors *errs);
void tls_ctx_free(struct tls_ctx *ctx);

/* Allocates the session for listener number lidx on socket fd. */
struct tls_conn *tls_conn_new(struct tls_ctx *ctx, size_t lidx, int fd);
void tls_conn_free(struct tls_conn *t);

enum tls_status tls_handshake(struct tls_conn *t);
/* *n is set to the bytes moved when TLS_OK is returned. */
enum tls_status tls_read(struct tls_conn *t, void *buf, size_t len, size_t *n);
/* After TLS_WANT_WRITE, call again with the same buf and len. */
enum tls_status tls_write(struct tls_conn *t, const void *buf, size_t len, size_t *n);
enum tls_status tls_close_notify(struct tls_conn *t);

/* Human-readable reason of the last TLS_ERROR / TLS_EOF. */
const char *tls_last_error(struct tls_conn *t, char *buf, size_t len);
/* True when the peer ended with a bare TCP FIN (no close_notify). */
int tls_eof_was_truncated(const struct tls_conn *t);
const char *tls_version(const struct tls_conn *t);   /* "-" before handshake */
const char *tls_cipher(const struct tls_conn *t);
const char *tls_sni(const struct tls_conn *t);       /* "-" when none */

/* Versions of the libraries, for -V. */
const char *tls_library_version(void);

#endif
