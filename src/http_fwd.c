/* SPDX-License-Identifier: BSD-2-Clause */
/* http_fwd.c - see http_fwd.h.  http-parser checks every head and frames
 * every body; the rewriting itself works on whole header lines, so a line
 * is either passed on byte for byte or left out. */
#include "autoconf.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_fwd.h"

/* Flags of a forwarded request, kept until its response is relayed. */
enum { Q_HEAD = 1, Q_UPGRADE = 2, Q_CONNECT = 4 };

/* ---- small helpers ---------------------------------------------------- */

int
hbuf_put(struct hbuf *b, const void *s, size_t n)
{
    if (n == 0)
        return 0;
    if (n > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 1024;
        char *p;
        while (cap - b->len < n)
            cap *= 2;
        p = realloc(b->p, cap);
        if (p == NULL)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    return 0;
}

static int
hbuf_puts(struct hbuf *b, const char *s)
{
    return hbuf_put(b, s, strlen(s));
}

static void fwd_fail(struct http_fwd *f, const struct http_side *s, int status,
                     const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Each side keeps its first failure: a request error must not hide a
 * response error, which ends the connection. */
static void
fwd_fail(struct http_fwd *f, const struct http_side *s, int status, const char *fmt, ...)
{
    int *st = s == &f->rq ? &f->status : &f->rs_status;
    char *why = s == &f->rq ? f->why : f->rs_why;
    va_list ap;

    if (*st != 0)
        return;
    *st = status;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(f->why), fmt, ap);
    va_end(ap);
}

static void
fwd_oom(struct http_fwd *f, const struct http_side *s)
{
    fwd_fail(f, s, -1, "out of memory");
}

struct line {
    const char *p;
    size_t len;                 /* without the line end */
    size_t full;                /* with it */
};

static bool
next_line(const char *buf, size_t len, size_t *off, struct line *l)
{
    const char *nl;

    if (*off >= len)
        return false;
    nl = memchr(buf + *off, '\n', len - *off);
    l->p = buf + *off;
    l->full = (nl ? (size_t)(nl - buf) + 1 : len) - *off;
    l->len = l->full;
    if (l->len > 0 && l->p[l->len - 1] == '\n')
        l->len--;
    if (l->len > 0 && l->p[l->len - 1] == '\r')
        l->len--;
    *off += l->full;
    return true;
}

/* A header name equals (or, with prefix, starts with) want, which is lower
 * case.  "_" counts as "-": CGI, PHP and WSGI servers map both to the same
 * HTTP_X_FORWARDED_FOR, so X_Forwarded_For would spoof it. */
static bool
hname_eq(const char *p, size_t n, const char *want, bool prefix)
{
    size_t w = strlen(want);

    if (prefix ? n < w : n != w)
        return false;
    for (size_t i = 0; i < w; i++) {
        int ch = tolower((unsigned char)p[i]);
        if ((ch == '_' ? '-' : ch) != want[i])
            return false;
    }
    return true;
}

static size_t
name_len(const struct line *l)
{
    const char *colon = memchr(l->p, ':', l->len);

    return colon ? (size_t)(colon - l->p) : l->len;
}

/* The header line's name is want (or, with prefix, starts with it). */
static bool
name_is(const struct line *l, const char *want, bool prefix)
{
    return hname_eq(l->p, name_len(l), want, prefix);
}

/* The headers tlsterm sets: a client can neither send nor drop them. */
static bool
is_ours(const char *p, size_t n)
{
    return hname_eq(p, n, "x-forwarded-for", false) || hname_eq(p, n, "x-forwarded-proto", false) ||
           hname_eq(p, n, "x-forwarded-port", false) || hname_eq(p, n, "forwarded", false) ||
           hname_eq(p, n, "x-ssl-client-", true);
}

/* RFC 9110 token characters.  Debian builds http-parser without
 * HTTP_PARSER_STRICT, which lets a space into a header name: "Transfer-
 * Encoding : chunked" is a request-smuggling classic, so names are checked
 * here. */
static bool
name_valid(const struct line *l)
{
    static const char extra[] = "!#$%&'*+-.^_`|~";
    size_t i = 0;

    for (; i < l->len && l->p[i] != ':'; i++) {
        unsigned char ch = (unsigned char)l->p[i];
        if (!((ch >= '0' && ch <= '9') || ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'z') ||
              (ch != '\0' && strchr(extra, ch) != NULL)))
            return false;
    }
    return i > 0 && i < l->len;
}

/* Appends the line's value, trimmed, to a comma-separated list. */
static int
list_add(struct hbuf *list, const struct line *l)
{
    const char *v = memchr(l->p, ':', l->len), *end = l->p + l->len;

    for (v++; v < end && (*v == ' ' || *v == '\t'); v++)
        ;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    if (end == v)
        return 0;
    if (list->len > 0 && hbuf_puts(list, ", ") != 0)
        return -1;
    return hbuf_put(list, v, (size_t)(end - v));
}

/* ---- exchanges ------------------------------------------------------- */

static void
req_clear(struct http_fwd_req *r)
{
    free(r->path);
    memset(r, 0, sizeof(*r));
    r->method = -1;
}

/* Reports an exchange once, then forgets it. */
static void
req_report(struct http_fwd *f, struct http_fwd_req *r, enum http_fwd_end end)
{
    if (r->seq == 0)
        r->seq = f->requests + 1;       /* never forwarded: the next number */
    if (f->o->done != NULL)
        f->o->done(f->o->arg, f, r, end);
    req_clear(r);
}

/* The exchange the response side is working on, or NULL. */
static struct http_fwd_req *
req_front(struct http_fwd *f)
{
    return f->q_n ? &f->q[f->q_first] : NULL;
}

/* The request the request side streams a body of (the last forwarded),
 * or NULL when its response ended early. */
static struct http_fwd_req *
req_tail(struct http_fwd *f)
{
    return f->q_n ? &f->q[(f->q_first + f->q_n - 1) % HTTP_FWD_QUEUE] : NULL;
}

static void
req_count_in(struct http_fwd *f, struct http_fwd_req *r, size_t n)
{
    if (r == NULL || n == 0)
        return;
    if (r->in == 0)
        r->t0 = f->now;
    r->in += n;
}

/* ---- heads ----------------------------------------------------------- */

/* Moves bytes into s->head up to the empty line that ends a head.  Blank
 * lines before a message are skipped, as RFC 9112 section 2.2 allows. */
static size_t
head_collect(struct http_fwd *f, struct http_side *s, const char *in, size_t len,
             size_t limit, bool *complete)
{
    size_t i = 0;

    *complete = false;
    while (i < len) {
        const char *nl;
        size_t take;
        if (s->head_len == 0 && (in[i] == '\r' || in[i] == '\n')) {
            i++;
            continue;
        }
        nl = memchr(in + i, '\n', len - i);
        take = nl ? (size_t)(nl - (in + i)) + 1 : len - i;
        if (take > limit - s->head_len) {
            fwd_fail(f, s, s == &f->rq ? 431 : 502, "%s head over %zu bytes",
                     s == &f->rq ? "request" : "response", limit);
            return i;
        }
        if (s->head_len + take > s->head_cap) {
            size_t cap = s->head_cap ? s->head_cap * 2 : 2048;
            char *p;
            while (cap < s->head_len + take)
                cap *= 2;
            p = realloc(s->head, cap);
            if (p == NULL) {
                fwd_oom(f, s);
                return i;
            }
            s->head = p;
            s->head_cap = cap;
        }
        memcpy(s->head + s->head_len, in + i, take);
        s->head_len += take;
        i += take;
        if (nl != NULL) {
            size_t n = s->head_len - s->line_at;
            bool empty = n == 1 || (n == 2 && s->head[s->line_at] == '\r');
            s->line_at = s->head_len;
            if (empty) {
                *complete = true;
                return i;
            }
        }
    }
    return i;
}

/* A tunnel's bytes go on as they are; all of them, or none without memory. */
static size_t
tunnel_pass(struct http_fwd *f, const struct http_side *s, const char *in, size_t len,
            struct hbuf *out)
{
    if (hbuf_put(out, in, len) == 0)
        return len;
    fwd_oom(f, s);
    return 0;
}

/* Heads are freed once passed on: idle keep-alive connections stay small. */
static void
head_reset(struct http_side *s)
{
    free(s->head);
    s->head = NULL;
    s->head_len = s->head_cap = s->line_at = 0;
}

/* ---- http-parser ------------------------------------------------------ */

static int
rq_headers_complete(http_parser *p)
{
    struct http_fwd *f = p->data;

    f->rq.hdone = true;
    return 0;
}

static int
rq_message_complete(http_parser *p)
{
    struct http_fwd *f = p->data;

    f->rq.done = true;
    http_parser_pause(p, 1);    /* the next head must be rewritten first */
    return 0;
}

/* A response's framing depends on its request: HEAD and a 2xx to CONNECT
 * have no body. */
static int
rs_headers_complete(http_parser *p)
{
    struct http_fwd *f = p->data;
    uint8_t front = f->q_n ? f->q[f->q_first].flags : 0;

    unsigned status = p->status_code;

    f->rs.hdone = true;
    /* RFC 9110 6.4.1: whatever Content-Length or Transfer-Encoding says */
    if ((front & Q_HEAD) || ((front & Q_CONNECT) && status / 100 == 2) || status / 100 == 1 ||
        status == 204 || status == 304)
        return 1;
    return 0;
}

static int
rs_message_complete(http_parser *p)
{
    struct http_fwd *f = p->data;

    f->rs.done = true;
    http_parser_pause(p, 1);
    return 0;
}

/* Request bodies are framed anew rather than copied: http-parser is
 * lenient about chunk syntax (a bare LF in an extension, any two bytes
 * after chunk data), and a backend that reads the raw bytes differently
 * would see a request we never rewrote.  So the backend gets exactly the
 * data http-parser found, in canonical chunks, without extensions or
 * trailers (a trailer could carry an X-Forwarded-For). */
/* Output of the callbacks; a failure stops http-parser. */
static int
rq_emit(struct http_fwd *f, const void *data, size_t len)
{
    if (hbuf_put(f->out, data, len) == 0)
        return 0;
    fwd_oom(f, &f->rq);
    return -1;
}

static int
rq_body_data(http_parser *p, const char *at, size_t len)
{
    return rq_emit(p->data, at, len);
}

static int
rq_chunk_header(http_parser *p)
{
    struct http_fwd *f = p->data;
    char line[32];

    snprintf(line, sizeof(line), "%llx\r\n", (unsigned long long)p->content_length);
    return rq_emit(f, line, strlen(line));
}

static int
rq_chunk_complete(http_parser *p)
{
    /* after the last chunk: the end of the (now empty) trailer section */
    return rq_emit(p->data, "\r\n", 2);
}

/* The target is kept for the log only: without memory it is not. */
static int
rq_url(http_parser *p, const char *at, size_t len)
{
    struct http_fwd_req *r = &((struct http_fwd *)p->data)->cur;
    size_t room;

    if (r->path == NULL && (r->path = malloc(HTTP_FWD_PATH_MAX)) == NULL)
        return 0;
    room = HTTP_FWD_PATH_MAX - r->path_len;
    if (len > room) {
        len = room;
        r->path_cut = true;
    }
    memcpy(r->path + r->path_len, at, len);
    r->path_len += len;
    return 0;
}

static const http_parser_settings rq_settings = {
    .on_url = rq_url,
    .on_headers_complete = rq_headers_complete,
    .on_message_complete = rq_message_complete,
    .on_body = rq_body_data,
    .on_chunk_header = rq_chunk_header,
    .on_chunk_complete = rq_chunk_complete,
};

static const http_parser_settings rs_settings = {
    .on_headers_complete = rs_headers_complete,
    .on_message_complete = rs_message_complete,
};

/* Bytes http-parser took, or -1 (with why) on a parse error. */
static long
side_exec(struct http_side *s, const http_parser_settings *set, const char *data,
          size_t len, const char **why)
{
    size_t n = http_parser_execute(&s->p, set, data, len);
    enum http_errno e = HTTP_PARSER_ERRNO(&s->p);

    if (e == HPE_PAUSED) {
        http_parser_pause(&s->p, 0);
        return (long)n;
    }
    if (e != HPE_OK) {
        *why = http_errno_description(e);
        return -1;
    }
    return (long)n;
}

/* Runs a fresh parser over a whole head: 0 when it is a valid one. */
static int
head_parse(struct http_fwd *f, struct http_side *s, enum http_parser_type type,
           const char **why)
{
    long n;

    http_parser_init(&s->p, type);
    s->p.data = f;
    s->hdone = s->done = false;
    n = side_exec(s, type == HTTP_REQUEST ? &rq_settings : &rs_settings, s->head,
                  s->head_len, why);
    if (n < 0)
        return -1;
    if ((size_t)n != s->head_len || !s->hdone) {
        *why = "incomplete head";
        return -1;
    }
    return 0;
}

static bool
has_header(const char *head, size_t len, const char *name)
{
    size_t off = 0;
    struct line l;

    next_line(head, len, &off, &l);
    while (next_line(head, len, &off, &l) && l.len > 0)
        if (name_is(&l, name, false))
            return true;
    return false;
}

/* ---- requests --------------------------------------------------------- */

static bool
ip_is_v6(const char *ip)
{
    return strchr(ip, ':') != NULL;
}

/* Header values from a certificate may hold any byte; a control byte
 * would end the header line early. */
static int
put_sanitised(struct hbuf *out, const char *v)
{
    for (; *v; v++) {
        char ch = ((unsigned char)*v < 0x20 || *v == 0x7f) ? '?' : *v;
        if (hbuf_put(out, &ch, 1) != 0)
            return -1;
    }
    return 0;
}

static int
rq_add_headers(struct http_fwd *f, struct hbuf *out, const struct hbuf *xff,
               const struct hbuf *fwd)
{
    const struct http_fwd_opts *o = f->o;
    char tail[256];
    int rc = 0;

    rc |= hbuf_puts(out, "X-Forwarded-For: ");
    if (xff->len > 0) {
        rc |= hbuf_put(out, xff->p, xff->len);
        rc |= hbuf_puts(out, ", ");
    }
    snprintf(tail, sizeof(tail), "%s\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Port: %u\r\n",
             o->client_ip, o->port);
    rc |= hbuf_puts(out, tail);
    if (o->rfc7239) {
        rc |= hbuf_puts(out, "Forwarded: ");
        if (fwd->len > 0) {
            rc |= hbuf_put(out, fwd->p, fwd->len);
            rc |= hbuf_puts(out, ", ");
        }
        snprintf(tail, sizeof(tail), ip_is_v6(o->client_ip) ? "for=\"[%s]\";proto=https\r\n"
                                                           : "for=%s;proto=https\r\n",
                 o->client_ip);
        rc |= hbuf_puts(out, tail);
    }
    for (const char *const *c = o->cert; c != NULL && c[0] != NULL; c += 2) {
        rc |= hbuf_puts(out, c[0]);
        rc |= hbuf_puts(out, ": ");
        rc |= put_sanitised(out, c[1]);
        rc |= hbuf_puts(out, "\r\n");
    }
    return rc | hbuf_puts(out, "\r\n");
}

/* An upgrade to h2c would carry HTTP/2 requests through the tunnel, out
 * of reach of the rewriting: the offer is dropped (as HAProxy does), and
 * the backend answers the request as plain HTTP/1.1. */
static bool
is_h2c_upgrade(const struct line *l)
{
    if (name_is(l, "http2-settings", false))
        return true;
    if (!name_is(l, "upgrade", false))
        return false;
    for (size_t i = 0; i + 3 <= l->len; i++)
        if (strncasecmp(l->p + i, "h2c", 3) == 0)
            return true;
    return false;
}

/* "Connection: close, X-Forwarded-For" would have a next hop that honours
 * Connection drop the header we add (and the client's address with it). */
static bool
connection_names_ours(const struct line *l)
{
    const char *p = l->p + name_len(l) + 1, *end = l->p + l->len;

    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p)), *e = comma ? comma : end;
        const char *q = e;
        while (p < q && (*p == ' ' || *p == '\t'))
            p++;
        while (q > p && (q[-1] == ' ' || q[-1] == '\t'))
            q--;
        if (is_ours(p, (size_t)(q - p)))
            return true;
        p = e + 1;
    }
    return false;
}

/* Why a header line of a request is refused, or NULL. */
static const char *
rq_line_problem(const struct line *l)
{
    if (l->p[0] == ' ' || l->p[0] == '\t')
        return "obsolete line folding";
    if (!name_valid(l))
        return "invalid header name";
    /* a backend that reads "_" as "-" would frame the body differently */
    if ((name_is(l, "content-length", false) || name_is(l, "transfer-encoding", false)) &&
        memchr(l->p, '_', name_len(l)) != NULL)
        return "\"_\" in a framing header name";
    if (name_is(l, "connection", false) && connection_names_ours(l))
        return "Connection names a forwarding header";
    return NULL;
}

/* Client-supplied forwarding headers are dropped unless the client is
 * trusted; then X-Forwarded-For (and Forwarded, when we send one) are
 * merged into ours.  -1: out of memory; 1: a malformed line, in *why. */
static int
rq_rewrite(struct http_fwd *f, struct hbuf *out, const char **why)
{
    const struct http_side *s = &f->rq;
    bool trusted = f->o->trusted, rfc = f->o->rfc7239;
    struct hbuf xff = { 0 }, fwd = { 0 };
    size_t off = 0;
    struct line l;
    int rc;

    next_line(s->head, s->head_len, &off, &l);
    rc = hbuf_put(out, l.p, l.full);
    while (rc == 0 && next_line(s->head, s->head_len, &off, &l) && l.len > 0) {
        if ((*why = rq_line_problem(&l)) != NULL)
            rc = 1;
        else if (name_is(&l, "x-forwarded-for", false))
            rc = trusted ? list_add(&xff, &l) : 0;
        else if (name_is(&l, "forwarded", false) && (!trusted || rfc))
            rc = trusted ? list_add(&fwd, &l) : 0;
        else if (!name_is(&l, "x-forwarded-proto", false) &&
                 !name_is(&l, "x-forwarded-port", false) && !name_is(&l, "x-ssl-client-", true) &&
                 !is_h2c_upgrade(&l))
            rc = hbuf_put(out, l.p, l.full);
    }
    if (rc == 0)
        rc = rq_add_headers(f, out, &xff, &fwd);
    free(xff.p);
    free(fwd.p);
    return rc;
}

/* Framing a backend could read differently from http-parser is refused
 * rather than passed on (RFC 9112 section 6.1; RFC 9110 section 9.3.6). */
static const char *
rq_framing_problem(const struct http_side *s)
{
    bool te = has_header(s->head, s->head_len, "transfer-encoding");
    bool cl = has_header(s->head, s->head_len, "content-length");

    if (te && s->p.http_major == 1 && s->p.http_minor == 0)
        return "Transfer-Encoding in an HTTP/1.0 request";
    if (s->p.method == HTTP_CONNECT && (te || cl))
        return "CONNECT with a body";
    return NULL;
}

static void
rq_head_done(struct http_fwd *f, struct hbuf *out)
{
    struct http_side *s = &f->rq;
    size_t mark = out->len;
    const char *why = "";
    int rc;

    f->out = out;
    if (head_parse(f, s, HTTP_REQUEST, &why) != 0) {
        fwd_fail(f, s, 400, "malformed request: %s", why);
        return;
    }
    f->cur.method = (int)s->p.method;
    if ((why = rq_framing_problem(s)) != NULL) {
        fwd_fail(f, s, 400, "malformed request: %s", why);
        return;
    }
    if (f->o->reject != 0) {
        fwd_fail(f, s, f->o->reject, "%s", f->o->reject_why ? f->o->reject_why : "rejected");
        return;
    }
    /* An origin server that answers 200 to anything would otherwise turn
     * the connection into a tunnel for unrewritten requests. */
    if (s->p.method == HTTP_CONNECT && !f->o->allow_connect) {
        fwd_fail(f, s, 501, "CONNECT is not allowed (allow_connect is off)");
        return;
    }
    s->flags = s->p.method == HTTP_HEAD ? Q_HEAD
             : s->p.method == HTTP_CONNECT ? Q_CONNECT
             : s->p.upgrade ? Q_UPGRADE : 0;
    rc = rq_rewrite(f, out, &why);
    if (rc != 0) {
        out->len = mark;
        if (rc > 0)
            fwd_fail(f, s, 400, "malformed request: %s", why);
        else
            fwd_oom(f, s);
        return;
    }
    head_reset(s);
    f->cur.flags = s->flags;
    f->cur.seq = ++f->requests;
    f->q[(f->q_first + f->q_n++) % HTTP_FWD_QUEUE] = f->cur;
    memset(&f->cur, 0, sizeof(f->cur));
    f->cur.method = -1;
    s->st = HF_BODY;
}

/* Between requests: the next head, or nothing after the last exchange. */
static enum http_fwd_state
rq_next_state(const struct http_fwd *f)
{
    return f->last != 0 && f->requests >= f->last ? HF_CLOSED : HF_HEAD;
}

/* After a whole request: the next head, or a wait for the answer to an
 * Upgrade or CONNECT. */
static void
rq_message_done(struct http_fwd *f)
{
    struct http_side *s = &f->rq;

    s->done = false;
    s->st = (s->flags & (Q_UPGRADE | Q_CONNECT)) ? HF_WAIT : rq_next_state(f);
}

static size_t
rq_body(struct http_fwd *f, const char *in, size_t len, struct hbuf *out)
{
    struct http_side *s = &f->rq;
    const char *why = "";
    long n;

    if (s->done) {              /* no body: it ended with the head */
        rq_message_done(f);
        return 0;
    }
    f->out = out;
    n = side_exec(s, &rq_settings, in, len, &why);
    if (n < 0) {
        fwd_fail(f, s, 400, "malformed request body: %s", why);
        return 0;
    }
    req_count_in(f, req_tail(f), (size_t)n);
    if (s->done)
        rq_message_done(f);
    return (size_t)n;
}

size_t
http_fwd_request(struct http_fwd *f, const char *in, size_t len, struct hbuf *out)
{
    struct http_side *s = &f->rq;
    size_t used = 0;

    while (f->status == 0 && !http_fwd_blocked(f)) {
        bool complete;
        size_t n;
        if (s->st == HF_TUNNEL) {
            used += tunnel_pass(f, s, in + used, len - used, out);
            break;
        }
        if (s->st == HF_BODY) {
            if (used == len && !s->done)
                break;          /* len 0 would tell http-parser the stream ended */
            used += rq_body(f, in + used, len - used, out);
            if (s->st == HF_BODY)
                break;          /* http-parser took all it could */
            continue;
        }
        if (used == len)
            break;
        n = head_collect(f, s, in + used, len - used, f->o->max_head, &complete);
        req_count_in(f, &f->cur, n);
        used += n;
        if (complete)
            rq_head_done(f, out);
    }
    return used;
}

/* ---- responses -------------------------------------------------------- */

/* The front exchange ended: reported, and out of the queue. */
static uint8_t
rs_pop(struct http_fwd *f, unsigned status)
{
    struct http_fwd_req *r = req_front(f);
    uint8_t flags;

    if (r == NULL)
        return 0;
    flags = r->flags;
    r->status = status;
    f->q_first = (f->q_first + 1) % HTTP_FWD_QUEUE;
    f->q_n--;
    f->responses++;
    req_report(f, r, HF_END_DONE);
    return flags;
}

static void
rs_message_done(struct http_fwd *f)
{
    struct http_side *s = &f->rs;
    unsigned status = s->p.status_code;
    uint8_t front;

    s->done = false;
    s->st = HF_HEAD;
    if (status / 100 == 1 && status != 101)
        return;                 /* interim: the final response follows */
    front = rs_pop(f, status);
    if (status == 101 && !(front & Q_UPGRADE)) {
        fwd_fail(f, s, 502, "backend switched protocols without an Upgrade request");
        return;
    }
    if (status == 101 || ((front & Q_CONNECT) && status / 100 == 2)) {
        s->st = f->rq.st = HF_TUNNEL;
        return;
    }
    if (f->last != 0 && f->responses >= f->last)
        s->st = HF_CLOSED;
    /* Refused.  The Upgrade request is the last one forwarded, so it is
     * the request side's current message: waiting, or (with a body, and
     * a backend that answered early) still streaming. */
    if (front & (Q_UPGRADE | Q_CONNECT)) {
        if (f->rq.st == HF_WAIT)
            f->rq.st = rq_next_state(f);
        else
            f->rq.flags &= (uint8_t)~(Q_UPGRADE | Q_CONNECT);
    }
}

/* The final response of the last exchange says the connection ends,
 * unless it turns the connection into a tunnel. */
static bool
rs_is_last(const struct http_fwd *f)
{
    const struct http_fwd_req *r = f->q_n ? &f->q[f->q_first] : NULL;
    unsigned status = f->rs.p.status_code;

    return f->last != 0 && r != NULL && r->seq >= f->last && status >= 200 &&
           !((r->flags & Q_CONNECT) && status / 100 == 2);
}

/* The Connection header of the last response becomes "close", and
 * Keep-Alive goes with the keep-alive it described. */
static int
rs_put_lines(const struct http_side *s, size_t off, bool close, struct hbuf *out)
{
    struct line l;
    int rc = 0;

    while (rc == 0 && next_line(s->head, s->head_len, &off, &l)) {
        if (l.len == 0 && close)
            rc = hbuf_puts(out, "Connection: close\r\n");
        if (!(close && l.len > 0 &&
              (name_is(&l, "connection", false) || name_is(&l, "keep-alive", false))))
            rc |= hbuf_put(out, l.p, l.full);
    }
    return rc;
}

static int
rs_rewrite(struct http_fwd *f, struct hbuf *out)
{
    const struct http_side *s = &f->rs;
    const char *hsts = f->o->hsts;
    bool close = rs_is_last(f);
    size_t off = 0;
    struct line l;
    int rc = 0;

    if (hsts != NULL && (s->p.status_code < 200 ||
                         has_header(s->head, s->head_len, "strict-transport-security")))
        hsts = NULL;
    if (hsts == NULL && !close)
        return hbuf_put(out, s->head, s->head_len);
    next_line(s->head, s->head_len, &off, &l);
    rc |= hbuf_put(out, l.p, l.full);
    if (hsts != NULL) {
        rc |= hbuf_puts(out, "Strict-Transport-Security: ");
        rc |= hbuf_puts(out, hsts);
        rc |= hbuf_puts(out, "\r\n");
    }
    return rc | rs_put_lines(s, off, close, out);
}

static void
rs_head_done(struct http_fwd *f, struct hbuf *out)
{
    struct http_side *s = &f->rs;
    struct http_fwd_req *r;
    const char *why = "";
    size_t mark;

    if (head_parse(f, s, HTTP_RESPONSE, &why) != 0) {
        fwd_fail(f, s, 502, "backend sent a malformed response: %s", why);
        return;
    }
    mark = out->len;
    if (rs_rewrite(f, out) != 0) {
        fwd_oom(f, s);
        return;
    }
    if ((r = req_front(f)) != NULL) {
        r->out += out->len - mark;
        if (s->p.status_code / 100 != 1 || s->p.status_code == 101)
            r->status = s->p.status_code;       /* known even if the body is cut */
    }
    head_reset(s);
    s->st = HF_BODY;
    if (s->done)
        rs_message_done(f);
}

static size_t
rs_body(struct http_fwd *f, const char *in, size_t len, struct hbuf *out)
{
    struct http_side *s = &f->rs;
    const char *why = "";
    long n = side_exec(s, &rs_settings, in, len, &why);

    if (n < 0) {
        fwd_fail(f, s, 502, "backend sent a malformed response body: %s", why);
        return 0;
    }
    if (hbuf_put(out, in, (size_t)n) != 0) {
        fwd_oom(f, s);
        return 0;
    }
    if (req_front(f) != NULL)
        req_front(f)->out += (uint64_t)n;
    if (s->done)
        rs_message_done(f);
    return (size_t)n;
}

size_t
http_fwd_response(struct http_fwd *f, const char *in, size_t len, struct hbuf *out)
{
    struct http_side *s = &f->rs;
    size_t used = 0;

    while (used < len && f->rs_status == 0) {
        bool complete;
        size_t before = used;
        if (s->st == HF_CLOSED)
            break;
        if (s->st == HF_TUNNEL) {
            used += tunnel_pass(f, s, in + used, len - used, out);
            break;
        }
        if (s->st == HF_BODY) {
            used += rs_body(f, in + used, len - used, out);
            if (s->st == HF_BODY)
                break;
            continue;
        }
        used += head_collect(f, s, in + used, len - used, HTTP_FWD_HEAD_MAX, &complete);
        if (complete)
            rs_head_done(f, out);
        else if (used == before)
            break;
    }
    return used;
}

/* ---- state ------------------------------------------------------------ */

void
http_fwd_init(struct http_fwd *f, const struct http_fwd_opts *o)
{
    memset(f, 0, sizeof(*f));
    f->o = o;
    f->cur.method = -1;
}

void
http_fwd_free(struct http_fwd *f)
{
    head_reset(&f->rq);
    head_reset(&f->rs);
    for (; f->q_n > 0; f->q_n--, f->q_first = (f->q_first + 1) % HTTP_FWD_QUEUE)
        req_clear(&f->q[f->q_first]);
    req_clear(&f->cur);
}

bool
http_fwd_blocked(const struct http_fwd *f)
{
    return f->rq.st == HF_WAIT || f->rq.st == HF_CLOSED ||
           (f->rq.st == HF_HEAD && f->q_n == HTTP_FWD_QUEUE);
}

bool
http_fwd_idle(const struct http_fwd *f)
{
    return f->rq.st == HF_HEAD && f->rq.head_len == 0 && f->q_n == 0 &&
           f->rs.st == HF_HEAD && f->rs.head_len == 0 && f->status == 0 && f->rs_status == 0;
}

void
http_fwd_last(struct http_fwd *f)
{
    struct http_side *s = &f->rq;

    if (f->last != 0 || s->st == HF_TUNNEL || f->rs.st == HF_TUNNEL)
        return;
    /* a head being collected, or none yet and nothing owed: the next one */
    if (s->st == HF_HEAD && (s->head_len > 0 || f->q_n == 0))
        f->last = f->requests + 1;
    else
        f->last = f->requests;
    if (s->st == HF_HEAD)
        s->st = rq_next_state(f);
    /* its response came early, while its body still streams */
    if (f->responses >= f->last && f->rs.st == HF_HEAD && f->rs.head_len == 0)
        f->rs.st = HF_CLOSED;
}

bool
http_fwd_finished(const struct http_fwd *f)
{
    return f->rs.st == HF_CLOSED;
}

bool
http_fwd_requests_done(const struct http_fwd *f)
{
    return f->rq.st == HF_CLOSED;
}

void
http_fwd_response_eof(struct http_fwd *f)
{
    struct http_side *s = &f->rs;
    const char *why = "";

    /* len 0 tells http-parser the stream ended: a body read until the
     * close is complete; anything else is an error, left for the flush */
    if (s->st != HF_BODY || f->rs_status != 0 || side_exec(s, &rs_settings, NULL, 0, &why) < 0)
        return;
    if (s->done)
        rs_message_done(f);
}

void
http_fwd_answered(struct http_fwd *f, size_t len)
{
    f->cur.status = (unsigned)f->status;
    f->cur.out = len;
    if (f->cur.in == 0)
        f->cur.t0 = f->now;
    req_report(f, &f->cur, HF_END_ANSWERED);
}

void
http_fwd_flush(struct http_fwd *f)
{
    for (; f->q_n > 0; f->q_n--, f->q_first = (f->q_first + 1) % HTTP_FWD_QUEUE)
        req_report(f, &f->q[f->q_first], HF_END_CUT);
    if (f->cur.in > 0)
        req_report(f, &f->cur, HF_END_CUT);
}

bool
http_fwd_responses_done(const struct http_fwd *f)
{
    return f->q_n == 0 && (f->rs.st == HF_HEAD || f->rs.st == HF_CLOSED) && f->rs.head_len == 0;
}

bool
http_fwd_tunnel(const struct http_fwd *f)
{
    return f->rs.st == HF_TUNNEL;
}

const char *
http_fwd_answer(int status, size_t *len)
{
    static const char *const answers[] = {
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n"
        "Connection: close\r\n\r\nBad Request\n",
        "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: text/plain\r\n"
        "Content-Length: 32\r\nConnection: close\r\n\r\nRequest Header Fields Too Large\n",
        "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n"
        "Connection: close\r\n\r\nBad Gateway\n",
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
        "Content-Length: 20\r\nConnection: close\r\n\r\nService Unavailable\n",
        "HTTP/1.1 501 Not Implemented\r\nContent-Type: text/plain\r\n"
        "Content-Length: 16\r\nConnection: close\r\n\r\nNot Implemented\n",
    };
    const char *a = status == 431 ? answers[1] : status == 502 ? answers[2]
                  : status == 503 ? answers[3] : status == 501 ? answers[4] : answers[0];

    *len = strlen(a);
    return a;
}
