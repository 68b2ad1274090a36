/* SPDX-License-Identifier: BSD-2-Clause */
/* conn_http.c - a connection to a forwarded_headers backend.  The relay's
 * fill steps run each direction's bytes through http_fwd (the client's
 * into the up buffer, the backend's into the down buffer); the answer the
 * rewriter owes the client (400, 431, 503) is written after every
 * response already due, then the connection ends through the usual path.
 *
 * Each direction reads into its own input buffer first, because the
 * rewriter may take only part of it (it waits while an Upgrade or CONNECT
 * is undecided) and its output can be larger than its input.
 *
 * The rewriter knows where requests and responses end, so each exchange
 * gets its own log line, and a stop ends keep-alive connections between
 * requests instead of waiting out timeouts.drain for idle clients. */
#include "autoconf.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "conn.h"
#include "conn_int.h"
#include "gen.h"
#include "http_fwd.h"
#include "log.h"
#include "tls.h"
#include "worker.h"

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
    bool last_set;              /* http_fwd_last() called for a stop */
};

/* ---- the per-request log line ----------------------------------------- */

/* The target is the client's text: whatever could end the quoted field or
 * the line becomes '?', as client-chosen text does in the access line. */
static void
http_log_path(char *out, size_t cap, const struct http_fwd_req *r)
{
    size_t n = 0;

    for (size_t i = 0; i < r->path_len && n + 1 < cap; i++) {
        unsigned char ch = (unsigned char)r->path[i];
        out[n++] = (ch < 0x20 || ch == 0x7f || ch == '"' || ch == '\\') ? '?' : (char)ch;
    }
    if (r->path_cut && n + 4 <= cap) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
}

/* The client ended the connection (or failed): its requests were not
 * cut short by tlsterm or the backend. */
static bool
http_client_left(const struct conn *c)
{
    return c->up.eof || strncmp(c->reason, "client", 6) == 0;
}

/* How an exchange ended when not by its response: "" when it did. */
static void
http_log_end(const struct conn *c, const struct http_fwd *f, const struct http_fwd_req *r,
             enum http_fwd_end end, char *out, size_t cap)
{
    char why[300];

    out[0] = '\0';
    if (end == HF_END_DONE)
        return;
    if (end == HF_END_ANSWERED)
        snprintf(why, sizeof(why), "answered by tlsterm: %s", f->why);
    else
        snprintf(why, sizeof(why), "connection closed %s: %s",
                 r == &f->cur ? "mid-request" : r->status ? "mid-response"
                 : "before the response", c->reason);
    for (char *p = why; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == '"' || *p == '\\')
            *p = '?';
    snprintf(out, cap, " end=\"%s\"", why);
}

/* One line per exchange.  It never ends in a quoted reason="...", so no
 * reader takes it for the connection's access line.  Like that line it
 * is info with log.access, else debug; what failed (tlsterm's own answer,
 * a response that never came whole while the client waited) stays at
 * info, as errors stay visible with log.access off. */
static void
http_log_exchange(void *arg, const struct http_fwd *f, const struct http_fwd_req *r,
                  enum http_fwd_end end)
{
    struct conn *c = arg;
    bool failed = end == HF_END_ANSWERED ||
                  (end == HF_END_CUT && r != &f->cur && !http_client_left(c));
    enum log_level lvl = c->g->cfg->log_access || failed ? LOG_LVL_INFO : LOG_LVL_DEBUG;
    char path[HTTP_FWD_PATH_MAX + 4], status[16], note[sizeof(c->fail) + 64];
    uint64_t now = conn_now_ms();

    metrics_add(&conn_ml(c)->http_requests, 1);
    if (!log_enabled(lvl))
        return;
    http_log_path(path, sizeof(path), r);
    snprintf(status, sizeof(status), r->status ? "%u" : "-", r->status);
    http_log_end(c, f, r, end, note, sizeof(note));
    log_msg(lvl, "conn=%llu req=%llu client=%s listener=%s method=%s path=%s%s%s status=%s "
            "in=%llu out=%llu ms=%llu%s", (unsigned long long)c->id,
            (unsigned long long)r->seq, c->peer, c->lc->name,
            r->method >= 0 ? http_method_str((enum http_method)r->method) : "-",
            r->path ? "\"" : "", r->path ? path : "-", r->path ? "\"" : "", status,
            (unsigned long long)r->in, (unsigned long long)r->out,
            (unsigned long long)(now > r->t0 ? now - r->t0 : 0), note);
}

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
    hc->o.done = http_log_exchange;
    hc->o.arg = c;
    http_fwd_init(&hc->f, &hc->o);
    c->http = hc;
    c->proto = &conn_proto_http;
    /* started while the worker drains: one request, then Connection: close */
    if (c->w->draining) {
        http_fwd_last(&hc->f);
        hc->last_set = true;
    }
    return 1;
}

static void
conn_http_free(struct conn *c)
{
    struct http_conn *hc = c->http;

    if (hc == NULL)
        return;
    hc->f.now = conn_now_ms();
    http_fwd_flush(&hc->f);
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
    size_t n;

    f->now = conn_now_ms();
    n = request ? http_fwd_request(f, in->buf + in->off, in->len - in->off, &out)
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

static int
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
        if (http_fwd_requests_done(&hc->f)) {      /* the last request went: read no more */
            http_idle(&hc->up, h, WAIT_NONE);
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

static bool
conn_http_up_ready(const struct conn *c)
{
    return c->http->up.len > 0 && !http_fwd_blocked(&c->http->f);
}

/* The owed answer goes out once every response before it has. */
static bool
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
    hc->f.now = conn_now_ms();
    http_fwd_answered(&hc->f, len);
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
        hc->f.now = conn_now_ms();
        http_fwd_response_eof(&hc->f);     /* ends a response read until the close */
        h->eof = true;
        return 1;
    case READ_WAIT:
        http_idle(&hc->down, h, WAIT_BREAD);
        return 0;
    default:
        return 0;
    }
}

static int
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
        if (http_fwd_finished(&hc->f)) {   /* the last response went: close_notify, FIN */
            h->eof = true;
            return 1;
        }
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
static void
conn_http_backend_gone(struct conn *c)
{
    if (http_fwd_tunnel(&c->http->f))
        return;
    http_idle(&c->http->up, &c->up, WAIT_NONE);
    up_end(c);
}

/* A request failed: its answer is owed, being written, or was sent. */
static bool
conn_http_request_failed(const struct conn *c)
{
    return c->http->f.status != 0;
}

/* The access log's reason when the rewriter answered or gave up. */
static bool
http_reason(struct conn *c, char *buf, size_t len)
{
    struct http_conn *hc = c->http;

    if (hc != NULL && hc->f.status == 0 && http_fwd_finished(&hc->f) && hc->last_set) {
        snprintf(buf, len, "done (Connection: close for shutdown)");
        return true;
    }
    if (hc == NULL || hc->f.status == 0)
        return false;
    snprintf(buf, len, "%s %d: %s", hc->answered ? "answered" : "could not answer",
             hc->f.status, hc->f.why);
    return true;
}

/* One direction can wait on the other: requests on the answer to an
 * Upgrade, the owed error answer on the responses before it. */
static void
http_after_pump(struct conn *c)
{
    if (c->state != CONN_RELAY)
        return;
    if (!c->up.done && c->up.wait == WAIT_NONE && conn_http_up_ready(c))
        conn_pump_up(c);
    if (!c->down.done && conn_http_answer_due(c))
        conn_pump_down(c);
    if (c->state == CONN_RELAY && c->down.done && !c->up.done)
        conn_http_backend_gone(c);
    if (c->state == CONN_RELAY && c->bfd < 0 && c->up.done && !c->down.done &&
        !conn_http_request_failed(c))
        conn_closef(c, "client left before a request; %s", c->fail);
}

const struct conn_proto conn_proto_http = {
    .fill_up = conn_http_up_fill,
    .fill_down = conn_http_down_fill,
    .after_pump = http_after_pump,
    .reason = http_reason,
    .free = conn_http_free,
};

/* ---- stopping ------------------------------------------------------- */

/* Between requests, with nothing buffered either way and nothing more
 * sent by the client (not even a TLS record being read). */
static bool
http_between_requests(const struct conn *c)
{
    const struct http_conn *hc = c->http;
    char b;

    return http_fwd_idle(&hc->f) && hc->up.len == 0 && hc->down.len == 0 && c->up.len == 0 &&
           c->down.len == 0 && !c->up.done && !c->down.done && c->up.wait == WAIT_CREAD &&
           !(c->kick & WAIT_CREAD) && recv(c->cfd, &b, 1, MSG_PEEK | MSG_DONTWAIT) <= 0;
}

/* An idle keep-alive connection closes now (close_notify through the
 * close path); one with a request in progress closes after its response,
 * which says Connection: close.  Tunnels run on until timeouts.drain. */
static void
conn_http_drain(struct conn *c)
{
    struct http_conn *hc = c->http;

    if (http_between_requests(c)) {
        /* "done": a clean end, which log.access: false keeps at debug */
        conn_close(c, "done (idle keep-alive closed for shutdown)");
        conn_finish(c);
        return;
    }
    http_fwd_last(&hc->f);
    hc->last_set = true;
    /* each side looks at its new state at once (one may be over already) */
    c->kick |= (unsigned)c->up.wait | (unsigned)c->down.wait;
    conn_finish(c);
}

void
conn_drain_start(struct worker *w)
{
    struct conn *next;

    for (struct conn *c = w->conns; c != NULL; c = next) {
        next = c->next;
        if (c->state == CONN_RELAY && c->http != NULL)
            conn_http_drain(c);
    }
}
