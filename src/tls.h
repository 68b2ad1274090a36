/* SPDX-License-Identifier: BSD-2-Clause */
/* tls.h - everything mbedTLS.
 *
 * tls_shared: what all workers of a process share (session-ticket keys,
 * session-ID cache); both are internally locked.
 * tls_ctx: one per worker thread (its own RNG, certificates, keys and
 * mbedtls_ssl_config), so no other mbedTLS object is shared between threads.
 * tls_conn: one connection's TLS session on a non-blocking socket. */
#ifndef TLSTERM_TLS_H
#define TLSTERM_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "config.h"

struct tls_shared;
struct tls_ctx;
struct tls_conn;

enum tls_status {
    TLS_OK = 0,
    TLS_WANT_READ,
    TLS_WANT_WRITE,
    TLS_EOF,            /* close_notify, or TCP FIN without one */
    TLS_ERROR,
    TLS_CRYPTO,         /* tls_handshake(t, true): the next step does public-key crypto */
};

/* A verified (or, in optional mode, presented) client certificate. */
struct tls_peer {
    char subject[256];
    char issuer[256];
    char serial[80];
    char sha256[65];            /* hex fingerprint of the DER */
    char verify[128];           /* "ok", "none" or why verification failed */
};

/* Reference counted: a reload may hand the same session state to the new
 * generation (see tls_shared_reusable); the last free releases it. */
/* prev (may be NULL): the running generation's, whose ticket keys that
 * left the key file are kept to decrypt (tls_ticket.h). */
struct tls_shared *tls_shared_new(const struct config *cfg, const struct tls_shared *prev,
                                  struct config_errors *errs);
struct tls_shared *tls_shared_ref(struct tls_shared *sh);
bool tls_shared_reusable(const struct config *old_cfg, const struct config *new_cfg);
void tls_shared_free(struct tls_shared *sh);

/* Loads every certificate and key of every listener.  On failure returns
 * NULL and adds one error per problem, positioned at the config entry.
 * warn: log load-time warnings (expiry soon...), once per generation. */
struct tls_ctx *tls_ctx_new(const struct config *cfg, struct tls_shared *sh,
                            struct config_errors *errs, int warn);
void tls_ctx_free(struct tls_ctx *ctx);
/* The expiry warnings of start-up again, for a long-running process:
 * every certificate of ctx that expires within TLS_CERT_EXPIRY_WARN_DAYS
 * or has expired.  Returns how many were warned about. */
unsigned tls_ctx_warn_expiry(const struct tls_ctx *ctx);
/* What the admin listener shows of each loaded certificate (the leaf). */
struct tls_cert_info {
    size_t lidx;                /* its listener */
    char names[512];            /* its DNS names, comma-separated */
    char serial[80];            /* hex, upper case */
    time_t not_after;
    const char *file;           /* the config's path; lives as long as ctx */
};
/* Up to max certificates of ctx into out (NULL with max 0: just count);
 * returns how many there are. */
size_t tls_ctx_certs(const struct tls_ctx *ctx, struct tls_cert_info *out, size_t max);
/* The negotiated suite's slot (tls_suite_slot()) and version (0: TLS 1.2,
 * 1: TLS 1.3), for the metrics; once the handshake is done. */
unsigned tls_suite_slot_of(const struct tls_conn *t);
unsigned tls_version_slot(const struct tls_conn *t);

struct tls_conn *tls_conn_new(struct tls_ctx *ctx, size_t lidx, int fd);
void tls_conn_free(struct tls_conn *t);

/* The event loop saw the socket readable: reads may call recv() again. */
void tls_readable(struct tls_conn *t);

/* light_only: stop with TLS_CRYPTO before a step that does ECDHE, a
 * signature or a certificate check, so the caller can run the rest where
 * it does not delay established connections (conn_hs.h). */
enum tls_status tls_handshake(struct tls_conn *t, bool light_only);
/* *n is set to the bytes moved when TLS_OK is returned. */
enum tls_status tls_read(struct tls_conn *t, void *buf, size_t len, size_t *n);
/* After TLS_WANT_WRITE, call again with the same buf and len. */
enum tls_status tls_write(struct tls_conn *t, const void *buf, size_t len, size_t *n);
enum tls_status tls_close_notify(struct tls_conn *t);

const char *tls_last_error(struct tls_conn *t, char *buf, size_t len);
int tls_eof_was_truncated(const struct tls_conn *t);
const char *tls_version(const struct tls_conn *t);   /* "-" before handshake */
const char *tls_cipher(const struct tls_conn *t);
const char *tls_sni(const struct tls_conn *t);       /* "-" when none */
const char *tls_alpn(const struct tls_conn *t);      /* "-" when none */
bool tls_resumed(const struct tls_conn *t);
/* NULL unless client_auth is on and the client sent a certificate. */
const struct tls_peer *tls_peer(const struct tls_conn *t);
/* "none", "ok" or the failure, for client_auth listeners; NULL otherwise. */
const char *tls_peer_verify(const struct tls_conn *t);

/* The client sent a TLS 1.3 KeyUpdate, which mbedTLS 3.6 cannot do. */
bool tls_key_update_refused(const struct tls_conn *t);

const char *tls_library_version(void);
/* "3.6.6" */
const char *tls_library_number(void);
/* "TLS 1.2 and TLS 1.3", or that TLS 1.3 is missing. */
const char *tls_library_protocols(void);
/* Once per process, before any other tls_* call and before threads:
 * mbedTLS 3.6's PSA crypto (TLS 1.3 runs on it). */
int tls_global_init(void);
void tls_global_free(void);

#endif
