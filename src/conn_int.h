/* SPDX-License-Identifier: BSD-2-Clause */
/* conn_int.h - the connection struct and helpers shared by conn.c (life
 * cycle, relay) and conn_proxy.c (PROXY protocol in and out).  Not for
 * other modules: they use conn.h. */
#ifndef TLSTERM_CONN_INT_H
#define TLSTERM_CONN_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/event_struct.h>

#include "addr_limit.h"
#include "config.h"
#include "gen.h"
#include "metrics.h"
#include "worker.h"
#include "tls.h"

struct worker;
struct gen;
struct tls_conn;
struct http_conn;

/* Records moved per wake-up before yielding to other connections. */
#define CONN_PUMP_ROUNDS 16

/* One state per phase; conn_step() and the timer switch on it alone, and
 * conn_state_names[] (conn.c) names it in the access line. */
enum conn_state {
    CONN_FIRST_BYTE,            /* accepted, nothing read: no TLS state yet */
    CONN_PROXY_IN,              /* bytes of an inbound PROXY header arrived */
    CONN_HANDSHAKE,             /* the TLS handshake */
    CONN_PLAIN_HTTP,            /* plain HTTP on a TLS port: the 400 is sent */
    CONN_REDIRECT,              /* a redirect_to_https listener's request and 308 */
    CONN_CONNECTING,            /* to a backend server */
    CONN_RELAY,                 /* both ways, through c->proto */
    CONN_CLOSED,
    CONN_STATES
};

/* The protocol on top of the byte relay, chosen once when the relay
 * starts (conn_start_relay): plain bytes (conn.c) or HTTP with
 * forwarded_headers (conn_http.c); conn.c knows no HTTP. */
struct conn_proto {
    int (*fill_up)(struct conn *c);         /* up_fill()'s contract */
    int (*fill_down)(struct conn *c);       /* down_fill()'s */
    void (*after_pump)(struct conn *c);     /* NULL: nothing to add */
    /* Into buf, when the protocol has its own close reason: true. */
    bool (*reason)(struct conn *c, char *buf, size_t len);
    void (*free)(struct conn *c);
};

/* What a step is blocked on; doubles as a bit in the event mask. */
enum conn_wait {
    WAIT_NONE = 0,
    WAIT_CREAD = 1,
    WAIT_CWRITE = 2,
    WAIT_BREAD = 4,
    WAIT_BWRITE = 8,
};

struct half {
    char *buf;                  /* allocated only while bytes are in flight */
    size_t off, len, cap;
    enum conn_wait wait;
    bool eof;                   /* the source has ended */
    bool done;                  /* ... and the end was passed to the sink */
    uint64_t bytes;
};

struct conn {
    struct worker *w;
    struct conn *prev, *next;
    uint64_t id;
    enum conn_state state;
    enum conn_state closed_in;  /* the state conn_close() found: the access line's */
    const struct conn_proto *proto;     /* from CONN_RELAY on */
    enum conn_wait hs_wait;     /* handshake or backend connect */
    int cfd, bfd;
    struct gen *g;              /* the generation it started on (a reference) */
    const struct config_listener *lc;
    size_t lidx;
    const struct config_addr *server;
    const struct config_backend *be;
    int srv_idx;                /* into be->servers; -1: none held */
    uint64_t tried;             /* servers of be tried by this connection */
    size_t pp_len;              /* PROXY header bytes at the start of up.bytes */
    enum { PP_IN_NONE, PP_IN_EXPECT, PP_IN_FORBID } pp_in;
    uint8_t *pp_buf;            /* an inbound PROXY header being read */
    size_t pp_have;
    struct sockaddr_storage peer_ss;    /* the client (after any inbound PROXY header) */
    struct sockaddr_storage local_ss;   /* the address it connected to */
    struct tls_conn *tls;
    struct http_conn *http;     /* forwarded_headers (conn_http.c); NULL: bytes pass as they are */
    bool tls_broken;            /* no close_notify after a TLS error */
    bool in_hs;                 /* counted in w->handshaking */
    bool hs_busy;               /* a step runs on the handshake thread (conn_hs.c) */
    bool hs_late;               /* ... and the handshake timeout passed meanwhile */
    enum tls_status hs_result;  /* of that step, for the worker */
    struct conn *hs_next;       /* in the handshake thread's queues */
    bool addr_counted;          /* holds a place in srv->addrs (per_address) */
    bool refused;               /* by a per_address limit: no access line */
    bool b_drained;             /* last backend read was short: wait for epoll */
    unsigned active;            /* enum conn_wait bits registered */
    unsigned kick;              /* bits to re-run soon: a pump yielded */
    struct event cev_r, cev_w, bev_r, bev_w, timer;
    struct half up;             /* client -> backend */
    struct half down;           /* backend -> client */
    uint64_t t_start, t_hs, t_phase, t_io;  /* monotonic ms */
    uint64_t t_first_us, t_connect_us;      /* monotonic µs: first TLS byte, connect() */
    char peer[64];
    const char *reason;
    char reason_buf[512];       /* written by conn_closef() only */
    char fail[384];             /* the last backend failure, or what tlsterm answered */
};

uint64_t conn_now_ms(void);
uint64_t conn_now_us(void);

/* This connection's counters (metrics.h): its worker's, in the slot of
 * its listener or server. */
static inline struct metrics_listener *
conn_ml(const struct conn *c)
{
    return &c->w->m->l[c->g->mslot_l[c->lidx]];
}

static inline struct metrics_server *
conn_ms(const struct conn *c)
{
    return &c->w->m->s[c->g->mslot_s[c->be->first + (size_t)c->srv_idx]];
}
/* Marks the connection closed with a static reason; conn.c frees it once
 * the running callback returns. */
void conn_close(struct conn *c, const char *reason);
void conn_closef(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void conn_format_peer(char *out, size_t len, const struct sockaddr_storage *ss);
/* The address alone, no port or brackets ("unix" for others). */
void conn_format_ip(char *out, size_t len, const struct sockaddr_storage *ss);
void conn_close_tls(struct conn *c, const char *what);
/* The half's buffer, allocated on first use; -1 (and closed) without memory. */
int half_buffer(struct conn *c, struct half *h);
/* The raw reads under both relays' fill steps (conn.c, conn_http.c);
 * READ_FAILED has closed the connection. */
enum conn_read { READ_DATA, READ_END, READ_WAIT, READ_FAILED };
/* Decrypted client bytes into buf (limits.buffer_size); *wait for READ_WAIT. */
enum conn_read conn_read_client(struct conn *c, char *buf, size_t *n, enum conn_wait *wait);
/* Backend bytes into buf; READ_WAIT means wait for WAIT_BREAD. */
enum conn_read conn_read_backend(struct conn *c, char *buf, size_t *n);
/* An idle half gives its buffer back, so idle connections stay small. */
void half_idle(struct half *h, enum conn_wait wait);
/* The client ended (or may send no more): FIN to the backend. */
void up_end(struct conn *c);

/* A new connection from ss against limits.per_address of cfg; refusals
 * are counted and logged once per address and interval. */
enum addr_verdict conn_addr_admit(struct worker *w, const struct config *cfg,
                                  const char *listener, const struct sockaddr_storage *ss);

/* The rest of conn_handshake() once tls_handshake() said st. */
void conn_handshake_result(struct conn *c, enum tls_status st);
/* After a callback: frees a closed connection, else syncs its events. */
void conn_finish(struct conn *c);
/* conn_hs.c: hands the next tls_handshake() to the worker's handshake
 * thread; false: run it here. */
bool conn_hs_offload(struct conn *c);

/* conn_proxy.c */
bool conn_trusted(const struct config_listener *lc, const struct sockaddr_storage *peer);
/* The address the client connected to: from an inbound PROXY header, else
 * the socket's; zeroed (AF_UNSPEC) when unknown. */
void conn_local_addr(const struct conn *c, struct sockaddr_storage *ss);
/* Puts the backend's PROXY header first in the up buffer; -1: closed. */
int conn_proxy_header(struct conn *c);
/* Reads an inbound header (trusted peer) or refuses one (untrusted).
 * 1: done, 0: wait for more bytes, -1: closed. */
int conn_proxy_in(struct conn *c);
int conn_proxy_forbidden(struct conn *c);

/* The relay's pumps, for a protocol's after_pump step. */
void conn_pump_up(struct conn *c);
void conn_pump_down(struct conn *c);

/* conn_http.c.  Start: 1 on (c->proto is then conn_proto_http), 0 not
 * for this connection, -1 closed; reject (503) answers every request
 * without a backend, with why (which must live as long as c: c->fail). */
int conn_http_start(struct conn *c, int reject, const char *why);
extern const struct conn_proto conn_proto_http;

/* conn_redirect.c: a redirect_to_https listener's whole job. */
void conn_redirect(struct conn *c);

#endif
