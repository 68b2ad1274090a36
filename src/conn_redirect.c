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

static const char bad_request[] =
    "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
static const char too_large[] =
    "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\n"
    "Connection: close\r\n\r\n";

/* The Host header's host part (no port), when it is a plausible name or
 * address; a client-chosen string goes into our Location otherwise. */
static int
redirect_host(const char *head, char *out, size_t len)
{
    const char *p = head;
    size_t n;

    while ((p = strstr(p, "\r\n")) != NULL) {
        p += 2;
        if (strncasecmp(p, "host:", 5) != 0)
            continue;
        p += 5;
        p += strspn(p, " \t");
        n = p[0] == '[' ? strcspn(p, "]") + 1 : strcspn(p, ":\r\n \t");
        if (n == 0 || n >= len || (p[0] == '[' && p[n - 1] != ']'))
            return -1;
        for (size_t i = 0; i < n; i++)
            if (!isalnum((unsigned char)p[i]) && !strchr(".-[]:_", p[i]))
                return -1;
        /* then only ":port" and blanks up to the end of the line */
        const char *rest = p + n;
        if (*rest == ':')
            rest += 1 + strspn(rest + 1, "0123456789");
        rest += strspn(rest, " \t");
        if (strncmp(rest, "\r\n", 2) != 0)
            return -1;
        memcpy(out, p, n);
        out[n] = '\0';
        return 0;
    }
    return -1;
}

/* A canned error answer (both fit any buffer_size, at least 1k). */
static void
redirect_error(struct conn *c, const char *answer, size_t len)
{
    memcpy(c->down.buf, answer, len);
    c->down.len = len;
}

/* Fills the down buffer with the response; the reason says what it was. */
static void
redirect_answer(struct conn *c, const char *head)
{
    char host[256], target[2048], port[8] = "";
    size_t cap = c->g->cfg->limits.buffer_size;
    int n;

    if (sscanf(head, "%*[A-Z] %2047s HTTP/1.%*[01]\r", target) != 1 || target[0] != '/' ||
        target[strcspn(target, "\"<>\\\\^`{|}")] != '\0' ||
        redirect_host(head, host, sizeof(host)) != 0) {
        redirect_error(c, bad_request, sizeof(bad_request) - 1);
        snprintf(c->reason_buf, sizeof(c->reason_buf), "bad request (400)");
        return;
    }
    if (c->lc->https_port != 443)
        snprintf(port, sizeof(port), ":%u", c->lc->https_port);
    n = snprintf(c->down.buf, cap, "HTTP/1.1 308 Permanent Redirect\r\nLocation: https://%s%s%s"
                 "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", host, port, target);
    if (n < 0 || (size_t)n >= cap) {
        redirect_error(c, too_large, sizeof(too_large) - 1);
        snprintf(c->reason_buf, sizeof(c->reason_buf), "redirect longer than %zu bytes (431)",
                 cap);
        return;
    }
    c->down.len = (size_t)n;
    snprintf(c->reason_buf, sizeof(c->reason_buf), "redirected (308) to https://%.200s%s%.200s",
             host, port, target);
}

/* 1: the head is complete (or cannot be), 0: wait, -1: closed. */
static int
redirect_read(struct conn *c)
{
    size_t cap = c->g->cfg->limits.buffer_size;
    struct half *h = &c->up;
    ssize_t n = recv(c->cfd, h->buf + h->len, cap - 1 - h->len, 0);

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
    h->buf[h->len] = '\0';
    if (strstr(h->buf, "\r\n\r\n") != NULL)
        return 1;
    if (h->len < cap - 1) {
        c->hs_wait = WAIT_CREAD;
        return 0;
    }
    redirect_error(c, too_large, sizeof(too_large) - 1);
    snprintf(c->reason_buf, sizeof(c->reason_buf), "request head over %zu bytes (431)", cap - 1);
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
        if (c->down.len == 0)
            redirect_answer(c, c->up.buf);
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
    conn_close(c, n < 0 ? "client write error" : c->reason_buf);
}
