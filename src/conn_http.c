/* SPDX-License-Identifier: BSD-2-Clause */
/* conn_http.c - a connection to a forwarded_headers backend.  The relay's
 * fill steps run each direction's bytes through http_fwd (the client's
 * into the up buffer, the backend's into the down buffer); the answer the
 * rewriter owes the client (400, 431, 503) is written after every
 * response already due, then the connection ends through the usual path.
 *
 * Each direction reads into its own input buffer first, because the
 * rewriter may take only part of it (it waits while an Upgrade or CONNECT
 * is undecided) and its output can be larger than its input. */
#include "autoconf.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "conn_int.h"
#include "gen.h"
#include "http_fwd.h"
#include "log.h"
#include "tls.h"

struct http_in {
    char *buf;
    size_t off, len;
};

struct http_conn {
    struct http_fwd f;
    struct http_fwd_opts o;
    char ip[INET6_ADDRSTRLEN];
    const char *cert[11];
    char verify[160];
    struct http_in up, down;
    bool answered;
};

/* ---- set-up ----------------------------------------------------------- */

/* The port the client connected to (0 when unknown). */
static unsigned
http_local_port(const struct conn *c)
{
    struct sockaddr_storage ss;

    conn_local_addr(c, &ss);
    if (ss.ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)&ss)->sin6_port);
    return ss.ss_family == AF_INET ? ntohs(((const struct sockaddr_in *)&ss)->sin_port) : 0;
}

/* nginx's $ssl_client_verify vocabulary: SUCCESS, NONE, FAILED:reason. */
static void
http_cert_headers(struct http_conn *hc, const struct tls_conn *t)
{
    const struct tls_peer *p = tls_peer(t);
    const char *v = tls_peer_verify(t);
    size_t n = 0;

    if (p == NULL || v == NULL || strcmp(v, "none") == 0)
        snprintf(hc->verify, sizeof(hc->verify), "NONE");
    else if (strcmp(v, "ok") == 0)
        snprintf(hc->verify, sizeof(hc->verify), "SUCCESS");
    else
        snprintf(hc->verify, sizeof(hc->verify), "FAILED:%s", v);
    hc->cert[n++] = "X-SSL-Client-Verify";
    hc->cert[n++] = hc->verify;
    if (p != NULL) {
        hc->cert[n++] = "X-SSL-Client-Subject";
        hc->cert[n++] = p->subject;
        hc->cert[n++] = "X-SSL-Client-Issuer";
        hc->cert[n++] = p->issuer;
        hc->cert[n++] = "X-SSL-Client-Serial";
        hc->cert[n++] = p->serial;
        hc->cert[n++] = "X-SSL-Client-SHA256";
        hc->cert[n++] = p->sha256;
    }
    hc->cert[n] = NULL;
    hc->o.cert = hc->cert;
}

/* HTTP/2 frames cannot be rewritten as HTTP/1 heads: said once per
 * listener and generation, not once per connection. */
static void
http_note_h2(struct conn *c)
{
    if (!atomic_exchange(&c->g->h2_noted[c->lidx], true))
        log_warn("listener=%s backend=%s: ALPN chose h2, so forwarded_headers are not "
                 "added on its HTTP/2 connections (offer only http/1.1 in alpn to have them)",
                 c->lc->name, c->be->name);
}

int
conn_http_start(struct conn *c, int reject, const char *why)
{
    const struct config_backend *be = c->be;
    struct http_conn *hc;

    if (!be->http.enabled)
        return 0;
    if (c->tls != NULL && strcmp(tls_alpn(c->tls), "h2") == 0) {
        http_note_h2(c);
        return 0;
    }
    hc = calloc(1, sizeof(*hc));
    if (hc == NULL) {
        conn_close(c, "out of memory for HTTP state");
        return -1;
    }
    conn_format_ip(hc->ip, sizeof(hc->ip), &c->peer_ss);
    hc->o = (struct http_fwd_opts){
        .max_head = be->http.max_head,
        .trusted = conn_trusted(c->lc, &c->peer_ss),
        .rfc7239 = be->http.rfc7239,
        .client_ip = hc->ip,
        .port = http_local_port(c),
        .hsts = be->http.hsts,
        .reject = reject,
        .reject_why = why,
        .allow_connect = be->http.allow_connect,
    };
    if (be->http.client_cert)
        http_cert_headers(hc, c->tls);
    http_fwd_init(&hc->f, &hc->o);
    c->http = hc;
    return 1;
}

void
conn_http_free(struct conn *c)
{
    struct http_conn *hc = c->http;

    if (hc == NULL)
        return;
    http_fwd_free(&hc->f);
    free(hc->up.buf);
    free(hc->down.buf);
    free(hc);
    c->http = NULL;
}

/* ---- the relay's fill steps ------------------------------------------ */

/* The rewriter's output, grown in place, becomes what the half sends. */
static void
half_take(struct half *h, const struct hbuf *out)
{
    h->buf = out->p;
    h->cap = out->cap;
    h->len = out->len;
    h->off = 0;
}

/* Runs unprocessed input through one side of the rewriter into the half's
 * (now empty) buffer, which grows as needed.  0: it made no progress,
 * which only a wait or an error may explain. */
static int
http_process(struct conn *c, struct http_in *in, struct half *h, bool request)
{
    struct http_fwd *f = &c->http->f;
    struct hbuf out = { h->buf, 0, h->cap };
    size_t n = request ? http_fwd_request(f, in->buf + in->off, in->len - in->off, &out)
                       : http_fwd_response(f, in->buf + in->off, in->len - in->off, &out);

    in->off += n;
    if (in->off == in->len)
        in->off = in->len = 0;
    half_take(h, &out);
    if (n > 0 || out.len > 0 || (request ? f->status != 0 || http_fwd_blocked(f)
                                         : f->rs_status != 0))
        return 1;
    /* never spin on input the rewriter will not take */
    conn_closef(c, "internal error: HTTP %s rewriter stalled", request ? "request" : "response");
    return 0;
}

static int
http_in_buffer(struct conn *c, struct http_in *in)
{
    if (in->buf == NULL)
        in->buf = malloc(c->g->cfg->limits.buffer_size);
    if (in->buf == NULL) {
        conn_close(c, "out of memory");
        return -1;
    }
    return 0;
}

/* An idle direction gives both its buffers back. */
static void
http_idle(struct http_in *in, struct half *h, enum conn_wait wait)
{
    free(in->buf);
    in->buf = NULL;
    in->off = in->len = 0;
    half_idle(h, wait);
}

/* The request side failed: nothing more goes to the backend, which still
 * answers what it already has. */
static void
http_up_failed(struct conn *c)
{
    struct http_conn *hc = c->http;

    if (hc->f.status < 0) {
        conn_closef(c, "%s", hc->f.why);
        return;
    }
    log_debug("conn=%llu client=%s: answering %d: %s", (unsigned long long)c->id, c->peer,
              hc->f.status, hc->f.why);
    http_idle(&hc->up, &c->up, WAIT_NONE);
    up_end(c);
}

int
conn_http_up_fill(struct conn *c)
{
    struct http_conn *hc = c->http;
    struct half *h = &c->up;
    enum conn_wait wait = WAIT_NONE;

    for (int reads = 0;; reads++) {
        if (hc->f.status != 0) {
            http_up_failed(c);
            return 0;
        }
        if (hc->up.len > 0) {
            if (http_fwd_blocked(&hc->f)) {
                h->wait = WAIT_NONE;    /* conn_http_up_ready() resumes it */
                return 0;
            }
            if (!http_process(c, &hc->up, h, true))
                return 0;
            if (h->len > 0)
                return 1;
            continue;
        }
        /* Input that yields nothing yet (a head arriving in pieces, blank
         * lines) must not hold the worker: yield like a pump does. */
        if (reads >= CONN_PUMP_ROUNDS) {
            h->wait = WAIT_CREAD;
            c->kick |= WAIT_CREAD;
            return 0;
        }
        if (http_in_buffer(c, &hc->up) != 0)
            return 0;
        /* t_io moves only when bytes are relayed, so a head sent a byte at
         * a time still meets the idle timeout */
        switch (conn_read_client(c, hc->up.buf, &hc->up.len, &wait)) {
        case READ_DATA:
            continue;
        case READ_END:
            h->eof = true;
            return 1;
        case READ_WAIT:
            http_idle(&hc->up, h, wait);
            return 0;
        default:
            return 0;
        }
    }
}

bool
conn_http_up_ready(const struct conn *c)
{
    return c->http->up.len > 0 && !http_fwd_blocked(&c->http->f);
}

/* The owed answer goes out once every response before it has. */
bool
conn_http_answer_due(const struct conn *c)
{
    const struct http_conn *hc = c->http;

    return hc->f.status > 0 && !hc->answered && http_fwd_responses_done(&hc->f);
}

static int
http_answer(struct conn *c)
{
    struct http_conn *hc = c->http;
    struct half *h = &c->down;
    size_t len;
    const char *a = http_fwd_answer(hc->f.status, &len);
    struct hbuf out = { h->buf, 0, h->cap };

    hc->answered = true;
    if (hbuf_put(&out, a, len) != 0) {
        conn_close(c, "out of memory");
        return 0;
    }
    half_take(h, &out);
    h->eof = true;              /* close_notify and FIN follow the answer */
    return 1;
}

/* The answer owed, if any, was checked before: a backend's EOF does not
 * make one due. */
static int
http_backend_read(struct conn *c)
{
    struct http_conn *hc = c->http;
    struct half *h = &c->down;

    if (http_in_buffer(c, &hc->down) != 0)
        return 0;
    switch (conn_read_backend(c, hc->down.buf, &hc->down.len)) {
    case READ_DATA:
        return 1;
    case READ_END:
        h->eof = true;
        return 1;
    case READ_WAIT:
        http_idle(&hc->down, h, WAIT_BREAD);
        return 0;
    default:
        return 0;
    }
}

int
conn_http_down_fill(struct conn *c)
{
    struct http_conn *hc = c->http;
    struct half *h = &c->down;

    for (;;) {
        if (hc->f.rs_status != 0) {     /* responses can no longer be paired: end */
            conn_closef(c, "%s", hc->f.rs_why);
            return 0;
        }
        if (hc->f.status < 0) {
            conn_closef(c, "%s", hc->f.why);
            return 0;
        }
        if (conn_http_answer_due(c))
            return http_answer(c);
        if (hc->down.len > 0) {
            if (!http_process(c, &hc->down, h, false))
                return 0;
            if (h->len > 0)
                return 1;
            continue;
        }
        if (c->bfd < 0) {       /* no server: only an answer can come */
            h->wait = WAIT_NONE;
            return 0;
        }
        if (!http_backend_read(c))
            return 0;
        if (h->eof || h->len > 0)
            return 1;
    }
}

/* The backend is gone (and this is no tunnel): no further request can be
 * answered, so the client's are not read any more. */
void
conn_http_backend_gone(struct conn *c)
{
    if (http_fwd_tunnel(&c->http->f))
        return;
    http_idle(&c->http->up, &c->up, WAIT_NONE);
    up_end(c);
}

/* A request failed: its answer is owed, being written, or was sent. */
bool
conn_http_request_failed(const struct conn *c)
{
    return c->http->f.status != 0;
}

/* The access log's reason when the rewriter answered or gave up. */
const char *
conn_http_reason(struct conn *c)
{
    struct http_conn *hc = c->http;

    if (hc == NULL || hc->f.status == 0)
        return NULL;
    snprintf(c->reason_buf, sizeof(c->reason_buf), "%s %d: %s",
             hc->answered ? "answered" : "could not answer", hc->f.status, hc->f.why);
    return c->reason_buf;
}
