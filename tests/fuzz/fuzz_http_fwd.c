/* SPDX-License-Identifier: BSD-2-Clause */
/* Fuzz target for the forwarded_headers rewriter (src/http_fwd.c).
 *
 * Input: one byte of options, one byte of read size, then the client's
 * bytes and the backend's bytes separated by the first "\0\0".  Both
 * streams are fed in interleaved pieces, as the relay would; the read
 * size byte's top bits also pick a round after which the exchange in
 * progress is the last (a drain), and whether an exchange is answered;
 * the backend's EOF and the connection's end follow.
 *
 * With clang's libFuzzer:
 *   clang -g -fsanitize=fuzzer,address,undefined -DFUZZ_LIBFUZZER -I. -Isrc \
 *       tests/fuzz/fuzz_http_fwd.c src/http_fwd.c -lhttp_parser -o fuzz_http_fwd
 * Without it (make check) the shared driver (driver.c) mutates the seeds with a
 * fixed random seed, so a failure is reproducible. */
#include "autoconf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "http_fwd.h"


/* Reported exchanges must be whole: a path within its limit, a seq. */
static void
done_cb(void *arg, const struct http_fwd *f, const struct http_fwd_req *r, enum http_fwd_end end)
{
    (void)arg;
    (void)f;
    if (r->seq == 0 || r->path_len > HTTP_FWD_PATH_MAX || (r->path == NULL && r->path_len) ||
        (unsigned)end > HF_END_CUT)
        abort();
}

static size_t
feed(struct http_fwd *f, bool request, const char *in, size_t len, struct hbuf *out)
{
    size_t n = request ? http_fwd_request(f, in, len, out) : http_fwd_response(f, in, len, out);

    if (n > len)
        abort();
    return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const cert[] = { "X-SSL-Client-Subject", "CN=x\ry", NULL };
    struct http_fwd_opts o = { .max_head = 512, .client_ip = "2001:db8::1", .port = 443 };
    struct http_fwd f;
    struct hbuf out = { 0 };
    const char *rq, *rs, *sep;
    size_t rq_len, rs_len, rq_off = 0, rs_off = 0, step;
    unsigned last_round, round = 0;

    if (size < 2)
        return 0;
    o.trusted = data[0] & 1;
    o.rfc7239 = data[0] & 2;
    o.hsts = (data[0] & 4) ? "max-age=1" : NULL;
    o.cert = (data[0] & 8) ? cert : NULL;
    o.reject = (data[0] & 16) ? 503 : 0;
    o.allow_connect = data[0] & 32;
    o.done = (data[0] & 64) ? done_cb : NULL;
    step = 1 + data[1] % 64;
    last_round = (unsigned)(data[1] >> 6);
    rq = (const char *)data + 2;
    sep = memmem(rq, size - 2, "\0\0", 2);
    rq_len = sep ? (size_t)(sep - rq) : size - 2;
    rs = sep ? sep + 2 : rq + rq_len;
    rs_len = (size_t)((const char *)data + size - rs);
    http_fwd_init(&f, &o);
    for (;;) {
        size_t a = rq_len - rq_off < step ? rq_len - rq_off : step;
        size_t b = rs_len - rs_off < step ? rs_len - rs_off : step;
        size_t ta = a ? feed(&f, true, rq + rq_off, a, &out) : 0;
        size_t tb = b ? feed(&f, false, rs + rs_off, b, &out) : 0;
        rq_off += ta;
        rs_off += tb;
        out.len = 0;
        if (++round == last_round)
            http_fwd_last(&f);
        if (ta == 0 && tb == 0)
            break;              /* both ended, failed or wait on each other */
    }
    if (f.status > 0 && (data[0] & 128))
        http_fwd_answered(&f, 12);
    http_fwd_response_eof(&f);
    http_fwd_flush(&f);
    http_fwd_free(&f);
    free(out.p);
    return 0;
}

#ifndef FUZZ_LIBFUZZER
const char fuzz_name[] = "http_fwd";
const struct fuzz_seed fuzz_seeds[] = {
    FUZZ_SEED("\x01\x07GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n"
    "POST /p HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
    "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x\r\nabc\r\n0\r\nT: 1\r\n\r\n"
    "\0\0HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    "HTTP/1.0 200 OK\r\n\r\nuntil eof"),
    FUZZ_SEED("\x06\x03GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n\x81\x01x"
    "\0\0HTTP/1.1 101 Switching\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n\x81\x01y"),
    FUZZ_SEED("\x41\x48GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\n"
    "\0\0HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx"
    "HTTP/1.1 200 OK\r\nKeep-Alive: timeout=1\r\n\r\nclose-delimited"),
    FUZZ_SEED("\x0f\x10HEAD / HTTP/1.1\r\n\r\nCONNECT a:1 HTTP/1.1\r\n\r\nraw"
    "\0\0HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nHTTP/1.1 200 OK\r\n\r\nraw"),
};
const size_t fuzz_n_seeds = sizeof(fuzz_seeds) / sizeof(fuzz_seeds[0]);
const long fuzz_iterations = 300000;
#endif
