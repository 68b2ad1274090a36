/* tls.c - mbedTLS set-up and the per-connection TLS session. */
#include "autoconf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/version.h>
#include <mbedtls/x509_crt.h>

#include "tls.h"
#include "tls_compat.h"

struct tls_cert {
    mbedtls_x509_crt crt;       /* leaf first, then the chain */
    mbedtls_pk_context key;     /* mbedtls_pk_free() zeroizes it */
};

struct tls_listener {
    mbedtls_ssl_config conf;
    struct tls_cert *certs;
    size_t n_certs;
};

struct tls_ctx {
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    struct tls_listener *ls;
    size_t n_ls;
};

struct tls_conn {
    mbedtls_ssl_context ssl;
    int fd;
    int last_ret;               /* last mbedTLS error code */
    int sys_errno;              /* errno behind a NET_*_FAILED */
    int truncated;              /* peer sent FIN without close_notify */
    int established;            /* handshake completed */
    char sni[256];
};

static void
tls_strerror(int ret, char *buf, size_t len)
{
    mbedtls_strerror(ret, buf, len);
}

/* ---- bio: the raw non-blocking socket ---------------------------- */

static int
tls_bio_send(void *ctx, const unsigned char *buf, size_t len)
{
    struct tls_conn *t = ctx;
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

static int
tls_bio_recv(void *ctx, unsigned char *buf, size_t len)
{
    struct tls_conn *t = ctx;
    ssize_t n;

    do
        n = recv(t->fd, buf, len, 0);
    while (n < 0 && errno == EINTR);
    if (n >= 0)
        return (int)n;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        return MBEDTLS_ERR_SSL_WANT_READ;
    t->sys_errno = errno;
    return MBEDTLS_ERR_NET_RECV_FAILED;
}

/* Records the requested name for logging and routing; any certificate
 * choice by name happens here later (SNI table). */
static int
tls_sni_cb(void *p, mbedtls_ssl_context *ssl, const unsigned char *name, size_t len)
{
    struct tls_conn *t = tls_compat_bio(ssl);

    (void)p;
    if (t == NULL || len == 0 || len >= sizeof(t->sni))
        return len >= sizeof(t->sni) ? -1 : 0;
    memcpy(t->sni, name, len);
    t->sni[len] = '\0';
    return 0;
}

/* ---- loading ------------------------------------------------------- */

static void
tls_add_err(struct config_errors *errs, const struct config *cfg,
            struct config_pos pos, const char *what, const char *file, int ret)
{
    char msg[256];

    tls_strerror(ret, msg, sizeof(msg));
    config_errors_add(errs, cfg->path, pos, "%s %s: %s", what, file, msg);
}

/* mbedTLS reports a missing file as "Read/write of file failed"; say
 * what the operator needs to know instead. */
static int
tls_file_readable(struct config_errors *errs, const struct config *cfg,
                  struct config_pos pos, const char *what, const char *file)
{
    FILE *f = fopen(file, "r");

    if (f != NULL) {
        fclose(f);
        return 0;
    }
    config_errors_add(errs, cfg->path, pos, "cannot read %s %s: %s", what, file,
                      strerror(errno));
    return -1;
}

static int
tls_cert_load(struct tls_cert *c, struct tls_ctx *ctx, const struct config *cfg,
              const struct config_cert *cc, struct config_errors *errs)
{
    int ret;

    (void)ctx;      /* the RNG is used by mbedTLS 3.x key parsing only */
    mbedtls_x509_crt_init(&c->crt);
    mbedtls_pk_init(&c->key);
    if (tls_file_readable(errs, cfg, cc->pos, "certificate", cc->cert_file) != 0 ||
        tls_file_readable(errs, cfg, cc->pos, "private key", cc->key_file) != 0)
        return -1;
    ret = mbedtls_x509_crt_parse_file(&c->crt, cc->cert_file);
    if (ret != 0) {
        tls_add_err(errs, cfg, cc->pos, "cannot load certificate", cc->cert_file, ret);
        return -1;
    }
    ret = tls_compat_pk_parse_keyfile(&c->key, cc->key_file, NULL,
                                      mbedtls_ctr_drbg_random, &ctx->drbg);
    if (ret == MBEDTLS_ERR_PK_PASSWORD_REQUIRED) {
        config_errors_add(errs, cfg->path, cc->pos,
                          "private key %s is encrypted; give an unencrypted key",
                          cc->key_file);
        return -1;
    }
    if (ret != 0) {
        tls_add_err(errs, cfg, cc->pos, "cannot load private key", cc->key_file, ret);
        return -1;
    }
    if (tls_compat_check_pair(&c->crt.pk, &c->key, mbedtls_ctr_drbg_random,
                              &ctx->drbg) != 0) {
        config_errors_add(errs, cfg->path, cc->pos,
                          "private key %s does not match certificate %s",
                          cc->key_file, cc->cert_file);
        return -1;
    }
    return 0;
}

static void
tls_cert_free(struct tls_cert *c)
{
    mbedtls_x509_crt_free(&c->crt);
    mbedtls_pk_free(&c->key);
}

static int
tls_conf_setup(struct tls_listener *l, struct tls_ctx *ctx, const struct config *cfg)
{
    mbedtls_ssl_config *conf = &l->conf;

    if (mbedtls_ssl_config_defaults(conf, MBEDTLS_SSL_IS_SERVER,
                                    MBEDTLS_SSL_TRANSPORT_STREAM,
                                    MBEDTLS_SSL_PRESET_DEFAULT) != 0)
        return -1;
    mbedtls_ssl_conf_rng(conf, mbedtls_ctr_drbg_random, &ctx->drbg);
    tls_compat_min_tls12(conf);
    mbedtls_ssl_conf_ciphersuites(conf, cfg->tls.ciphersuites);
    mbedtls_ssl_conf_curves(conf, (const mbedtls_ecp_group_id *)cfg->tls.curves);
    mbedtls_ssl_conf_renegotiation(conf, MBEDTLS_SSL_RENEGOTIATION_DISABLED);
    mbedtls_ssl_conf_legacy_renegotiation(conf, MBEDTLS_SSL_LEGACY_NO_RENEGOTIATION);
    mbedtls_ssl_conf_authmode(conf, MBEDTLS_SSL_VERIFY_NONE);
    mbedtls_ssl_conf_sni(conf, tls_sni_cb, NULL);
    for (size_t i = 0; i < l->n_certs; i++)
        if (mbedtls_ssl_conf_own_cert(conf, &l->certs[i].crt, &l->certs[i].key) != 0)
            return -1;
    return 0;
}

static int
tls_listener_load(struct tls_listener *l, struct tls_ctx *ctx, const struct config *cfg,
                  const struct config_listener *lc, struct config_errors *errs)
{
    int bad = 0;

    mbedtls_ssl_config_init(&l->conf);
    l->certs = calloc(lc->n_certs, sizeof(*l->certs));
    if (l->certs == NULL)
        return -1;
    for (size_t i = 0; i < lc->n_certs; i++) {
        l->n_certs++;
        if (tls_cert_load(&l->certs[i], ctx, cfg, &lc->certs[i], errs) != 0)
            bad = 1;
    }
    if (bad)
        return -1;
    if (tls_conf_setup(l, ctx, cfg) != 0) {
        config_errors_add(errs, cfg->path, lc->pos,
                          "listener %s: cannot set up TLS", lc->name);
        return -1;
    }
    return 0;
}

static void
tls_listener_free(struct tls_listener *l)
{
    mbedtls_ssl_config_free(&l->conf);
    for (size_t i = 0; i < l->n_certs; i++)
        tls_cert_free(&l->certs[i]);
    free(l->certs);
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

struct tls_ctx *
tls_ctx_new(const struct config *cfg, struct config_errors *errs)
{
    struct tls_ctx *ctx = calloc(1, sizeof(*ctx));
    size_t before = errs->n;

    if (ctx == NULL)
        return NULL;
    if (tls_rng_init(ctx) != 0) {
        config_errors_add(errs, cfg->path, (struct config_pos){0, 0},
                          "cannot seed the random number generator");
        tls_ctx_free(ctx);
        return NULL;
    }
    ctx->ls = calloc(cfg->n_listeners ? cfg->n_listeners : 1, sizeof(*ctx->ls));
    if (ctx->ls == NULL) {
        tls_ctx_free(ctx);
        return NULL;
    }
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        ctx->n_ls++;
        tls_listener_load(&ctx->ls[i], ctx, cfg, &cfg->listeners[i], errs);
    }
    if (errs->n != before) {
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
    mbedtls_ctr_drbg_free(&ctx->drbg);
    mbedtls_entropy_free(&ctx->entropy);
    free(ctx);
}

/* ---- sessions ------------------------------------------------------ */

struct tls_conn *
tls_conn_new(struct tls_ctx *ctx, size_t lidx, int fd)
{
    struct tls_conn *t = malloc(sizeof(*t));

    if (t == NULL)
        return NULL;
    t->fd = fd;
    t->last_ret = 0;
    t->sys_errno = 0;
    t->truncated = 0;
    t->established = 0;
    t->sni[0] = '\0';
    mbedtls_ssl_init(&t->ssl);
    if (mbedtls_ssl_setup(&t->ssl, &ctx->ls[lidx].conf) != 0) {
        mbedtls_ssl_free(&t->ssl);
        free(t);
        return NULL;
    }
    mbedtls_ssl_set_bio(&t->ssl, t, tls_bio_send, tls_bio_recv, NULL);
    tls_compat_set_user(&t->ssl, t);
    return t;
}

void
tls_conn_free(struct tls_conn *t)
{
    if (t == NULL)
        return;
    mbedtls_ssl_free(&t->ssl);
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
        t->truncated = 1;
        return TLS_EOF;
    default:
        t->last_ret = ret;
        return TLS_ERROR;
    }
}

enum tls_status
tls_handshake(struct tls_conn *t)
{
    int ret = mbedtls_ssl_handshake(&t->ssl);

    if (ret == 0) {
        t->established = 1;
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
        t->truncated = 1;
        return TLS_EOF;
    }
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

const char *
tls_last_error(struct tls_conn *t, char *buf, size_t len)
{
    char msg[160];

    if (t->sys_errno != 0)
        return strerror_r(t->sys_errno, buf, len);   /* GNU variant */
    if (t->last_ret == MBEDTLS_ERR_SSL_CONN_EOF)
        return "peer closed the connection";
    if (t->last_ret == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY)
        return "close_notify";
    tls_strerror(t->last_ret, msg, sizeof(msg));
    snprintf(buf, len, "%s (-0x%04x)", msg, (unsigned)-t->last_ret);
    return buf;
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
tls_library_version(void)
{
    return MBEDTLS_VERSION_STRING_FULL;
}
