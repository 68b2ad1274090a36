/* SPDX-License-Identifier: BSD-2-Clause */
/* http_fwd.h - HTTP/1.x rewriting for backends with forwarded_headers.
 *
 * Pure: bytes in, bytes out, no I/O, so it is unit-tested and fuzzed on its
 * own.  The request side collects each request head whole, has http-parser
 * check and frame it, strips client-supplied forwarding headers that are not
 * to be trusted and appends ours; bodies pass through as http-parser frames
 * them (Content-Length or chunked), so every request of a keep-alive or
 * pipelined connection is rewritten.  The response side frames responses
 * the same way: it pairs each with its request (HEAD has no body, a 101 or
 * a 2xx to CONNECT turns both directions into a tunnel) and may add
 * Strict-Transport-Security.  The request side waits while an Upgrade or
 * CONNECT is undecided, so nothing unrewritten can slip through behind a
 * refused upgrade.
 *
 * Each request and its response make one exchange (struct http_fwd_req),
 * reported once through o->done: when the response ends (its last byte
 * relayed into the output), when tlsterm answers the request itself, or
 * from http_fwd_flush() when the connection ends first; the access log's
 * per-request line comes from it.  http_fwd_last() makes the next response
 * the connection's last one (Connection: close): a draining daemon ends
 * keep-alive connections where requests end. */
#ifndef TLSTERM_HTTP_FWD_H
#define TLSTERM_HTTP_FWD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <http_parser.h>

/* Requests forwarded whose responses have not been relayed yet; beyond it
 * the request side waits (bounded memory, like a pipelining limit). */
#define HTTP_FWD_QUEUE 32
/* http-parser refuses heads over its compiled-in HTTP_MAX_HEADER_SIZE. */
#define HTTP_FWD_HEAD_MAX (80 * 1024)

/* A growable output buffer. */
struct hbuf {
    char *p;
    size_t len, cap;
};

/* Request targets longer than this are cut in the exchange record. */
#define HTTP_FWD_PATH_MAX 256

/* One request and its response, for the log. */
struct http_fwd_req {
    uint64_t seq;               /* 1 for the connection's first request */
    uint64_t t0;                /* f->now when its first byte came */
    uint64_t in;                /* bytes of it taken from the client */
    uint64_t out;               /* bytes of its response(s) put out, 1xx included */
    char *path;                 /* its target, raw, at most HTTP_FWD_PATH_MAX; NULL: unknown */
    size_t path_len;
    bool path_cut;              /* ... cut there */
    int method;                 /* enum http_method; -1 unknown (unparsable head) */
    unsigned status;            /* the response's, 0 none (yet); 1xx are not kept */
    uint8_t flags;              /* Q_* (http_fwd.c) */
};

/* Why an exchange is reported. */
enum http_fwd_end {
    HF_END_DONE,                /* the response ended (or turned into a tunnel) */
    HF_END_ANSWERED,            /* tlsterm answered it: f->status, f->why */
    HF_END_CUT,                 /* the connection ended first (http_fwd_flush) */
};

struct http_fwd;
typedef void http_fwd_done_fn(void *arg, const struct http_fwd *f, const struct http_fwd_req *r,
                              enum http_fwd_end end);

struct http_fwd_opts {
    size_t max_head;            /* request head limit: 431 beyond it */
    bool trusted;               /* keep and extend the client's X-Forwarded-For */
    bool rfc7239;               /* also send Forwarded */
    const char *client_ip;      /* no port, no brackets */
    unsigned port;              /* X-Forwarded-Port: the port the client connected to */
    const char *const *cert;    /* NULL or name, value, ..., NULL */
    const char *hsts;           /* NULL: no Strict-Transport-Security */
    int reject;                 /* non-zero: answer each request with this status */
    const char *reject_why;     /* ... for this reason (the log's) */
    bool allow_connect;         /* CONNECT may become a tunnel (the backend is a proxy) */
    http_fwd_done_fn *done;     /* NULL, or told of every exchange */
    void *arg;                  /* ... with this */
};

/* HF_CLOSED: after the last exchange (http_fwd_last), nothing more is taken. */
enum http_fwd_state { HF_HEAD, HF_BODY, HF_WAIT, HF_TUNNEL, HF_CLOSED };

struct http_side {
    http_parser p;
    enum http_fwd_state st;
    char *head;
    size_t head_len, head_cap;
    size_t line_at;             /* where the line being collected starts */
    uint8_t flags;              /* request side: Q_* of the message in progress */
    bool hdone;                 /* http-parser finished the headers */
    bool done;                  /* ... and the whole message */
};

struct http_fwd {
    const struct http_fwd_opts *o;
    struct http_side rq, rs;
    struct http_fwd_req q[HTTP_FWD_QUEUE];  /* requests awaiting a response, oldest first */
    unsigned q_first, q_n;
    struct http_fwd_req cur;    /* the request whose head is being collected */
    int status;                 /* request side: 0, the answer owed (400/431/501/503), -1 */
    char why[256];
    int rs_status;              /* response side: 0, 502 (not HTTP) or -1 (no memory): fatal */
    char rs_why[256];
    struct hbuf *out;           /* where http-parser's body callbacks write */
    uint64_t requests;          /* heads rewritten so far */
    uint64_t responses;         /* final responses relayed whole so far */
    uint64_t last;              /* 0, or the seq of the last exchange (http_fwd_last) */
    uint64_t now;               /* the caller's clock, for t0 and its own use */
};

void http_fwd_init(struct http_fwd *f, const struct http_fwd_opts *o);
void http_fwd_free(struct http_fwd *f);

/* Each consumes a prefix of in and appends what goes on to out; it returns
 * how much it consumed.  Less than len means the request side waits for a
 * response (http_fwd_blocked) or an error was set (f->status). */
size_t http_fwd_request(struct http_fwd *f, const char *in, size_t len, struct hbuf *out);
size_t http_fwd_response(struct http_fwd *f, const char *in, size_t len, struct hbuf *out);

bool http_fwd_blocked(const struct http_fwd *f);
/* Every response the backend owes so far has been relayed whole. */
bool http_fwd_responses_done(const struct http_fwd *f);
bool http_fwd_tunnel(const struct http_fwd *f);

/* The backend ended its stream: a response delimited by the close ends
 * here (reported done); one cut short sets rs_status (502). */
void http_fwd_response_eof(struct http_fwd *f);
/* No request in progress and no response owed: between requests. */
bool http_fwd_idle(const struct http_fwd *f);
/* The request in progress, or the last one forwarded, or else the next
 * one is the last exchange: its final response gets "Connection: close"
 * (instead of any Connection and Keep-Alive headers it had, unless its
 * head went out already), no further request is taken, and once that
 * response ended http_fwd_finished() holds.  Tunnels are left alone. */
void http_fwd_last(struct http_fwd *f);
bool http_fwd_finished(const struct http_fwd *f);
/* No further request will be taken (the last exchange's request ended). */
bool http_fwd_requests_done(const struct http_fwd *f);
/* tlsterm answered the failed request (f->status) with len bytes. */
void http_fwd_answered(struct http_fwd *f, size_t len);
/* The connection ends: every exchange not yet reported is (HF_END_CUT,
 * or HF_END_ANSWERED for an answer owed but not sent). */
void http_fwd_flush(struct http_fwd *f);

/* The canned answer for status (400, 431, 501, 502, 503), with Connection: close. */
const char *http_fwd_answer(int status, size_t *len);

int hbuf_put(struct hbuf *b, const void *s, size_t n);

#endif
