/* SPDX-License-Identifier: BSD-2-Clause */
/* hs_bench.c - one mbedTLS 3.6 server's per-connection cost, in process:
 * full handshakes (X25519 + ECDSA P-256) against an in-memory mbedTLS
 * client, the server context's live heap bytes (after mbedtls_ssl_setup and
 * when idle after the handshake), malloc/free calls, and bulk records.
 * Every server-side call is made from a function named srv_*, so callgrind
 * counts the server alone:
 *
 * usage: valgrind --tool=callgrind --toggle-collect='srv_*' \
 *          hs_bench CRT KEY 1.2|1.3 N [sys|pool] [bulk|upload MIB]
 * bulk: the server writes MIB in 16 KiB mbedtls_ssl_write calls after the
 * last handshake; upload: the client does, the server reads.
 * build: cc -O2 -DMBEDTLS_USER_CONFIG_FILE='"cfg.h"' -I DIR/include hs_bench.c \
 *          DIR/lib/libmbedtls.a DIR/lib/libmbedx509.a DIR/lib/libmbedcrypto.a \
 *          DIR/lib/libeverest.a DIR/lib/libp256m.a -lpthread
 * (-DMBEDTLS_USER_CONFIG_FILE only for a DIR whose headers do not carry the
 * configuration; counting allocations and bytes needs MBEDTLS_PLATFORM_MEMORY)
 * HS_IDLE=K: also K connections left open at once, the server's heap bytes
 * per idle connection.  HS_THREADED=1 in the environment: glibc malloc in its multi-threaded mode.
 *
 * "sys" is what tlsterm does (src/alloc.c: calloc = malloc + memset on
 * glibc); "pool" is a per-thread free list of fixed size classes. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>
#include <psa/crypto.h>

/* ---- allocators: every block carries a 16-byte header with its size ---- */

static unsigned long n_alloc, n_free;
static long live, peak;
static int use_pool;

/* HS_DUMP=1: remember live blocks, to list what an idle connection holds. */
#define TRACK_MAX 65536
static int track;
static struct { void *p; size_t n; } tracked[TRACK_MAX];

static void
track_add(void *p, size_t n)
{
    for (int i = 0; i < TRACK_MAX; i++)
        if (tracked[i].p == NULL) {
            tracked[i].p = p;
            tracked[i].n = n;
            return;
        }
}

static void
track_del(void *p)
{
    for (int i = 0; i < TRACK_MAX; i++)
        if (tracked[i].p == p) {
            tracked[i].p = NULL;
            return;
        }
}

#define HDR 16
#define N_CLASSES 9             /* 32, 64, ..., 8192 bytes of user data */
#define POOL_KEEP 4096          /* blocks kept per class and thread */

struct blk { struct blk *next; };
static __thread struct blk *freelist[N_CLASSES];
static __thread unsigned nfree[N_CLASSES];

static int
size_class(size_t sz)
{
    int c = 0;
    size_t cap = 32;

    while (cap < sz) {
        cap <<= 1;
        if (++c == N_CLASSES)
            return -1;
    }
    return c;
}

static void *
bench_calloc(size_t n, size_t size)
{
    size_t total;
    unsigned char *p;
    int c;

    if (__builtin_mul_overflow(n, size, &total))
        return NULL;
    n_alloc++;
    live += (long)total;
    if (live > peak)
        peak = live;
    c = use_pool ? size_class(total) : -1;
    if (c >= 0 && freelist[c] != NULL) {
        struct blk *b = freelist[c];

        freelist[c] = b->next;
        nfree[c]--;
        p = (unsigned char *)b;
    } else {
        p = malloc(HDR + (c >= 0 ? (size_t)32 << c : total));
        if (p == NULL)
            return NULL;
    }
    *(size_t *)p = total;
    memset(p + HDR, 0, total);
    if (track)
        track_add(p + HDR, total);
    return p + HDR;
}

static void
bench_free(void *q)
{
    unsigned char *p;
    size_t total;
    int c;

    if (q == NULL)
        return;
    n_free++;
    if (track)
        track_del(q);
    p = (unsigned char *)q - HDR;
    total = *(size_t *)p;
    live -= (long)total;
    c = use_pool ? size_class(total) : -1;
    if (c >= 0 && nfree[c] < POOL_KEEP) {
        struct blk *b = (struct blk *)p;

        b->next = freelist[c];
        freelist[c] = b;
        nfree[c]++;
        return;
    }
    free(p);
}

/* ---- in-memory transport ---- */

struct pipe {
    unsigned char buf[1 << 20];
    size_t r, w;
};

static struct pipe c2s, s2c;

static int
pipe_send(struct pipe *p, const unsigned char *b, size_t n)
{
    if (p->r == p->w)
        p->r = p->w = 0;
    if (n > sizeof(p->buf) - p->w)
        n = sizeof(p->buf) - p->w;
    if (n == 0)
        return MBEDTLS_ERR_SSL_WANT_WRITE;
    memcpy(p->buf + p->w, b, n);
    p->w += n;
    return (int)n;
}

static int
pipe_recv(struct pipe *p, unsigned char *b, size_t n)
{
    if (p->w - p->r < n)
        n = p->w - p->r;
    if (n == 0)
        return MBEDTLS_ERR_SSL_WANT_READ;
    memcpy(b, p->buf + p->r, n);
    p->r += n;
    return (int)n;
}

static int srv_send(void *c, const unsigned char *b, size_t n) { (void)c; return pipe_send(&s2c, b, n); }
static int srv_recv(void *c, unsigned char *b, size_t n) { (void)c; return pipe_recv(&c2s, b, n); }
static int cli_send(void *c, const unsigned char *b, size_t n) { (void)c; return pipe_send(&c2s, b, n); }
static int cli_recv(void *c, unsigned char *b, size_t n) { (void)c; return pipe_recv(&s2c, b, n); }

/* ---- the server's calls (callgrind collects inside srv_*) ---- */

__attribute__((noinline)) static int
srv_setup(mbedtls_ssl_context *s, const mbedtls_ssl_config *conf)
{
    mbedtls_ssl_init(s);
    if (mbedtls_ssl_setup(s, conf) != 0)
        return -1;
    mbedtls_ssl_set_bio(s, NULL, srv_send, srv_recv, NULL);
    return 0;
}

__attribute__((noinline)) static int
srv_handshake(mbedtls_ssl_context *s)
{
    return mbedtls_ssl_handshake(s);
}

__attribute__((noinline)) static int
srv_write(mbedtls_ssl_context *s, const unsigned char *b, size_t n)
{
    return mbedtls_ssl_write(s, b, n);
}

__attribute__((noinline)) static int
srv_read(mbedtls_ssl_context *s, unsigned char *b, size_t n)
{
    return mbedtls_ssl_read(s, b, n);
}

__attribute__((noinline)) static void
srv_free(mbedtls_ssl_context *s)
{
    mbedtls_ssl_free(s);
}

/* One more server+client pair, handshaken and left open; returns the
 * server's net heap bytes (allocations made in client calls excluded). */
static long
open_idle_pair(mbedtls_ssl_context *srv, mbedtls_ssl_context *cli,
               const mbedtls_ssl_config *sconf, const mbedtls_ssl_config *cconf)
{
    long start = live, client = 0, l;
    int sdone = 0, cdone = 0, steps = 0, ret;

    c2s.r = c2s.w = s2c.r = s2c.w = 0;
    if (srv_setup(srv, sconf) != 0)
        return -1;
    l = live;
    mbedtls_ssl_init(cli);
    if (mbedtls_ssl_setup(cli, cconf) != 0)
        return -1;
    mbedtls_ssl_set_hostname(cli, "bench.test");
    mbedtls_ssl_set_bio(cli, NULL, cli_send, cli_recv, NULL);
    client += live - l;
    while (!(sdone && cdone) && ++steps < 1000) {
        if (!cdone) {
            l = live;
            ret = mbedtls_ssl_handshake(cli);
            client += live - l;
            if (ret == 0)
                cdone = 1;
            else if (ret != MBEDTLS_ERR_SSL_WANT_READ && ret != MBEDTLS_ERR_SSL_WANT_WRITE)
                return -1;
        }
        if (!sdone) {
            ret = srv_handshake(srv);
            if (ret == 0)
                sdone = 1;
            else if (ret != MBEDTLS_ERR_SSL_WANT_READ && ret != MBEDTLS_ERR_SSL_WANT_WRITE)
                return -1;
        }
    }
    if (!(sdone && cdone) || c2s.r != c2s.w || s2c.r != s2c.w)
        return -1;
    /* One small request and response, as an idle keep-alive connection has
     * had (TLS 1.3: the server's first read is where mbedTLS 3.6 could free
     * what the handshake left; measure whether it does). */
    {
        unsigned char b[64];

        l = live;
        if (mbedtls_ssl_write(cli, (const unsigned char *)"GET / HTTP/1.1\r\n\r\n", 18) != 18)
            return -1;
        client += live - l;
        if (srv_read(srv, b, sizeof(b)) != 18 || srv_write(srv, b, 18) != 18)
            return -1;
        l = live;
        if (mbedtls_ssl_read(cli, b, sizeof(b)) != 18)
            return -1;
        client += live - l;
    }
    return live - start - client;
}

static void *
nothing(void *arg)
{
    return arg;
}

static void
die(const char *what, int ret)
{
    fprintf(stderr, "hs_bench: %s: -0x%04x\n", what, (unsigned)-ret);
    exit(1);
}

int
main(int argc, char **argv)
{
    static const int suites12[] = { MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, 0 };
    static const int suites13[] = { MBEDTLS_TLS1_3_AES_128_GCM_SHA256, 0 };
    static const uint16_t groups[] = { MBEDTLS_SSL_IANA_TLS_GROUP_X25519, MBEDTLS_SSL_IANA_TLS_GROUP_SECP256R1,
                                       MBEDTLS_SSL_IANA_TLS_GROUP_NONE };
    static unsigned char data[16384], sink[16384];
    mbedtls_entropy_context ent;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_x509_crt crt;
    mbedtls_pk_context key;
    mbedtls_ssl_config sconf, cconf;
    mbedtls_ssl_context srv, cli;
    mbedtls_ssl_protocol_version v;
    int n, i, ret;
    long bulk_mib = 0, upload_mib = 0;
    unsigned long a0, f0;
    long after_setup = 0, idle = 0, live0;

    if (argc < 5) {
        fprintf(stderr, "usage: hs_bench CRT KEY 1.2|1.3 N [sys|pool] [bulk|upload MIB]\n");
        return 2;
    }
    v = strcmp(argv[3], "1.3") == 0 ? MBEDTLS_SSL_VERSION_TLS1_3 : MBEDTLS_SSL_VERSION_TLS1_2;
    n = atoi(argv[4]);
    use_pool = argc > 5 && strcmp(argv[5], "pool") == 0;
    if (argc > 7 && strcmp(argv[6], "bulk") == 0)
        bulk_mib = atol(argv[7]);
    if (argc > 7 && strcmp(argv[6], "upload") == 0)
        upload_mib = atol(argv[7]);
    track = getenv("HS_DUMP") != NULL;
    /* HS_THREADED=1: start and join a thread first, so glibc's malloc
     * takes its multi-threaded paths (atomics, arena locks) as in tlsterm's
     * worker threads. */
    if (getenv("HS_THREADED") != NULL) {
        pthread_t t;

        if (pthread_create(&t, NULL, nothing, NULL) != 0 || pthread_join(t, NULL) != 0)
            die("pthread", -1);
    }
#if defined(MBEDTLS_PLATFORM_MEMORY)
    mbedtls_platform_set_calloc_free(bench_calloc, bench_free);
#else
    (void)bench_calloc;
    (void)bench_free;
    fprintf(stderr, "hs_bench: no MBEDTLS_PLATFORM_MEMORY: allocations and bytes are not counted "
                    "(instructions are)\n");
#endif
    if (psa_crypto_init() != PSA_SUCCESS)
        die("psa_crypto_init", -1);
    mbedtls_entropy_init(&ent);
    mbedtls_ctr_drbg_init(&drbg);
    if ((ret = mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &ent, NULL, 0)) != 0)
        die("drbg", ret);
    mbedtls_x509_crt_init(&crt);
    mbedtls_pk_init(&key);
    if ((ret = mbedtls_x509_crt_parse_file(&crt, argv[1])) != 0)
        die("crt", ret);
    if ((ret = mbedtls_pk_parse_keyfile(&key, argv[2], NULL, mbedtls_ctr_drbg_random, &drbg)) != 0)
        die("key", ret);

    mbedtls_ssl_config_init(&sconf);
    mbedtls_ssl_config_init(&cconf);
    if (mbedtls_ssl_config_defaults(&sconf, MBEDTLS_SSL_IS_SERVER, MBEDTLS_SSL_TRANSPORT_STREAM,
                                    MBEDTLS_SSL_PRESET_DEFAULT) != 0 ||
        mbedtls_ssl_config_defaults(&cconf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                                    MBEDTLS_SSL_PRESET_DEFAULT) != 0)
        die("config", -1);
    for (i = 0; i < 2; i++) {
        mbedtls_ssl_config *c = i ? &cconf : &sconf;

        mbedtls_ssl_conf_rng(c, mbedtls_ctr_drbg_random, &drbg);
        mbedtls_ssl_conf_min_tls_version(c, v);
        mbedtls_ssl_conf_max_tls_version(c, v);
        mbedtls_ssl_conf_ciphersuites(c, v == MBEDTLS_SSL_VERSION_TLS1_3 ? suites13 : suites12);
        mbedtls_ssl_conf_groups(c, groups);
        mbedtls_ssl_conf_authmode(c, MBEDTLS_SSL_VERIFY_NONE);
        mbedtls_ssl_conf_renegotiation(c, MBEDTLS_SSL_RENEGOTIATION_DISABLED);
    }
    /* as src/tls.c */
    mbedtls_ssl_conf_extended_master_secret(&sconf, MBEDTLS_SSL_EXTENDED_MS_ENABLED);
    mbedtls_ssl_conf_encrypt_then_mac(&sconf, MBEDTLS_SSL_ETM_ENABLED);
    if ((ret = mbedtls_ssl_conf_own_cert(&sconf, &crt, &key)) != 0)
        die("own_cert", ret);

    a0 = n_alloc;
    f0 = n_free;
    for (i = 0; i < n; i++) {
        int sdone = 0, cdone = 0, steps = 0;

        c2s.r = c2s.w = s2c.r = s2c.w = 0;
        live0 = live;
        if (srv_setup(&srv, &sconf) != 0)
            die("server setup", -1);
        after_setup = live - live0;
        {
            unsigned long sa = n_alloc, sf = n_free;
            long sl = live;

            mbedtls_ssl_init(&cli);
            if (mbedtls_ssl_setup(&cli, &cconf) != 0)
                die("client setup", -1);
            mbedtls_ssl_set_hostname(&cli, "bench.test");
            mbedtls_ssl_set_bio(&cli, NULL, cli_send, cli_recv, NULL);
            a0 += n_alloc - sa;
            f0 += n_free - sf;
            live0 += live - sl;
        }
        while (!(sdone && cdone)) {
            /* The client's allocations are not the server's: keep them
             * out of the counters. */
            unsigned long sa = n_alloc, sf = n_free;
            long sl = live;

            if (!cdone) {
                ret = mbedtls_ssl_handshake(&cli);
                if (ret == 0)
                    cdone = 1;
                else if (ret != MBEDTLS_ERR_SSL_WANT_READ && ret != MBEDTLS_ERR_SSL_WANT_WRITE)
                    die("client handshake", ret);
            }
            a0 += n_alloc - sa;
            f0 += n_free - sf;
            live0 += live - sl;
            if (!sdone) {
                ret = srv_handshake(&srv);
                if (ret == 0)
                    sdone = 1;
                else if (ret != MBEDTLS_ERR_SSL_WANT_READ && ret != MBEDTLS_ERR_SSL_WANT_WRITE)
                    die("server handshake", ret);
            }
            if (++steps > 1000)
                die("handshake stalled", -1);
        }
        idle = live - live0;
        if (track && i == n - 1) {
            /* everything live now: the server's blocks and the client's
             * (the client's are listed too; compare with the counts) */
            for (int t = 0; t < TRACK_MAX; t++)
                if (tracked[t].p != NULL)
                    fprintf(stderr, "live\t%zu\n", tracked[t].n);
        }
        if (upload_mib > 0 && i == n - 1) {
            long k, total = upload_mib * 64;

            for (k = 0; k < total; k++) {
                ret = mbedtls_ssl_write(&cli, data, sizeof(data));
                if (ret != (int)sizeof(data))
                    die("client write", ret);
                while ((ret = srv_read(&srv, sink, sizeof(sink))) > 0)
                    ;
                if (ret != MBEDTLS_ERR_SSL_WANT_READ)
                    die("server read", ret);
            }
        }
        if (bulk_mib > 0 && i == n - 1) {
            long k, total = bulk_mib * 64;   /* 16 KiB writes */

            for (k = 0; k < total; k++) {
                size_t off = 0;

                while (off < sizeof(data)) {
                    ret = srv_write(&srv, data + off, sizeof(data) - off);
                    if (ret < 0)
                        die("server write", ret);
                    off += (size_t)ret;
                    while ((ret = mbedtls_ssl_read(&cli, sink, sizeof(sink))) > 0)
                        ;
                    if (ret != MBEDTLS_ERR_SSL_WANT_READ)
                        die("client read", ret);
                }
            }
        }
        {
            unsigned long sa = n_alloc, sf = n_free;

            mbedtls_ssl_free(&cli);
            a0 += n_alloc - sa;
            f0 += n_free - sf;
        }
        srv_free(&srv);
    }
    /* HS_IDLE=K: K connections open at once, the server's bytes per
     * connection (global PSA key-store growth included: it is per key). */
    if (getenv("HS_IDLE") != NULL) {
        int k = atoi(getenv("HS_IDLE"));
        mbedtls_ssl_context *ss = malloc(sizeof(*ss) * (size_t)k);
        mbedtls_ssl_context *cc = malloc(sizeof(*cc) * (size_t)k);
        long sum = 0, b;

        if (ss == NULL || cc == NULL)
            die("malloc", -1);
        for (i = 0; i < k; i++) {
            if ((b = open_idle_pair(&ss[i], &cc[i], &sconf, &cconf)) < 0)
                die("idle pair", -1);
            sum += b;
        }
        printf("idle_conns\t%d\nserver_heap_bytes_per_idle_conn\t%.0f\n"
               "plus_ssl_context_struct\t%zu\n", k, (double)sum / k, sizeof(mbedtls_ssl_context));
        for (i = 0; i < k; i++) {
            mbedtls_ssl_free(&ss[i]);
            mbedtls_ssl_free(&cc[i]);
        }
        free(ss);
        free(cc);
    }
    printf("version\t%s\nhandshakes\t%d\nallocator\t%s\n", argv[3], n, use_pool ? "pool" : "sys");
    printf("server_allocs_per_conn\t%.1f\nserver_frees_per_conn\t%.1f\n",
           (double)(n_alloc - a0) / n, (double)(n_free - f0) / n);
    printf("server_bytes_after_setup\t%ld\nserver_bytes_idle_after_handshake\t%ld\n",
           after_setup, idle);
    printf("sizeof_ssl_context\t%zu\nIN_CONTENT_LEN\t%d\nOUT_CONTENT_LEN\t%d\n",
           sizeof(mbedtls_ssl_context), MBEDTLS_SSL_IN_CONTENT_LEN, MBEDTLS_SSL_OUT_CONTENT_LEN);
    if (bulk_mib > 0)
        printf("bulk_mib\t%ld\n", bulk_mib);
    if (upload_mib > 0)
        printf("upload_mib\t%ld\n", upload_mib);
    return 0;
}
