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
 * refused upgrade. */
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
};

enum http_fwd_state { HF_HEAD, HF_BODY, HF_WAIT, HF_TUNNEL };

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
    uint8_t q[HTTP_FWD_QUEUE];  /* flags of requests awaiting a response */
    unsigned q_first, q_n;
    int status;                 /* request side: 0, the answer owed (400/431/501/503), -1 */
    char why[256];
    int rs_status;              /* response side: 0, 502 (not HTTP) or -1 (no memory): fatal */
    char rs_why[256];
    struct hbuf *out;           /* where http-parser's body callbacks write */
    uint64_t requests;          /* heads rewritten so far */
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

/* The canned answer for status (400, 431, 501, 502, 503), with Connection: close. */
const char *http_fwd_answer(int status, size_t *len);

int hbuf_put(struct hbuf *b, const void *s, size_t n);

#endif
