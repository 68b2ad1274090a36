/* SPDX-License-Identifier: BSD-2-Clause */
/* conn_redirect.c - the port-80 companion: a plain-HTTP listener with
 * redirect_to_https answers each connection's first request with a 308
 * to the same host and path over https, then closes.  Only the request
 * head is read (at most limits.buffer_size); nothing goes to a backend. */
#include "autoconf.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "conn_int.h"
#include "gen.h"
#include "http_redirect.h"

static const char too_large[] =
    "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\n"
    "Connection: close\r\n\r\n";

/* A canned error answer (fits any buffer_size, at least 1k). */
static void
redirect_error(struct conn *c, const char *answer, size_t len)
{
    memcpy(c->down.buf, answer, len);
    c->down.len = len;
}

/* Fills the down buffer with the answer to a complete head; the reason
 * says what it was. */
static void
redirect_answer(struct conn *c, enum redirect_verdict v, const struct redirect_req *r)
{
    size_t cap = c->g->cfg->limits.buffer_size;

    c->down.len = redirect_response(v, r, c->lc->https_port, c->down.buf, cap);
    if (c->down.len == 0) {
        redirect_error(c, too_large, sizeof(too_large) - 1);
        snprintf(c->fail, sizeof(c->fail), "redirect longer than %zu bytes (431)", cap);
    } else if (v == REDIRECT_OK) {
        char port[8] = "";
        if (c->lc->https_port != 443)
            snprintf(port, sizeof(port), ":%u", c->lc->https_port);
        snprintf(c->fail, sizeof(c->fail), "redirected (308) to https://%.150s%s%.200s",
                 r->host, port, r->target);
    } else if (v == REDIRECT_TOO_LONG) {
        snprintf(c->fail, sizeof(c->fail), "target over %d bytes (414)",
                 REDIRECT_TARGET_MAX);
    } else {
        snprintf(c->fail, sizeof(c->fail), "bad request (400): %s", r->why);
    }
}

/* 1: answered (or cannot be), 0: wait, -1: closed. */
static int
redirect_read(struct conn *c)
{
    size_t cap = c->g->cfg->limits.buffer_size;
    struct half *h = &c->up;
    ssize_t n = recv(c->cfd, h->buf + h->len, cap - h->len, 0);
    struct redirect_req req;
    enum redirect_verdict v;

    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        conn_close(c, n == 0 ? "client closed before the request" : "client read error");
        return -1;
    }
    if (n < 0) {
        c->hs_wait = WAIT_CREAD;
        return 0;
    }
    h->len += (size_t)n;
    h->bytes += (uint64_t)n;
    v = redirect_parse(h->buf, h->len, &req);
    if (v != REDIRECT_MORE) {
        redirect_answer(c, v, &req);
        return 1;
    }
    if (h->len < cap) {
        c->hs_wait = WAIT_CREAD;
        return 0;
    }
    redirect_error(c, too_large, sizeof(too_large) - 1);
    snprintf(c->fail, sizeof(c->fail), "request head over %zu bytes (431)", cap);
    return 1;
}

void
conn_redirect(struct conn *c)
{
    ssize_t n;

    if (half_buffer(c, &c->up) != 0 || half_buffer(c, &c->down) != 0)
        return;
    if (c->down.len == 0) {
        int r = redirect_read(c);
        if (r <= 0)
            return;
    }
    n = send(c->cfd, c->down.buf + c->down.off, c->down.len - c->down.off, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        c->hs_wait = WAIT_CWRITE;
        return;
    }
    if (n > 0) {
        c->down.off += (size_t)n;
        c->down.bytes += (uint64_t)n;
    }
    if (n > 0 && c->down.off < c->down.len) {
        c->hs_wait = WAIT_CWRITE;
        return;
    }
    conn_close(c, n < 0 ? "client write error" : c->fail);
}
