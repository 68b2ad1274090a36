/* SPDX-License-Identifier: BSD-2-Clause */
/* Unit tests of the forwarded_headers rewriter (src/http_fwd.c): what the
 * backend receives for a given client byte stream, and what the client
 * receives for a given backend byte stream. */
#include "autoconf.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http_fwd.h"

static const struct http_fwd_opts base = {
    .max_head = 65536, .client_ip = "192.0.2.7", .port = 8443,
};

#define ADDED "X-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Port: 8443\r\n"

struct run {
    struct http_fwd f;
    struct hbuf out;
    size_t used;
};

/* Feeds in to one side in pieces of at most chunk bytes, as far as the
 * rewriter takes them. */
static void
feed(struct run *r, bool request, const char *in, size_t len, size_t chunk)
{
    size_t off = 0;

    while (off < len) {
        size_t n = len - off < chunk ? len - off : chunk;
        size_t took = request ? http_fwd_request(&r->f, in + off, n, &r->out)
                              : http_fwd_response(&r->f, in + off, n, &r->out);
        assert_true(took <= n);
        off += took;
        if (took < n)
            break;
    }
    r->used = off;
}

/* A string literal, whole. */
#define FEEDS(r, request, lit) feed(r, request, lit, sizeof(lit) - 1, SIZE_MAX)

static char *
out_str(struct run *r)
{
    char *s = malloc(r->out.len + 1);
    assert_non_null(s);
    memcpy(s, r->out.p, r->out.len);
    s[r->out.len] = '\0';
    r->out.len = 0;
    return s;
}

static void
run_done(struct run *r)
{
    http_fwd_free(&r->f);
    free(r->out.p);
}

/* The backend's view of one client stream fed whole. */
static void
expect_request(const struct http_fwd_opts *o, const char *in, const char *want)
{
    struct run r = { 0 };
    char *got;

    http_fwd_init(&r.f, o);
    feed(&r, true, in, strlen(in), SIZE_MAX);
    assert_int_equal(r.f.status, 0);
    assert_int_equal(r.used, strlen(in));
    got = out_str(&r);
    assert_string_equal(got, want);
    free(got);
    run_done(&r);
}

static int
expect_error(const struct http_fwd_opts *o, const char *in, size_t len)
{
    struct run r = { 0 };
    int status;

    http_fwd_init(&r.f, o);
    feed(&r, true, in, len, SIZE_MAX);
    status = r.f.status;
    assert_true(r.f.why[0] != '\0');
    run_done(&r);
    return status;
}

static void
test_adds_headers(void **state)
{
    (void)state;
    expect_request(&base, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n",
                   "GET /a HTTP/1.1\r\nHost: x\r\n" ADDED "\r\n");
}

static void
test_untrusted_spoofs_removed(void **state)
{
    (void)state;
    expect_request(&base,
                   "GET / HTTP/1.1\r\nX-Forwarded-For: 6.6.6.6\r\nHost: x\r\n"
                   "x-forwarded-proto: http\r\nX-Forwarded-Port: 1\r\nForwarded: for=6.6.6.6\r\n"
                   "X-SSL-Client-Verify: SUCCESS\r\nX-Forwarded-Forx: kept\r\n\r\n",
                   "GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-Forx: kept\r\n" ADDED "\r\n");
}

static void
test_trusted_appends(void **state)
{
    struct http_fwd_opts o = base;

    (void)state;
    o.trusted = true;
    o.rfc7239 = true;
    expect_request(&o,
                   "GET / HTTP/1.1\r\nX-Forwarded-For: 10.0.0.1\r\nForwarded: for=10.0.0.1\r\n"
                   "X-Forwarded-For:  10.0.0.2 , 10.0.0.3 \r\n\r\n",
                   "GET / HTTP/1.1\r\n"
                   "X-Forwarded-For: 10.0.0.1, 10.0.0.2 , 10.0.0.3, 192.0.2.7\r\n"
                   "X-Forwarded-Proto: https\r\nX-Forwarded-Port: 8443\r\n"
                   "Forwarded: for=10.0.0.1, for=192.0.2.7;proto=https\r\n\r\n");
}

static void
test_forwarded_v6_and_cert(void **state)
{
    static const char *const cert[] = { "X-SSL-Client-Verify", "SUCCESS",
                                        "X-SSL-Client-Subject", "CN=a\r\nEvil: 1", NULL };
    struct http_fwd_opts o = base;

    (void)state;
    o.client_ip = "2001:db8::1";
    o.rfc7239 = true;
    o.cert = cert;
    expect_request(&o, "GET / HTTP/1.0\r\n\r\n",
                   "GET / HTTP/1.0\r\nX-Forwarded-For: 2001:db8::1\r\n"
                   "X-Forwarded-Proto: https\r\nX-Forwarded-Port: 8443\r\n"
                   "Forwarded: for=\"[2001:db8::1]\";proto=https\r\n"
                   "X-SSL-Client-Verify: SUCCESS\r\nX-SSL-Client-Subject: CN=a??Evil: 1\r\n\r\n");
}

static const char pipelined[] =
    "\r\nPOST /1 HTTP/1.1\r\nContent-Length: 5\r\nX-Forwarded-For: 1.1.1.1\r\n\r\nGET /"
    "POST /2 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    "3\r\nGET\r\n4;ext=1\r\n /x \r\n0\r\nTrailer: GET / HTTP/1.1\r\n\r\n"
    "GET /3 HTTP/1.1\nHost: y\n\n";

/* Chunks are framed anew: no extensions, no trailers. */
static const char pipelined_out[] =
    "POST /1 HTTP/1.1\r\nContent-Length: 5\r\n" ADDED "\r\nGET /"
    "POST /2 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n" ADDED "\r\n"
    "3\r\nGET\r\n4\r\n /x \r\n0\r\n\r\n"
    "GET /3 HTTP/1.1\nHost: y\n" ADDED "\r\n";

/* Bodies pass untouched, even when they look like requests; every head is
 * rewritten, whatever the read boundaries are. */
static void
test_pipelined_any_split(void **state)
{
    (void)state;
    for (size_t chunk = 1; chunk <= sizeof(pipelined); chunk++) {
        struct run r = { 0 };
        char *got;
        http_fwd_init(&r.f, &base);
        feed(&r, true, pipelined, sizeof(pipelined) - 1, chunk);
        assert_int_equal(r.f.status, 0);
        assert_int_equal(r.used, sizeof(pipelined) - 1);
        assert_int_equal(r.f.requests, 3);
        got = out_str(&r);
        assert_string_equal(got, pipelined_out);
        free(got);
        run_done(&r);
    }
}

static void
test_malformed_400(void **state)
{
    static const char *const bad[] = {
        "GET / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        "GET / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
        "GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
        "GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n",
        "GET / HTTP/1.1\r\nBad Name: b\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding : chunked\r\nContent-Length: 3\r\n\r\nabc",
        "GET / HTTP/1.1\r\n: novalue\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer_Encoding: chunked\r\nContent-Length: 3\r\n\r\nabc",
        "POST / HTTP/1.1\r\nContent_Length: 3\r\n\r\nabc",
        "GET / HTTP/1.1\r\nConnection: close, X-Forwarded-For\r\n\r\n",
        "GET / HTTP/1.1\r\nConnection: keep-alive,x_ssl_client_verify \r\n\r\n",
        "BREW / HTCPCP/1.0\r\n\r\n",
        "GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        print_message("case %zu\n", i);
        assert_int_equal(expect_error(&base, bad[i], strlen(bad[i])), 400);
    }
}

static void
test_head_limit_431(void **state)
{
    struct http_fwd_opts o = base;
    char big[2048];

    (void)state;
    o.max_head = 1024;
    snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nCookie: %01000d\r\n\r\n", 0);
    assert_int_equal(expect_error(&o, big, strlen(big)), 431);
    /* exactly at the limit is fine */
    o.max_head = strlen(big);
    {
        struct run r = { 0 };
        http_fwd_init(&r.f, &o);
        feed(&r, true, big, strlen(big), SIZE_MAX);
        assert_int_equal(r.f.status, 0);
        assert_int_equal(r.f.requests, 1);
        run_done(&r);
    }
}

static void
test_reject_503(void **state)
{
    struct http_fwd_opts o = base;
    struct run r = { 0 };

    (void)state;
    o.reject = 503;
    http_fwd_init(&r.f, &o);
    FEEDS(&r, true, "GET / HTTP/1.1\r\n");
    assert_int_equal(r.f.status, 0);       /* waits for the whole head */
    FEEDS(&r, true, "\r\n");
    assert_int_equal(r.f.status, 503);
    assert_int_equal(r.out.len, 0);
    assert_true(http_fwd_responses_done(&r.f));
    run_done(&r);
}

/* An upgrade holds back what follows until the backend decides. */
static void
test_upgrade_101_tunnel(void **state)
{
    static const char rq[] = "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
                             "\x81\x05hello";
    static const char rs[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                             "Connection: Upgrade\r\n\r\n\x81\x02hi";
    struct run r = { 0 };
    size_t head = strlen(rq) - 7;
    char *got;

    (void)state;
    http_fwd_init(&r.f, &base);
    feed(&r, true, rq, sizeof(rq) - 1, SIZE_MAX);
    assert_int_equal(r.used, head);
    assert_true(http_fwd_blocked(&r.f));
    free(out_str(&r));
    feed(&r, false, rs, sizeof(rs) - 1, SIZE_MAX);
    assert_int_equal(r.used, sizeof(rs) - 1);
    assert_true(http_fwd_tunnel(&r.f));
    assert_false(http_fwd_blocked(&r.f));
    got = out_str(&r);
    assert_memory_equal(got, rs, sizeof(rs) - 1);
    free(got);
    feed(&r, true, rq + head, 7, SIZE_MAX);
    assert_int_equal(r.out.len, 7);
    assert_memory_equal(r.out.p, "\x81\x05hello", 7);
    run_done(&r);
}

/* A refused upgrade: the next bytes are parsed (and rewritten) as HTTP. */
static void
test_upgrade_refused(void **state)
{
    static const char rq[] = "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
                             "GET /b HTTP/1.1\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n";
    struct run r = { 0 };
    size_t first = strlen(rq) - strlen("GET /b HTTP/1.1\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n");
    char *got;

    (void)state;
    http_fwd_init(&r.f, &base);
    feed(&r, true, rq, sizeof(rq) - 1, SIZE_MAX);
    assert_int_equal(r.used, first);
    free(out_str(&r));
    FEEDS(&r, false, "HTTP/1.1 426 No\r\nContent-Length: 2\r\n\r\nno");
    assert_false(http_fwd_tunnel(&r.f));
    assert_false(http_fwd_blocked(&r.f));
    free(out_str(&r));
    feed(&r, true, rq + first, sizeof(rq) - 1 - first, SIZE_MAX);
    got = out_str(&r);
    assert_string_equal(got, "GET /b HTTP/1.1\r\n" ADDED "\r\n");
    free(got);
    run_done(&r);
}

/* The backend may refuse an upgrade before the request's body is in. */
static void
test_upgrade_refused_early(void **state)
{
    struct run r = { 0 };
    char *got;

    (void)state;
    http_fwd_init(&r.f, &base);
    FEEDS(&r, true, "POST /ws HTTP/1.1\r\nUpgrade: x\r\nConnection: upgrade\r\n"
          "Content-Length: 4\r\n\r\nab");
    FEEDS(&r, false, "HTTP/1.1 426 No\r\nContent-Length: 0\r\n\r\n");
    free(out_str(&r));
    FEEDS(&r, true, "cdGET /n HTTP/1.1\r\n\r\n");
    assert_int_equal(r.used, 21);
    got = out_str(&r);
    assert_string_equal(got, "cdGET /n HTTP/1.1\r\n" ADDED "\r\n");
    free(got);
    run_done(&r);
}

/* Only a backend that is a proxy may turn CONNECT into a tunnel: an
 * origin answering 200 to anything would pass unrewritten requests. */
static void
test_connect_refused_by_default(void **state)
{
    static const char rq[] = "CONNECT h:22 HTTP/1.1\r\nHost: h:22\r\n\r\n";

    (void)state;
    assert_int_equal(expect_error(&base, rq, sizeof(rq) - 1), 501);
}

static void
test_connect_200_tunnel(void **state)
{
    struct http_fwd_opts o = base;
    struct run r = { 0 };

    (void)state;
    o.allow_connect = true;
    http_fwd_init(&r.f, &o);
    FEEDS(&r, true, "CONNECT h:22 HTTP/1.1\r\nHost: h:22\r\n\r\nSSH-2.0");
    assert_int_equal(r.used, 37);
    assert_true(http_fwd_blocked(&r.f));
    FEEDS(&r, false, "HTTP/1.1 200 OK\r\n\r\nSSH-2.0-srv");
    assert_true(http_fwd_tunnel(&r.f));
    FEEDS(&r, true, "SSH-2.0");
    assert_int_equal(r.used, 7);
    run_done(&r);
}

/* HEAD responses carry a Content-Length but no body; interim 1xx
 * responses do not answer the request. */
static void
test_response_framing(void **state)
{
    static const char rs[] =
        "HTTP/1.1 100 Continue\r\n\r\n"
        "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
        "HTTP/1.1 204 No Content\r\n\r\n";
    static const char rq[] = "HEAD / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n";

    (void)state;
    for (size_t chunk = 1; chunk < sizeof(rs); chunk++) {
        struct run r = { 0 };
        http_fwd_init(&r.f, &base);
        feed(&r, true, rq, sizeof(rq) - 1, SIZE_MAX);
        assert_int_equal(r.f.q_n, 3);
        assert_false(http_fwd_responses_done(&r.f));
        r.out.len = 0;
        feed(&r, false, rs, sizeof(rs) - 1, chunk);
        assert_int_equal(r.used, sizeof(rs) - 1);
        assert_int_equal(r.f.status, 0);
        assert_int_equal(r.f.q_n, 0);
        assert_true(http_fwd_responses_done(&r.f));
        assert_int_equal(r.out.len, sizeof(rs) - 1);
        run_done(&r);
    }
}

static void
test_hsts(void **state)
{
    struct http_fwd_opts o = base;
    struct run r = { 0 };
    char *got;

    (void)state;
    o.hsts = "max-age=63072000";
    http_fwd_init(&r.f, &o);
    FEEDS(&r, true, "GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n");
    free(out_str(&r));
    FEEDS(&r, false, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
          "HTTP/1.1 200 OK\r\nstrict-transport-security: max-age=1\r\nContent-Length: 0\r\n\r\n");
    got = out_str(&r);
    assert_string_equal(got, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"
                        "Strict-Transport-Security: max-age=63072000\r\nContent-Length: 0\r\n\r\n"
                        "HTTP/1.1 200 OK\r\nstrict-transport-security: max-age=1\r\n"
                        "Content-Length: 0\r\n\r\n");
    free(got);
    run_done(&r);
}

/* Pipelining depth is bounded: the request side waits for responses. */
static void
test_queue_limit(void **state)
{
    struct run r = { 0 };
    char one[] = "GET / HTTP/1.1\r\n\r\n";
    size_t n = strlen(one);

    (void)state;
    http_fwd_init(&r.f, &base);
    for (int i = 0; i <= HTTP_FWD_QUEUE; i++)
        feed(&r, true, one, n, SIZE_MAX);
    assert_int_equal(r.used, 0);
    assert_true(http_fwd_blocked(&r.f));
    FEEDS(&r, false, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    assert_false(http_fwd_blocked(&r.f));
    feed(&r, true, one, n, SIZE_MAX);
    assert_int_equal(r.used, n);
    run_done(&r);
}

static void
test_bad_response_502(void **state)
{
    struct run r = { 0 };

    (void)state;
    http_fwd_init(&r.f, &base);
    FEEDS(&r, true, "GET / HTTP/1.1\r\n\r\n");
    FEEDS(&r, false, "SSH-2.0-OpenSSH\r\n\r\n");
    assert_int_equal(r.f.rs_status, 502);
    assert_int_equal(r.f.status, 0);
    run_done(&r);
}

/* A lenient chunk line (bare LF inside an extension) cannot hide a second
 * request from a lenient backend: it gets canonical chunks of exactly the
 * data http-parser saw. */
static void
test_chunks_reframed(void **state)
{
    char in[1024], want[1024], data[0x80 + 1];
    const char *inner = "0\r\n\r\nGET /admin HTTP/1.1\r\nX-Forwarded-For: 127.0.0.1\r\n"
                        "Content-Length: 40\r\n\r\n";
    struct run r = { 0 };
    char *got;

    (void)state;
    memset(data, 'p', 0x80);
    memcpy(data, inner, strlen(inner));
    data[0x80] = '\0';
    snprintf(in, sizeof(in), "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n80;\n%0128d"
             "\r\n%s\r\n0\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n", 0, data);
    snprintf(want, sizeof(want), "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n" ADDED
             "\r\n80\r\n%s\r\n0\r\n\r\n", data);
    http_fwd_init(&r.f, &base);
    feed(&r, true, in, strlen(in), SIZE_MAX);
    assert_int_equal(r.f.status, 0);
    assert_int_equal(r.f.requests, 1);
    got = out_str(&r);
    assert_string_equal(got, want);
    free(got);
    run_done(&r);
}

static void
test_connection_header_kept(void **state)
{
    (void)state;
    expect_request(&base, "GET / HTTP/1.1\r\nConnection: keep-alive, X-Custom\r\n\r\n",
                   "GET / HTTP/1.1\r\nConnection: keep-alive, X-Custom\r\n" ADDED "\r\n");
}

static void
test_underscore_spoofs_removed(void **state)
{
    (void)state;
    expect_request(&base, "GET / HTTP/1.1\r\nX_Forwarded_For: 6.6.6.6\r\n"
                   "X-SSL-Client_Verify: SUCCESS\r\nx_forwarded_proto: http\r\n\r\n",
                   "GET / HTTP/1.1\r\n" ADDED "\r\n");
}

/* h2c would carry HTTP/2 requests past the rewriting: the offer goes. */
static void
test_h2c_offer_dropped(void **state)
{
    (void)state;
    expect_request(&base, "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\n"
                   "Connection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAAQ\r\n\r\n",
                   "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                   ADDED "\r\n");
}

static void
test_ambiguous_framing_400(void **state)
{
    static const char te10[] = "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    static const char connect_cl[] = "CONNECT a:1 HTTP/1.1\r\nContent-Length: 5\r\n\r\nGET /";

    (void)state;
    assert_int_equal(expect_error(&base, te10, sizeof(te10) - 1), 400);
    assert_int_equal(expect_error(&base, connect_cl, sizeof(connect_cl) - 1), 400);
}

/* 204 and 304 have no body whatever their Content-Length says. */
static void
test_no_body_statuses(void **state)
{
    struct run r = { 0 };

    (void)state;
    http_fwd_init(&r.f, &base);
    FEEDS(&r, true, "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\n\r\n");
    FEEDS(&r, false, "HTTP/1.1 304 Not Modified\r\nContent-Length: 1234\r\n\r\n"
          "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n"
          "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(r.f.rs_status, 0);
    assert_true(http_fwd_responses_done(&r.f));
    run_done(&r);
}

static void
test_unasked_101_is_fatal(void **state)
{
    struct run r = { 0 };

    (void)state;
    http_fwd_init(&r.f, &base);
    FEEDS(&r, true, "GET / HTTP/1.1\r\n\r\n");
    FEEDS(&r, false, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n");
    assert_int_equal(r.f.rs_status, 502);
    assert_false(http_fwd_tunnel(&r.f));
    run_done(&r);
}

/* A request error must not hide a response error (which used to spin). */
static void
test_both_sides_fail(void **state)
{
    struct run r = { 0 };
    char big[HTTP_FWD_HEAD_MAX + 64];

    (void)state;
    http_fwd_init(&r.f, &base);
    FEEDS(&r, true, "GET / HTTP/1.1\r\n\r\nBAD\r\n\r\n");
    assert_int_equal(r.f.status, 400);
    FEEDS(&r, false, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
    assert_int_equal(r.f.rs_status, 502);
    run_done(&r);

    memset(&r, 0, sizeof(r));
    http_fwd_init(&r.f, &base);
    FEEDS(&r, true, "BAD\r\n\r\n");
    snprintf(big, sizeof(big), "HTTP/1.1 200 OK\r\nX: %0*d", HTTP_FWD_HEAD_MAX, 0);
    feed(&r, false, big, strlen(big), SIZE_MAX);
    assert_int_equal(r.f.rs_status, 502);
    run_done(&r);
}

static void
test_answers(void **state)
{
    static const int codes[] = { 400, 431, 501, 502, 503 };

    (void)state;
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        size_t len;
        const char *a = http_fwd_answer(codes[i], &len), *body = strstr(a, "\r\n\r\n") + 4;
        char want[64];
        snprintf(want, sizeof(want), "HTTP/1.1 %d ", codes[i]);
        assert_memory_equal(a, want, strlen(want));
        snprintf(want, sizeof(want), "Content-Length: %zu\r\n", strlen(body));
        assert_non_null(strstr(a, want));
        assert_int_equal(len, strlen(a));
    }
}

/* ---- exchanges (the per-request log) and the last exchange (drain) --- */

#define MAX_SEEN 8

/* What o->done reported, in order. */
struct seen {
    size_t n;
    struct {
        uint64_t seq, in, out;
        int method;
        unsigned status;
        char path[HTTP_FWD_PATH_MAX + 1];
        bool cut;
        enum http_fwd_end end;
    } r[MAX_SEEN];
};

static void
seen_cb(void *arg, const struct http_fwd *f, const struct http_fwd_req *r, enum http_fwd_end end)
{
    struct seen *s = arg;

    (void)f;
    assert_true(s->n < MAX_SEEN);
    s->r[s->n].seq = r->seq;
    s->r[s->n].in = r->in;
    s->r[s->n].out = r->out;
    s->r[s->n].method = r->method;
    s->r[s->n].status = r->status;
    s->r[s->n].cut = r->path_cut;
    s->r[s->n].end = end;
    if (r->path != NULL)
        memcpy(s->r[s->n].path, r->path, r->path_len);
    s->r[s->n].path[r->path ? r->path_len : 0] = '\0';
    s->n++;
}

static void
expect_seen(const struct seen *s, size_t i, int method, const char *path, unsigned status,
            uint64_t in, uint64_t out, enum http_fwd_end end)
{
    assert_true(i < s->n);
    assert_int_equal(s->r[i].seq, i + 1);
    assert_int_equal(s->r[i].method, method);
    assert_string_equal(s->r[i].path, path);
    assert_int_equal(s->r[i].status, status);
    assert_int_equal(s->r[i].in, in);
    assert_int_equal(s->r[i].out, out);
    assert_int_equal(s->r[i].end, end);
}

#define LEN(lit) (sizeof(lit) - 1)

/* Pipelined requests pair with their responses in order, whatever the
 * split: HEAD has no body, a 100 Continue counts with its final answer,
 * chunked bodies end at the last chunk. */
static void
test_exchanges_pair_in_order(void **state)
{
    static const char q1[] = "GET /a?b=1 HTTP/1.1\r\nHost: x\r\n\r\n",
                      q2[] = "HEAD /h HTTP/1.1\r\n\r\n",
                      q3[] = "POST /p HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
    static const char s1[] = "HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno",
                      s2[] = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n",
                      s3a[] = "HTTP/1.1 100 Continue\r\n\r\n",
                      s3b[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                              "2\r\nok\r\n0\r\n\r\n";
    char rq[256], rs[512];

    (void)state;
    snprintf(rq, sizeof(rq), "%s%s%s", q1, q2, q3);
    snprintf(rs, sizeof(rs), "%s%s%s%s", s1, s2, s3a, s3b);
    for (size_t chunk = 1; chunk <= strlen(rs); chunk++) {
        struct seen seen = { 0 };
        struct http_fwd_opts o = base;
        struct run r = { 0 };
        o.done = seen_cb;
        o.arg = &seen;
        http_fwd_init(&r.f, &o);
        feed(&r, true, rq, strlen(rq), chunk);
        assert_int_equal(seen.n, 0);
        feed(&r, false, rs, strlen(rs), chunk);
        assert_int_equal(seen.n, 3);
        expect_seen(&seen, 0, HTTP_GET, "/a?b=1", 404, LEN(q1), LEN(s1), HF_END_DONE);
        expect_seen(&seen, 1, HTTP_HEAD, "/h", 200, LEN(q2), LEN(s2), HF_END_DONE);
        expect_seen(&seen, 2, HTTP_POST, "/p", 200, LEN(q3), LEN(s3a) + LEN(s3b), HF_END_DONE);
        http_fwd_flush(&r.f);
        assert_int_equal(seen.n, 3);
        run_done(&r);
    }
}

/* A body read until the close ends with the backend's EOF; one cut short
 * is reported by the flush, with the status it had. */
static void
test_exchange_ends_at_eof(void **state)
{
    static const char rs[] = "HTTP/1.0 200 OK\r\n\r\nuntil the end";
    struct seen seen = { 0 };
    struct http_fwd_opts o = base;
    struct run r = { 0 };

    (void)state;
    o.done = seen_cb;
    o.arg = &seen;
    http_fwd_init(&r.f, &o);
    FEEDS(&r, true, "GET /e HTTP/1.1\r\n\r\n");
    FEEDS(&r, false, rs);
    assert_int_equal(seen.n, 0);
    http_fwd_response_eof(&r.f);
    expect_seen(&seen, 0, HTTP_GET, "/e", 200, 19, LEN(rs), HF_END_DONE);
    run_done(&r);

    memset(&seen, 0, sizeof(seen));
    memset(&r, 0, sizeof(r));
    http_fwd_init(&r.f, &o);
    FEEDS(&r, true, "GET /c HTTP/1.1\r\n\r\nGET /d HT");
    FEEDS(&r, false, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
    http_fwd_response_eof(&r.f);
    assert_int_equal(seen.n, 0);
    http_fwd_flush(&r.f);
    expect_seen(&seen, 0, HTTP_GET, "/c", 200, 19, 42, HF_END_CUT);
    expect_seen(&seen, 1, -1, "", 0, 9, 0, HF_END_CUT);        /* the head never ended */
    run_done(&r);
}

/* tlsterm's own answer is an exchange too; long targets are cut. */
static void
test_exchange_answered_and_cut_path(void **state)
{
    struct seen seen = { 0 };
    struct http_fwd_opts o = base;
    struct run r = { 0 };
    char rq[1024];

    (void)state;
    o.done = seen_cb;
    o.arg = &seen;
    http_fwd_init(&r.f, &o);
    snprintf(rq, sizeof(rq), "GET /%0600d HTTP/1.1\r\nBad Name: x\r\n\r\n", 0);
    feed(&r, true, rq, strlen(rq), SIZE_MAX);
    assert_int_equal(r.f.status, 400);
    http_fwd_answered(&r.f, 99);
    assert_int_equal(seen.n, 1);
    assert_int_equal(seen.r[0].status, 400);
    assert_int_equal(seen.r[0].out, 99);
    assert_int_equal(seen.r[0].in, strlen(rq));
    assert_int_equal(seen.r[0].end, HF_END_ANSWERED);
    assert_int_equal(strlen(seen.r[0].path), HTTP_FWD_PATH_MAX);
    assert_true(seen.r[0].cut);
    run_done(&r);
}

/* Idle when last is asked: the next request is the last one.  Its answer
 * says Connection: close instead of keep-alive, and nothing after it is
 * taken either way. */
static void
test_last_idle_takes_one_more(void **state)
{
    static const char rs[] = "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n"
                             "Keep-Alive: timeout=5\r\nContent-Length: 2\r\n\r\nok";
    struct run r = { 0 };
    char *got;

    (void)state;
    http_fwd_init(&r.f, &base);
    assert_true(http_fwd_idle(&r.f));
    http_fwd_last(&r.f);
    assert_false(http_fwd_requests_done(&r.f));
    FEEDS(&r, true, "GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n");
    assert_int_equal(r.used, 19);
    assert_true(http_fwd_requests_done(&r.f));
    assert_true(http_fwd_blocked(&r.f));
    free(out_str(&r));
    FEEDS(&r, false, "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n"
          "Content-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n");
    assert_int_equal(r.used, LEN(rs));
    assert_true(http_fwd_finished(&r.f));
    got = out_str(&r);
    assert_string_equal(got, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                             "Connection: close\r\n\r\nok");
    free(got);
    run_done(&r);
}

/* The answer tlsterm owes is due after the last exchange too. */
static void
test_last_then_answer_due(void **state)
{
    struct run r = { 0 };

    (void)state;
    http_fwd_init(&r.f, &base);
    FEEDS(&r, true, "GET /1 HTTP/1.1\r\n\r\n");
    http_fwd_last(&r.f);
    FEEDS(&r, false, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    assert_true(http_fwd_finished(&r.f));
    assert_true(http_fwd_responses_done(&r.f));
    run_done(&r);

    memset(&r, 0, sizeof(r));
    http_fwd_init(&r.f, &base);
    http_fwd_last(&r.f);
    FEEDS(&r, true, "GET /1 HTTP/1.1\r\nBad Name: x\r\n\r\n");
    assert_int_equal(r.f.status, 400);
    assert_true(http_fwd_responses_done(&r.f));
    assert_false(http_fwd_finished(&r.f));
    run_done(&r);
}

/* Two requests forwarded when last is asked: the first answer is left as
 * it is, the second says close (RFC 9112 9.6: close after that one). */
static void
test_last_in_flight_pipelined(void **state)
{
    static const char rs[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    struct http_fwd_opts o = base;
    struct run r = { 0 };
    char *got;

    (void)state;
    o.hsts = "max-age=1";
    http_fwd_init(&r.f, &o);
    FEEDS(&r, true, "GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n");
    assert_false(http_fwd_idle(&r.f));
    http_fwd_last(&r.f);
    assert_true(http_fwd_requests_done(&r.f));
    FEEDS(&r, true, "GET /3 HTTP/1.1\r\n\r\n");
    assert_int_equal(r.used, 0);
    free(out_str(&r));
    FEEDS(&r, false, rs);
    assert_false(http_fwd_finished(&r.f));
    got = out_str(&r);
    assert_null(strstr(got, "Connection"));
    free(got);
    FEEDS(&r, false, rs);
    assert_true(http_fwd_finished(&r.f));
    got = out_str(&r);
    assert_string_equal(got, "HTTP/1.1 200 OK\r\nStrict-Transport-Security: max-age=1\r\n"
                             "Content-Length: 0\r\nConnection: close\r\n\r\n");
    free(got);
    run_done(&r);
}

/* A head half read when last is asked: that request is the last one; a
 * 100 Continue before its answer is no final answer; an upgrade is no
 * keep-alive to end. */
static void
test_last_partial_head_and_tunnel(void **state)
{
    struct run r = { 0 };
    char *got;

    (void)state;
    http_fwd_init(&r.f, &base);
    FEEDS(&r, true, "POST /p HTTP/1.1\r\nContent-");
    http_fwd_last(&r.f);
    FEEDS(&r, true, "Length: 1\r\n\r\nxGET / HTTP/1.1\r\n\r\n");
    assert_int_equal(r.used, 14);
    assert_true(http_fwd_requests_done(&r.f));
    FEEDS(&r, false, "HTTP/1.1 100 Continue\r\n\r\n");
    assert_false(http_fwd_finished(&r.f));
    FEEDS(&r, false, "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
    assert_true(http_fwd_finished(&r.f));
    assert_non_null(memmem(r.out.p, r.out.len, "Connection: close\r\n\r\n", 21));
    run_done(&r);

    memset(&r, 0, sizeof(r));
    http_fwd_init(&r.f, &base);
    FEEDS(&r, true, "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
    FEEDS(&r, false, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
          "Connection: Upgrade\r\n\r\n");
    http_fwd_last(&r.f);
    assert_true(http_fwd_tunnel(&r.f));
    assert_false(http_fwd_finished(&r.f));
    got = out_str(&r);
    assert_null(strstr(got, "close"));
    free(got);
    run_done(&r);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adds_headers),
        cmocka_unit_test(test_untrusted_spoofs_removed),
        cmocka_unit_test(test_trusted_appends),
        cmocka_unit_test(test_forwarded_v6_and_cert),
        cmocka_unit_test(test_pipelined_any_split),
        cmocka_unit_test(test_malformed_400),
        cmocka_unit_test(test_head_limit_431),
        cmocka_unit_test(test_reject_503),
        cmocka_unit_test(test_upgrade_101_tunnel),
        cmocka_unit_test(test_upgrade_refused),
        cmocka_unit_test(test_upgrade_refused_early),
        cmocka_unit_test(test_connect_refused_by_default),
        cmocka_unit_test(test_connect_200_tunnel),
        cmocka_unit_test(test_response_framing),
        cmocka_unit_test(test_hsts),
        cmocka_unit_test(test_queue_limit),
        cmocka_unit_test(test_bad_response_502),
        cmocka_unit_test(test_answers),
        cmocka_unit_test(test_chunks_reframed),
        cmocka_unit_test(test_underscore_spoofs_removed),
        cmocka_unit_test(test_connection_header_kept),
        cmocka_unit_test(test_h2c_offer_dropped),
        cmocka_unit_test(test_ambiguous_framing_400),
        cmocka_unit_test(test_no_body_statuses),
        cmocka_unit_test(test_unasked_101_is_fatal),
        cmocka_unit_test(test_both_sides_fail),
        cmocka_unit_test(test_exchanges_pair_in_order),
        cmocka_unit_test(test_exchange_ends_at_eof),
        cmocka_unit_test(test_exchange_answered_and_cut_path),
        cmocka_unit_test(test_last_idle_takes_one_more),
        cmocka_unit_test(test_last_in_flight_pipelined),
        cmocka_unit_test(test_last_then_answer_due),
        cmocka_unit_test(test_last_partial_head_and_tunnel),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
