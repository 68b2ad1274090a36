/* SPDX-License-Identifier: BSD-2-Clause */
/* tls.c - mbedTLS configuration per listener and the per-connection TLS
 * session driven on a non-blocking socket. */
#include "autoconf.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/sha256.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_cache.h>
#include <mbedtls/version.h>
#include <mbedtls/x509_crl.h>

#include "files.h"
#include "log.h"
#include "tls.h"
#include "tls_cert.h"
#include "tls_compat.h"
#include "tls_hello.h"
#include "tls_names.h"
#include "tls_sni.h"
#include "tls_ticket.h"

struct tls_shared {
    atomic_uint refs;                   /* generations using it */
    struct tls_tickets *tickets;        /* NULL when tickets are off */
    mbedtls_ssl_cache_context cache;    /* locked inside mbedTLS */
    int cache_on;
};

struct tls_listener {
    const struct config_listener *lc;
    mbedtls_ssl_config conf;
    struct tls_cert *certs;
    size_t n_certs;
    unsigned versions;          /* TLS_HELLO_V() set this listener accepts */
    const int *suites12;        /* the config's lists, for error messages */
    const int *suites13;
    struct sni_table *sni;
    mbedtls_x509_crt ca;
    mbedtls_x509_crl crl;
    int has_crl;
    const char **alpn;
};

#define TLS_MAX_GROUPS 8          /* more than tls_names.c knows */

struct tls_ctx {
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    struct tls_ticket_user tickets;
    int *suites;                /* TLS 1.3 then TLS 1.2, 0-terminated */
    tls_compat_group groups[TLS_MAX_GROUPS + 1];
    struct tls_listener *ls;
    size_t n_ls;
};

/* Socket bytes are read in one gulp of up to this much, so a record costs
 * one recv() instead of two (mbedTLS asks for the 5-byte header, then the
 * body).  Covers a full 16 KiB record plus its header and AEAD overhead. */
#define TLS_RBUF_SIZE (16384 + 256 + 5)

/* mbedTLS sends every handshake message as soon as it is written: seven
 * send() calls for one full handshake, each a loopback/NIC round of its own.
 * The bio collects a flight and sends it once mbedTLS waits for the peer,
 * as OpenSSL's buffering BIO does.  A flight larger than this (a very long
 * chain) is sent in pieces. */
#define TLS_WBUF_MAX (64 * 1024)

struct tls_conn {
    mbedtls_ssl_context ssl;
    const struct tls_listener *l;
    int fd;
    unsigned char *rbuf;        /* read-ahead, only while it holds bytes */
    size_t roff, rlen;
    unsigned char *wbuf;        /* handshake flight, only during the handshake */
    size_t woff, wlen, wcap;
    bool rdrained;              /* the socket had nothing more: wait for epoll */
    bool hello_read;            /* the first bytes were looked at */
    bool early_data;            /* the ClientHello announced 0-RTT data */
    bool sni_sent;              /* the ClientHello has a server_name */
    bool sni_refused;           /* sni_strict: no certificate for that name */
    int sent_alert;             /* the fatal alert we sent; -1: none seen */
    int clear_alert;            /* a fatal alert the client sent in clear; -1: none */
    size_t rec_left;            /* of the client record being walked (handshake) */
    bool rec_lost;              /* a header was cut between reads: walk no more */
    unsigned offered;           /* versions the ClientHello offers; 0: unknown */
    unsigned no_suite;          /* versions for which it offers none of ours */
    int last_ret;               /* last mbedTLS error code */
    int sys_errno;              /* errno behind a NET_*_FAILED */
    bool truncated;             /* peer sent FIN without close_notify */
    bool established;
    bool full;                  /* the handshake sent our certificate */
    bool key_update;            /* the client sent a TLS 1.3 KeyUpdate */
    bool too_deep;              /* client chain exceeded verify_depth */
    struct tls_peer *peer;      /* client certificate, when one was sent */
    char sni[256];
};

/* ---- bio: the raw non-blocking socket ---------------------------- */

static int
tls_sock_send(struct tls_conn *t, const unsigned char *buf, size_t len)
{
    ssize_t n;

    do
        n = send(t->fd, buf, len, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n >= 0)
        return (int)n;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        return MBEDTLS_ERR_SSL_WANT_WRITE;
    t->sys_errno = errno;
    return MBEDTLS_ERR_NET_SEND_FAILED;
}

/* Sends what the handshake collected; 0 once all of it is out. */
static int
tls_wflush(struct tls_conn *t)
{
    while (t->woff < t->wlen) {
        int n = tls_sock_send(t, t->wbuf + t->woff, t->wlen - t->woff);

        if (n < 0)
            return n;
        t->woff += (size_t)n;
    }
    t->woff = t->wlen = 0;
    return 0;
}

static int
tls_wbuf_append(struct tls_conn *t, const unsigned char *buf, size_t len)
{
    if (t->wlen + len > t->wcap) {
        size_t cap = t->wcap ? t->wcap * 2 : 4096;
        unsigned char *nb;

        while (cap < t->wlen + len)
            cap *= 2;
        if ((nb = realloc(t->wbuf, cap)) == NULL)
            return MBEDTLS_ERR_SSL_ALLOC_FAILED;
        t->wbuf = nb;
        t->wcap = cap;
    }
    memcpy(t->wbuf + t->wlen, buf, len);
    t->wlen += len;
    return (int)len;
}

/* mbedTLS hands the bio one record at a time.  A plain-text fatal alert
 * (a whole TLS 1.2 handshake before ChangeCipherSpec, and every refusal of
 * a ClientHello) says what we told the client. */
static void
tls_note_alert(struct tls_conn *t, const unsigned char *buf, size_t len)
{
    if (len == 7 && buf[0] == MBEDTLS_SSL_MSG_ALERT && buf[3] == 0 && buf[4] == 2 &&
        buf[5] == MBEDTLS_SSL_ALERT_LEVEL_FATAL)
        t->sent_alert = buf[6];
}

static int
tls_bio_send(void *ctx, const unsigned char *buf, size_t len)
{
    struct tls_conn *t = ctx;
    int ret;

    if (!t->established)
        tls_note_alert(t, buf, len);
    if (t->established && t->wlen == 0)
        return tls_sock_send(t, buf, len);
    if (t->wlen + len > TLS_WBUF_MAX && (ret = tls_wflush(t)) != 0)
        return ret;
    if (len > TLS_WBUF_MAX)
        return tls_sock_send(t, buf, len);
    return tls_wbuf_append(t, buf, len);
}

static size_t
tls_rbuf_take(struct tls_conn *t, unsigned char *buf, size_t len)
{
    size_t n = t->rlen - t->roff < len ? t->rlen - t->roff : len;

    memcpy(buf, t->rbuf + t->roff, n);
    t->roff += n;
    if (t->roff == t->rlen) {       /* idle connections hold no read-ahead */
        free(t->rbuf);
        t->rbuf = NULL;
        t->roff = t->rlen = 0;
    }
    return n;
}

/* What the first bytes offer, kept only as far as an error message needs. */
static void
tls_hello_note(struct tls_conn *t)
{
    struct tls_hello h;

    t->hello_read = true;
    t->offered = tls_hello_read(t->rbuf, t->rlen, &h);
    t->early_data = h.early_data;
    t->sni_sent = h.sni;
    if ((t->offered & TLS_HELLO_V(3)) && !tls_hello_offers_suite(&h, t->l->suites12))
        t->no_suite |= TLS_HELLO_V(3);
    if ((t->offered & TLS_HELLO_V(4)) && !tls_hello_offers_suite(&h, t->l->suites13))
        t->no_suite |= TLS_HELLO_V(4);
}

/* The client's records are walked as they arrive during the handshake:
 * a client that rejects our certificate before it has keys (OpenSSL in
 * TLS 1.3) sends its alert in clear text, which mbedTLS, expecting an
 * encrypted record, reports as a bad MAC, and a reset may follow. */
static void
tls_scan_records(struct tls_conn *t, const unsigned char *p, size_t n)
{
    while (n > 0 && !t->rec_lost) {
        size_t k = t->rec_left < n ? t->rec_left : n;

        p += k;
        n -= k;
        t->rec_left -= k;
        if (n == 0)
            return;
        if (n < 5) {
            t->rec_lost = true;
            return;
        }
        if (p[0] == MBEDTLS_SSL_MSG_ALERT && p[3] == 0 && p[4] == 2 && n >= 7 &&
            p[5] == MBEDTLS_SSL_ALERT_LEVEL_FATAL)
            t->clear_alert = p[6];
        t->rec_left = (size_t)(p[3] << 8 | p[4]);
        p += 5;
        n -= 5;
    }
}

/* A short read means the socket is empty for now: the next read waits for
 * epoll (level-triggered, so nothing is missed) instead of paying a
 * recv() that would only say EAGAIN. */
static int
tls_bio_recv(void *ctx, unsigned char *buf, size_t len)
{
    struct tls_conn *t = ctx;
    ssize_t n;

    if (t->rlen > t->roff)
        return (int)tls_rbuf_take(t, buf, len);
    if (t->rdrained)
        return MBEDTLS_ERR_SSL_WANT_READ;
    if (t->rbuf == NULL && (t->rbuf = malloc(TLS_RBUF_SIZE)) == NULL)
        return MBEDTLS_ERR_SSL_ALLOC_FAILED;
    do
        n = recv(t->fd, t->rbuf, TLS_RBUF_SIZE, 0);
    while (n < 0 && errno == EINTR);
    if (n > 0) {
        t->rdrained = (size_t)n < TLS_RBUF_SIZE;
        t->rlen = (size_t)n;
        if (!t->hello_read)
            tls_hello_note(t);
        if (!t->established)
            tls_scan_records(t, t->rbuf, t->rlen);
        return (int)tls_rbuf_take(t, buf, len);
    }
    free(t->rbuf);
    t->rbuf = NULL;
    if (n == 0)
        return 0;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        t->rdrained = true;
        return MBEDTLS_ERR_SSL_WANT_READ;
    }
    t->sys_errno = errno;
    return MBEDTLS_ERR_NET_RECV_FAILED;
}

void
tls_readable(struct tls_conn *t)
{
    t->rdrained = false;
}

/* ---- SNI and client certificates ----------------------------------- */

/* Client-chosen text goes into log lines: anything that could end a
 * field, a quoted value or the line itself becomes '?', so a client can
 * never forge a log line. */
static void
tls_log_safe(char *s, bool allow_space)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f || c == '"' || c == '\\' || (c == ' ' && !allow_space))
            *s = '?';
    }
}

/* Exact name, then wildcard; every certificate of the name is offered and
 * mbedTLS picks the one the client supports (ECDSA or RSA). */
static int
tls_sni_cb(void *p, mbedtls_ssl_context *ssl, const unsigned char *name, size_t len)
{
    const struct tls_listener *l = p;
    struct tls_conn *t = tls_compat_bio(ssl);
    const struct sni_entry *e;

    /* TLS 1.3's HelloRetryRequest brings a second ClientHello and a second
     * call; the certificates offered the first time are still set. */
    if (t->sni[0] != '\0')
        return 0;

    if (len >= sizeof(t->sni))
        return -1;              /* longer than a DNS name can be */
    memcpy(t->sni, name, len);
    t->sni[len] = '\0';
    tls_log_safe(t->sni, false);
    e = sni_table_find(l->sni, (const char *)name, len);
    if (e == NULL && l->lc->sni_strict)
        t->sni_refused = true;
    if (e == NULL)
        return l->lc->sni_strict ? -1 : 0;
    for (unsigned i = 0; i < e->n; i++)
        if (mbedtls_ssl_set_hs_own_cert(ssl, &l->certs[e->idx[i]].crt,
                                        &l->certs[e->idx[i]].key) != 0)
            return -1;
    return 0;
}

/* Per connection, so a failure can say the chain was too long.  Enforces
 * verify_depth the way OpenSSL counts it: the trusted CA may sit
 * at most that many steps above the client certificate. */
static int
tls_verify_cb(void *p, mbedtls_x509_crt *crt, int depth, uint32_t *flags)
{
    struct tls_conn *t = p;

    (void)crt;
    if ((unsigned)depth > t->l->lc->client_auth.verify_depth) {
        *flags |= MBEDTLS_X509_BADCERT_OTHER;
        t->too_deep = true;
    }
    return 0;
}

/* A client CA or CRL file, through files_read() like every file the
 * config names. */
static int
tls_load_pem(struct tls_listener *l, const struct config *cfg, struct config_errors *errs,
             const char *what, const char *file, bool crl)
{
    struct file_buf b;
    char msg[160];
    int ret = files_read(file, &b);

    if (ret != 0) {
        config_errors_add(errs, cfg->path, l->lc->pos, "listener %s: cannot read client_auth "
                          "%s %s: %s", l->lc->name, what, file, files_strerror(-ret));
        return -1;
    }
    ret = crl ? mbedtls_x509_crl_parse(&l->crl, b.data, files_parse_len(&b))
              : mbedtls_x509_crt_parse(&l->ca, b.data, files_parse_len(&b));
    files_free(&b);
    if (ret != 0) {
        mbedtls_strerror(ret, msg, sizeof(msg));
        config_errors_add(errs, cfg->path, l->lc->pos, "listener %s: cannot load client_auth "
                          "%s %s: %s", l->lc->name, what, file, msg);
        return -1;
    }
    return 0;
}

static int
tls_client_auth_setup(struct tls_listener *l, const struct config *cfg,
                      struct config_errors *errs)
{
    const struct config_listener *lc = l->lc;

    if (lc->client_auth.mode == CLIENT_AUTH_NONE)
        return 0;
    if (tls_load_pem(l, cfg, errs, "ca", lc->client_auth.ca_file, false) != 0)
        return -1;
    if (lc->client_auth.crl_file != NULL) {
        if (tls_load_pem(l, cfg, errs, "crl", lc->client_auth.crl_file, true) != 0)
            return -1;
        l->has_crl = 1;
    }
    mbedtls_ssl_conf_authmode(&l->conf, lc->client_auth.mode == CLIENT_AUTH_REQUIRED
                                            ? MBEDTLS_SSL_VERIFY_REQUIRED
                                            : MBEDTLS_SSL_VERIFY_OPTIONAL);
    mbedtls_ssl_conf_ca_chain(&l->conf, &l->ca, l->has_crl ? &l->crl : NULL);
    return 0;
}

/* ---- listener set-up ----------------------------------------------- */

/* Without SNI a client gets the first certificate, and any other
 * certificate for the same name (its RSA/ECDSA twin). */
static int
tls_default_certs(struct tls_listener *l)
{
    const char *first = l->certs[0].n_names ? l->certs[0].names[0] : NULL;

    if (l->lc->sni_strict)
        return 0;
    for (size_t i = 0; i < l->n_certs; i++) {
        struct tls_cert *c = &l->certs[i];
        if (i > 0 && (first == NULL || c->n_names == 0 || strcmp(c->names[0], first) != 0))
            continue;
        if (mbedtls_ssl_conf_own_cert(&l->conf, &c->crt, &c->key) != 0)
            return -1;
    }
    return 0;
}

static int
tls_sni_build(struct tls_listener *l, const struct config *cfg, struct config_errors *errs)
{
    l->sni = sni_table_new();
    if (l->sni == NULL)
        return -1;
    for (size_t i = 0; i < l->n_certs; i++) {
        for (size_t j = 0; j < l->certs[i].n_names; j++) {
            int rc = sni_table_add(l->sni, l->certs[i].names[j], (unsigned)i);
            if (rc == SNI_ADD_NOMEM)
                return -1;
            if (rc == SNI_ADD_FULL)
                config_errors_add(errs, cfg->path, l->lc->certs[i].pos, "name %s has more "
                                  "than %d certificates", l->certs[i].names[j],
                                  SNI_MAX_CERTS_PER_NAME);
            else if (rc == SNI_ADD_BAD_NAME)
                config_errors_add(errs, cfg->path, l->lc->certs[i].pos, "certificate %s: DNS "
                                  "name \"%.300s\" cannot be matched against SNI (empty, a "
                                  "bare \"*.\", or longer than 255 bytes)",
                                  l->lc->certs[i].cert_file, l->certs[i].names[j]);
        }
    }
    return 0;
}

static void
tls_conf_session(struct tls_listener *l, struct tls_ctx *ctx, struct tls_shared *sh)
{
    if (sh->tickets != NULL)
        tls_tickets_conf(&l->conf, &ctx->tickets);
    if (sh->cache_on)
        mbedtls_ssl_conf_session_cache(&l->conf, &sh->cache, mbedtls_ssl_cache_get,
                                       mbedtls_ssl_cache_set);
}

/* mbedTLS wants const char **; the config owns the strings. */
static int
tls_alpn_setup(struct tls_listener *l)
{
    size_t n = 0;

    while (l->lc->alpn[n] != NULL)
        n++;
    l->alpn = calloc(n + 1, sizeof(*l->alpn));
    if (l->alpn == NULL)
        return -1;
    for (size_t i = 0; i < n; i++)
        l->alpn[i] = l->lc->alpn[i];
    return mbedtls_ssl_conf_alpn_protocols(&l->conf, l->alpn);
}

static int
tls_conf_setup(struct tls_listener *l, struct tls_ctx *ctx, struct tls_shared *sh,
               const struct config *cfg)
{
    mbedtls_ssl_config *conf = &l->conf;

    if (mbedtls_ssl_config_defaults(conf, MBEDTLS_SSL_IS_SERVER,
                                    MBEDTLS_SSL_TRANSPORT_STREAM,
                                    MBEDTLS_SSL_PRESET_DEFAULT) != 0)
        return -1;
    mbedtls_ssl_conf_rng(conf, mbedtls_ctr_drbg_random, &ctx->drbg);
    tls_compat_versions(conf, cfg->tls.min_version, cfg->tls.max_version);
    for (int m = cfg->tls.min_version; m <= cfg->tls.max_version; m++)
        l->versions |= TLS_HELLO_V(m);
    l->suites12 = cfg->tls.ciphersuites;
    l->suites13 = cfg->tls.suites13;
    mbedtls_ssl_conf_ciphersuites(conf, ctx->suites);
    tls_compat_groups(conf, ctx->groups);
    mbedtls_ssl_conf_renegotiation(conf, MBEDTLS_SSL_RENEGOTIATION_DISABLED);
    mbedtls_ssl_conf_legacy_renegotiation(conf, MBEDTLS_SSL_LEGACY_NO_RENEGOTIATION);
    mbedtls_ssl_conf_extended_master_secret(conf, MBEDTLS_SSL_EXTENDED_MS_ENABLED);
    mbedtls_ssl_conf_encrypt_then_mac(conf, MBEDTLS_SSL_ETM_ENABLED);
    mbedtls_ssl_conf_authmode(conf, MBEDTLS_SSL_VERIFY_NONE);
    mbedtls_ssl_conf_sni(conf, tls_sni_cb, l);
    if (l->lc->alpn != NULL && tls_alpn_setup(l) != 0)
        return -1;
    tls_conf_session(l, ctx, sh);
    return tls_default_certs(l);
}

static int
tls_listener_load(struct tls_listener *l, struct tls_ctx *ctx, struct tls_shared *sh,
                  const struct config *cfg, size_t li, struct config_errors *errs, int warn)
{
    const struct config_listener *lc = &cfg->listeners[li];
    size_t before = errs->n;

    l->lc = lc;
    mbedtls_ssl_config_init(&l->conf);
    mbedtls_x509_crt_init(&l->ca);
    mbedtls_x509_crl_init(&l->crl);
    if (lc->redirect_to_https)
        return 0;                       /* plain HTTP: no TLS at all */
    l->certs = calloc(lc->n_certs, sizeof(*l->certs));
    if (l->certs == NULL)
        return -1;
    for (size_t i = 0; i < lc->n_certs; i++, l->n_certs++)
        tls_cert_load(&l->certs[i], cfg, &lc->certs[i], errs, warn, &ctx->drbg);
    if (errs->n != before || tls_sni_build(l, cfg, errs) != 0 || errs->n != before)
        return -1;
    if (tls_conf_setup(l, ctx, sh, cfg) != 0) {
        config_errors_add(errs, cfg->path, lc->pos, "listener %s: cannot set up TLS",
                          lc->name);
        return -1;
    }
    /* After tls_conf_setup(): mbedtls_ssl_config_defaults() resets the
     * authentication mode and CA chain. */
    return tls_client_auth_setup(l, cfg, errs);
}

static void
tls_listener_free(struct tls_listener *l)
{
    mbedtls_ssl_config_free(&l->conf);
    for (size_t i = 0; i < l->n_certs; i++)
        tls_cert_free(&l->certs[i]);
    free(l->certs);
    sni_table_free(l->sni);
    mbedtls_x509_crt_free(&l->ca);
    mbedtls_x509_crl_free(&l->crl);
    free(l->alpn);
}

/* ---- expiry, while running ----------------------------------------- */

unsigned
tls_ctx_warn_expiry(const struct tls_ctx *ctx)
{
    time_t now = time(NULL);
    unsigned n = 0;

    for (size_t i = 0; i < ctx->n_ls; i++)
        for (size_t j = 0; j < ctx->ls[i].n_certs; j++)
            n += tls_cert_warn_expiry(&ctx->ls[i].certs[j].crt,
                                      ctx->ls[i].lc->certs[j].cert_file, now);
    return n;
}

size_t
tls_ctx_certs(const struct tls_ctx *ctx, struct tls_cert_info *out, size_t max)
{
    size_t n = 0;

    for (size_t i = 0; i < ctx->n_ls; i++)
        for (size_t j = 0; j < ctx->ls[i].n_certs; j++, n++)
            if (n < max) {
                tls_cert_describe(&ctx->ls[i].certs[j], &out[n]);
                out[n].lidx = i;
                out[n].file = ctx->ls[i].lc->certs[j].cert_file;
            }
    return n;
}

/* ---- process-wide and per-worker contexts ------------------------- */

struct tls_shared *
tls_shared_new(const struct config *cfg, const struct tls_shared *prev,
               struct config_errors *errs)
{
    struct tls_shared *sh = calloc(1, sizeof(*sh));

    if (sh == NULL)
        return NULL;
    atomic_init(&sh->refs, 1);
    mbedtls_ssl_cache_init(&sh->cache);
    if (cfg->tls.session_cache.size > 0) {
        mbedtls_ssl_cache_set_max_entries(&sh->cache, (int)cfg->tls.session_cache.size);
        mbedtls_ssl_cache_set_timeout(&sh->cache,
                                      (int)(cfg->tls.session_cache.timeout_ms / 1000));
        sh->cache_on = 1;
    }
    if (cfg->tls.tickets.enabled) {
        sh->tickets = tls_tickets_new(cfg, prev != NULL ? prev->tickets : NULL, errs);
        if (sh->tickets == NULL) {
            tls_shared_free(sh);
            return NULL;
        }
    }
    return sh;
}

struct tls_shared *
tls_shared_ref(struct tls_shared *sh)
{
    atomic_fetch_add(&sh->refs, 1);
    return sh;
}

/* Random ticket keys and the session cache live only in memory: keeping
 * them across a reload keeps resumption working for every client. */
bool
tls_shared_reusable(const struct config *a, const struct config *b)
{
    return a->tls.tickets.enabled == b->tls.tickets.enabled &&
           a->tls.tickets.key_file == NULL && b->tls.tickets.key_file == NULL &&
           a->tls.tickets.rotate_ms == b->tls.tickets.rotate_ms &&
           a->tls.tickets.lifetime_ms == b->tls.tickets.lifetime_ms &&
           a->tls.session_cache.size == b->tls.session_cache.size &&
           a->tls.session_cache.timeout_ms == b->tls.session_cache.timeout_ms;
}

void
tls_shared_free(struct tls_shared *sh)
{
    if (sh == NULL || atomic_fetch_sub(&sh->refs, 1) != 1)
        return;
    tls_tickets_free(sh->tickets);
    mbedtls_ssl_cache_free(&sh->cache);
    free(sh);
}

static int
tls_rng_init(struct tls_ctx *ctx)
{
    static const char pers[] = "tlsterm";

    mbedtls_entropy_init(&ctx->entropy);
    mbedtls_ctr_drbg_init(&ctx->drbg);
    return mbedtls_ctr_drbg_seed(&ctx->drbg, mbedtls_entropy_func, &ctx->entropy,
                                 (const unsigned char *)pers, sizeof(pers) - 1);
}

static size_t
ids_len(const int *ids)
{
    size_t n = 0;

    while (ids[n] != 0)
        n++;
    return n;
}

/* mbedTLS takes one list for both versions: it skips the suites of a
 * version it does not negotiate.  2.28 gets the TLS 1.2 list alone. */
static int
tls_suites_setup(struct tls_ctx *ctx, const struct config *cfg)
{
    /* max_version 1.3 passed the config check only where the library has it */
    size_t n13 = cfg->tls.max_version >= 4 ? ids_len(cfg->tls.suites13) : 0;
    size_t n12 = cfg->tls.min_version <= 3 ? ids_len(cfg->tls.ciphersuites) : 0;

    ctx->suites = calloc(n13 + n12 + 1, sizeof(*ctx->suites));
    if (ctx->suites == NULL)
        return -1;
    memcpy(ctx->suites, cfg->tls.suites13, n13 * sizeof(int));
    memcpy(ctx->suites + n13, cfg->tls.ciphersuites, n12 * sizeof(int));
    return 0;
}

static void
tls_groups_setup(struct tls_ctx *ctx, const struct config *cfg)
{
    size_t n = 0;

    for (size_t i = 0; cfg->tls.curves[i] != 0 && n < TLS_MAX_GROUPS; i++) {
        tls_compat_group g = tls_compat_group_from_iana((uint16_t)cfg->tls.curves[i]);
        if (g != TLS_COMPAT_GROUP_END)
            ctx->groups[n++] = g;
    }
    ctx->groups[n] = TLS_COMPAT_GROUP_END;
}

struct tls_ctx *
tls_ctx_new(const struct config *cfg, struct tls_shared *sh, struct config_errors *errs,
            int warn)
{
    struct tls_ctx *ctx = calloc(1, sizeof(*ctx));
    size_t before = errs->n;

    if (ctx == NULL)
        return NULL;
    if (tls_rng_init(ctx) != 0)
        config_errors_add(errs, cfg->path, (struct config_pos){0, 0},
                          "cannot seed the random number generator");
    if (tls_suites_setup(ctx, cfg) != 0)
        config_errors_add(errs, cfg->path, (struct config_pos){0, 0}, "out of memory");
    tls_groups_setup(ctx, cfg);
    ctx->tickets.ring = sh->tickets;
    ctx->tickets.drbg = &ctx->drbg;
    ctx->ls = calloc(cfg->n_listeners ? cfg->n_listeners : 1, sizeof(*ctx->ls));
    for (size_t i = 0; ctx->ls != NULL && errs->n == before && i < cfg->n_listeners; i++) {
        ctx->n_ls++;
        if (tls_listener_load(&ctx->ls[i], ctx, sh, cfg, i, errs, warn) != 0 &&
            errs->n == before)
            config_errors_add(errs, cfg->path, cfg->listeners[i].pos, "out of memory");
    }
    if (ctx->ls == NULL || errs->n != before) {
        tls_ctx_free(ctx);
        return NULL;
    }
    return ctx;
}

void
tls_ctx_free(struct tls_ctx *ctx)
{
    if (ctx == NULL)
        return;
    for (size_t i = 0; i < ctx->n_ls; i++)
        tls_listener_free(&ctx->ls[i]);
    free(ctx->ls);
    free(ctx->suites);
    mbedtls_ctr_drbg_free(&ctx->drbg);
    mbedtls_entropy_free(&ctx->entropy);
    free(ctx);
}

/* ---- sessions ------------------------------------------------------ */

struct tls_conn *
tls_conn_new(struct tls_ctx *ctx, size_t lidx, int fd)
{
    struct tls_conn *t = calloc(1, sizeof(*t));

    if (t == NULL)
        return NULL;
    t->fd = fd;
    t->l = &ctx->ls[lidx];
    t->sent_alert = -1;
    t->clear_alert = -1;
    mbedtls_ssl_init(&t->ssl);
    if (mbedtls_ssl_setup(&t->ssl, &ctx->ls[lidx].conf) != 0) {
        mbedtls_ssl_free(&t->ssl);
        free(t);
        return NULL;
    }
    mbedtls_ssl_set_bio(&t->ssl, t, tls_bio_send, tls_bio_recv, NULL);
    tls_compat_set_user(&t->ssl, t);
    if (t->l->lc->client_auth.mode != CLIENT_AUTH_NONE)
        mbedtls_ssl_set_verify(&t->ssl, tls_verify_cb, t);
    return t;
}

void
tls_conn_free(struct tls_conn *t)
{
    if (t == NULL)
        return;
    mbedtls_ssl_free(&t->ssl);
    free(t->rbuf);
    free(t->wbuf);
    free(t->peer);
    free(t);
}

static enum tls_status
tls_map(struct tls_conn *t, int ret)
{
    switch (ret) {
    case MBEDTLS_ERR_SSL_WANT_READ:
        return TLS_WANT_READ;
    case MBEDTLS_ERR_SSL_WANT_WRITE:
        return TLS_WANT_WRITE;
    case MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY:
        t->last_ret = ret;
        return TLS_EOF;
    case MBEDTLS_ERR_SSL_CONN_EOF:
        t->last_ret = ret;
        t->truncated = true;
        return TLS_EOF;
    default:
        t->last_ret = ret;
        return TLS_ERROR;
    }
}

static void
tls_peer_record(struct tls_conn *t)
{
    const mbedtls_x509_crt *crt = mbedtls_ssl_get_peer_cert(&t->ssl);
    uint32_t flags = mbedtls_ssl_get_verify_result(&t->ssl);
    unsigned char hash[32];
    struct tls_peer *p;

    if (t->l->lc->client_auth.mode == CLIENT_AUTH_NONE || crt == NULL)
        return;
    if ((p = calloc(1, sizeof(*p))) == NULL)
        return;
    mbedtls_x509_dn_gets(p->subject, sizeof(p->subject), &crt->subject);
    mbedtls_x509_dn_gets(p->issuer, sizeof(p->issuer), &crt->issuer);
    tls_log_safe(p->subject, true);
    tls_log_safe(p->issuer, true);
    mbedtls_x509_serial_gets(p->serial, sizeof(p->serial), &crt->serial);
    tls_compat_sha256(crt->raw.p, crt->raw.len, hash);
    for (int i = 0; i < 32; i++)
        snprintf(p->sha256 + 2 * i, 3, "%02x", hash[i]);
    if (flags == 0)
        snprintf(p->verify, sizeof(p->verify), "ok");
    else if (t->too_deep)
        snprintf(p->verify, sizeof(p->verify), "chain longer than verify_depth %u",
                 t->l->lc->client_auth.verify_depth);
    else
        mbedtls_x509_crt_verify_info(p->verify, sizeof(p->verify), "", flags);
    p->verify[strcspn(p->verify, "\n")] = '\0';
    t->peer = p;
}

/* The collected flight goes out when mbedTLS waits for the client, when
 * the handshake is over, and (best effort) when it failed, so the client
 * still gets the alert that says why. */
static int
tls_handshake_flush(struct tls_conn *t, int ret)
{
    int f;

    if (ret != 0 && ret != MBEDTLS_ERR_SSL_WANT_READ) {
        if (ret != MBEDTLS_ERR_SSL_WANT_WRITE)
            (void)tls_wflush(t);
        return ret;
    }
    f = tls_wflush(t);
    return f != 0 ? f : ret;
}

/* Stepwise, so that whether the handshake sends a certificate (a full
 * handshake; a resumed one does not) is seen on the way. */
enum tls_status
tls_handshake(struct tls_conn *t, bool light_only)
{
    int ret = 0;

    while (!tls_compat_hs_over(&t->ssl) && ret == 0) {
        if (tls_compat_sent_certificate(&t->ssl))
            t->full = true;
        if (light_only && tls_compat_heavy_step(&t->ssl))
            return TLS_CRYPTO;      /* what was written waits in wbuf for the rest */
        ret = mbedtls_ssl_handshake_step(&t->ssl);
    }
    ret = tls_handshake_flush(t, ret);
    if (ret == 0) {
        t->established = true;
        free(t->wbuf);
        t->wbuf = NULL;
        t->wcap = 0;
        tls_peer_record(t);
        return TLS_OK;
    }
    /* A FIN during the handshake is a failed handshake, not a half-close. */
    if (ret == MBEDTLS_ERR_SSL_CONN_EOF) {
        t->last_ret = ret;
        return TLS_ERROR;
    }
    return tls_map(t, ret);
}

enum tls_status
tls_read(struct tls_conn *t, void *buf, size_t len, size_t *n)
{
    int ret = mbedtls_ssl_read(&t->ssl, buf, len);

    if (ret > 0) {
        *n = (size_t)ret;
        return TLS_OK;
    }
    if (ret == 0) {         /* 2.28 reports a bare FIN this way too */
        t->truncated = true;
        return TLS_EOF;
    }
    if (tls_compat_refused_key_update(&t->ssl, ret))
        t->key_update = true;
    return tls_map(t, ret);
}

enum tls_status
tls_write(struct tls_conn *t, const void *buf, size_t len, size_t *n)
{
    int ret = mbedtls_ssl_write(&t->ssl, buf, len);

    if (ret >= 0) {
        *n = (size_t)ret;
        return TLS_OK;
    }
    return tls_map(t, ret);
}

enum tls_status
tls_close_notify(struct tls_conn *t)
{
    int ret = mbedtls_ssl_close_notify(&t->ssl);

    return ret == 0 ? TLS_OK : tls_map(t, ret);
}

/* mbedTLS words a version or suite mismatch as "no ciphersuites in
 * common" or "handshake negotiation failed", and rejected 0-RTT data as a
 * bad MAC; what the ClientHello offered says which it was.  NULL: none. */
static const char *
tls_hello_error(const struct tls_conn *t, char *buf, size_t len)
{
    unsigned common = t->offered & t->l->versions;
    char offered[48], accepted[48];

    if (t->established || t->offered == 0)
        return NULL;
    if (common == 0) {
        snprintf(buf, len, "no shared protocol version: the client offers %s, this "
                 "listener accepts %s%s", tls_hello_describe(t->offered, offered,
                                                             sizeof(offered)),
                 tls_hello_describe(t->l->versions, accepted, sizeof(accepted)),
                 tls_max_minor() < 4 && (t->offered & TLS_HELLO_V(4))
                     ? " (mbedTLS " MBEDTLS_VERSION_STRING " has no TLS 1.3)" : "");
        return buf;
    }
    /* The newest common version is the one negotiated (mbedTLS does not
     * fall back to TLS 1.2 when TLS 1.3 finds no suite). */
    if ((t->no_suite & (common & TLS_HELLO_V(4) ? TLS_HELLO_V(4) : TLS_HELLO_V(3))) != 0) {
        snprintf(buf, len, "no shared cipher suite: the client offers none of %s",
                 common & TLS_HELLO_V(4) ? "tls.ciphersuites (TLS 1.3)" : "tls.ciphers (TLS 1.2)");
        return buf;
    }
#ifndef TLS_COMPAT_SKIPS_EARLY_DATA
    if (t->early_data && t->last_ret == MBEDTLS_ERR_SSL_INVALID_MAC) {
        snprintf(buf, len, "the client sent TLS 1.3 early data (0-RTT) that no ticket of "
                 "ours allowed, and this mbedTLS cannot skip it (built without "
                 "MBEDTLS_SSL_EARLY_DATA)");
        return buf;
    }
#endif
    return NULL;
}

/* A refusal of ours that the listener's config explains.  NULL: none. */
static const char *
tls_refusal(const struct tls_conn *t, char *buf, size_t len)
{
    if (t->established)
        return NULL;
    if (t->sni_refused)
        snprintf(buf, len, "the client asked for SNI name %s, which no certificate of "
                 "listener %s serves (sni_strict)", t->sni, t->l->lc->name);
    else if (t->l->lc->sni_strict && t->offered != 0 && !t->sni_sent)
        snprintf(buf, len, "the client sent no SNI and listener %s is sni_strict",
                 t->l->lc->name);
    else
        return NULL;
    return buf;
}

/* A fatal alert from the client, in its registry name and what it says. */
static const char *
tls_alert_received(const struct tls_conn *t, char *buf, size_t len)
{
    int a = t->last_ret == MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE
                ? tls_compat_received_alert(&t->ssl) : t->clear_alert;
    const char *name = tls_alert_name(a);

    if (a < 0)
        snprintf(buf, len, "the client sent a fatal alert");
    else if (name == NULL)
        snprintf(buf, len, "the client sent fatal alert %d (not a known alert)", a);
    else
        snprintf(buf, len, "the client sent alert %s: %s", name, tls_alert_from_client(a));
    return buf;
}

/* What mbedTLS says, with the certificate check's details. */
static void
tls_library_error(const struct tls_conn *t, char *buf, size_t len)
{
    char msg[160], why[200] = "";

    mbedtls_strerror(t->last_ret, msg, sizeof(msg));
    if (t->last_ret == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED && t->too_deep)
        snprintf(why, sizeof(why), ": the client's chain is longer than verify_depth %u",
                 t->l->lc->client_auth.verify_depth);
    else if (t->last_ret == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED) {
        mbedtls_x509_crt_verify_info(why, sizeof(why), ": ",
                                     mbedtls_ssl_get_verify_result(&t->ssl));
        why[strcspn(why, "\n")] = '\0';
    }
    snprintf(buf, len, "%s (-0x%04x)%s", msg, (unsigned)-t->last_ret, why);
}

/* "; we sent alert X" after the reason, when we know we sent one. */
static const char *
tls_with_sent_alert(const struct tls_conn *t, char *buf, size_t len)
{
    int a = t->sent_alert >= 0 ? t->sent_alert
                               : tls_compat_sent_alert(&t->ssl, t->last_ret);
    const char *name = tls_alert_name(a);
    size_t used = strlen(buf);

    if (name != NULL && used < len)
        snprintf(buf + used, len - used, "; we sent alert %s", name);
    return buf;
}

const char *
tls_last_error(struct tls_conn *t, char *buf, size_t len)
{
    if (!t->established && t->clear_alert >= 0 &&
        t->last_ret != MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE)
        return tls_alert_received(t, buf, len);     /* what a bad MAC or reset hides */
    if (t->sys_errno != 0)
        return strerror_r(t->sys_errno, buf, len);   /* GNU variant */
    if (t->last_ret == MBEDTLS_ERR_SSL_CONN_EOF)
        return "peer closed the connection";
    if (t->last_ret == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY)
        return "close_notify";
    if (t->last_ret == MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE)
        return tls_alert_received(t, buf, len);
    if (tls_hello_error(t, buf, len) != NULL || tls_refusal(t, buf, len) != NULL)
        return tls_with_sent_alert(t, buf, len);
    if (t->key_update)
        return "the client sent a TLS 1.3 KeyUpdate, which mbedTLS " MBEDTLS_VERSION_STRING
               " does not support (a known limitation; see tlsterm(8))";
    tls_library_error(t, buf, len);
    return t->established ? buf : tls_with_sent_alert(t, buf, len);
}

int
tls_eof_was_truncated(const struct tls_conn *t)
{
    return t->truncated;
}

const char *
tls_version(const struct tls_conn *t)
{
    return t && t->established ? mbedtls_ssl_get_version(&t->ssl) : "-";
}

unsigned
tls_suite_slot_of(const struct tls_conn *t)
{
    return tls_suite_slot(tls_compat_suite_id(&t->ssl));
}

unsigned
tls_version_slot(const struct tls_conn *t)
{
    return strcmp(tls_version(t), "TLSv1.3") == 0;
}

const char *
tls_cipher(const struct tls_conn *t)
{
    const char *c = t && t->established ? mbedtls_ssl_get_ciphersuite(&t->ssl) : NULL;

    return c ? c : "-";
}

const char *
tls_sni(const struct tls_conn *t)
{
    return t && t->sni[0] ? t->sni : "-";
}

const char *
tls_alpn(const struct tls_conn *t)
{
    const char *a = t && t->established ? mbedtls_ssl_get_alpn_protocol(&t->ssl) : NULL;

    return a ? a : "-";
}

bool
tls_resumed(const struct tls_conn *t)
{
    return t && t->established && !t->full;
}

bool
tls_key_update_refused(const struct tls_conn *t)
{
    return t && t->key_update;
}

const struct tls_peer *
tls_peer(const struct tls_conn *t)
{
    return t ? t->peer : NULL;
}

const char *
tls_peer_verify(const struct tls_conn *t)
{
    if (t == NULL || !t->established || t->l->lc->client_auth.mode == CLIENT_AUTH_NONE)
        return NULL;
    return t->peer ? t->peer->verify : "none";
}

/* The tuned build (src/mbedtls/build.sh) says so: its full handshakes cost
 * far less CPU than the packaged 3.6's, which matters when reading figures. */
const char *
tls_library_number(void)
{
    return MBEDTLS_VERSION_STRING;
}

const char *
tls_library_version(void)
{
#ifdef TLSTERM_MBEDTLS_TUNED
    return MBEDTLS_VERSION_STRING_FULL " (tlsterm's tuned build, src/mbedtls)";
#else
    return MBEDTLS_VERSION_STRING_FULL;
#endif
}

const char *
tls_library_protocols(void)
{
    return tls_max_minor() >= 4 ? "TLS 1.2, TLS 1.3" : "TLS 1.2 (this mbedTLS has no TLS 1.3)";
}

int
tls_global_init(void)
{
    return tls_compat_global_init();
}

void
tls_global_free(void)
{
    tls_compat_global_free();
}
