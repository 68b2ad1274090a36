/* SPDX-License-Identifier: BSD-2-Clause */
/* conn.c - one connection's life: first byte, TLS handshake, backend
 * connect, relay in both directions, and one close path.
 *
 * Each direction ("half") is a pump that moves bytes from its source to its
 * sink through one bounded buffer until it blocks; it then records what it
 * waits for (readable/writable on the client or backend socket).  The
 * events registered with libevent are always exactly the union of what the
 * handshake and the two halves wait for, so a blocked sink stops reads from
 * the source (back-pressure) and memory per connection has a ceiling.
 *
 * conn_close() only marks the connection; it is freed when the libevent
 * callback that is running returns, so nothing touches freed memory. */
#include "autoconf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "backend.h"
#include "conn.h"
#include "conn_int.h"
#include "gen.h"
#include "listener.h"
#include "log.h"
#include "tls.h"
#include "tls_hello.h"
#include "tls_sni.h"
#include "worker.h"

static void conn_event_cb(evutil_socket_t fd, short what, void *arg);
static void conn_timer_cb(evutil_socket_t fd, short what, void *arg);

/* CLOCK_MONOTONIC, not _COARSE: hs_ms and ms in the log are true
 * milliseconds (the coarse clock moves in 4 ms steps at HZ=250).  Both
 * are vDSO calls without a syscall; the difference is some 15 ns per
 * call, a few calls per I/O event. */
uint64_t
conn_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t
conn_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

void
conn_close(struct conn *c, const char *reason)
{
    if (c->state == CONN_CLOSED)
        return;
    c->closed_in = c->state;
    c->state = CONN_CLOSED;
    c->reason = reason;
}

void
conn_closef(struct conn *c, const char *fmt, ...)
{
    va_list ap;

    if (c->state == CONN_CLOSED)
        return;
    va_start(ap, fmt);
    vsnprintf(c->reason_buf, sizeof(c->reason_buf), fmt, ap);
    va_end(ap);
    conn_close(c, c->reason_buf);
}

/* A KeyUpdate leaves the session sound, only unreadable from then on:
 * the client still gets a close_notify under the keys it has. */
void
conn_close_tls(struct conn *c, const char *what)
{
    char err[400];

    c->tls_broken = !tls_key_update_refused(c->tls);
    conn_closef(c, "%s: %s", what, tls_last_error(c->tls, err, sizeof(err)));
}

void
conn_format_ip(char *out, size_t len, const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, out, (socklen_t)len);
    else if (ss->ss_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, out, (socklen_t)len);
    else
        snprintf(out, len, "unix");
}

void
conn_format_peer(char *out, size_t len, const struct sockaddr_storage *ss)
{
    char host[INET6_ADDRSTRLEN];

    conn_format_ip(host, sizeof(host), ss);
    if (ss->ss_family == AF_INET6)
        snprintf(out, len, "[%s]:%u", host, ntohs(((const struct sockaddr_in6 *)ss)->sin6_port));
    else if (ss->ss_family == AF_INET)
        snprintf(out, len, "%s:%u", host, ntohs(((const struct sockaddr_in *)ss)->sin_port));
    else
        snprintf(out, len, "%s", host);
}

/* ---- events -------------------------------------------------------- */

static struct event *
conn_event_of(struct conn *c, enum conn_wait bit)
{
    switch (bit) {
    case WAIT_CREAD: return &c->cev_r;
    case WAIT_CWRITE: return &c->cev_w;
    case WAIT_BREAD: return &c->bev_r;
    default: return &c->bev_w;
    }
}

static unsigned
conn_wanted(const struct conn *c)
{
    if (c->hs_busy)             /* the handshake thread has it */
        return 0;
    switch (c->state) {
    case CONN_FIRST_BYTE:
    case CONN_PROXY_IN:
    case CONN_HANDSHAKE:
    case CONN_REDIRECT:
    case CONN_CONNECTING:
        return c->hs_wait;
    case CONN_RELAY:
        return (unsigned)c->up.wait | (unsigned)c->down.wait;
    default:
        return 0;
    }
}

static void
conn_update_events(struct conn *c)
{
    unsigned want = conn_wanted(c);
    unsigned change = want ^ c->active;

    for (unsigned bit = 1; bit <= WAIT_BWRITE; bit <<= 1) {
        if (!(change & bit))
            continue;
        if (want & bit)
            event_add(conn_event_of(c, bit), NULL);
        else
            event_del(conn_event_of(c, bit));
    }
    c->active = want;
}

static void
conn_arm_timer(struct conn *c, uint64_t deadline_ms)
{
    uint64_t now = conn_now_ms();
    uint64_t left = deadline_ms > now ? deadline_ms - now : 0;
    struct timeval tv = { (time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000 };

    event_add(&c->timer, &tv);
}

/* ---- relay --------------------------------------------------------- */

int
half_buffer(struct conn *c, struct half *h)
{
    if (h->buf == NULL) {
        h->buf = malloc(c->g->cfg->limits.buffer_size);
        h->cap = c->g->cfg->limits.buffer_size;
    }
    if (h->buf == NULL) {
        conn_close(c, "out of memory");
        return -1;
    }
    return 0;
}

void
half_idle(struct half *h, enum conn_wait wait)
{
    free(h->buf);
    h->buf = NULL;
    h->cap = 0;
    h->wait = wait;
}

static enum conn_wait
tls_wait(enum tls_status st)
{
    return st == TLS_WANT_READ ? WAIT_CREAD : WAIT_CWRITE;
}

/* Returns 1 when the pump should go on, 0 when it is blocked or ended. */
static int
up_flush(struct conn *c)
{
    struct half *h = &c->up;
    ssize_t n = send(c->bfd, h->buf + h->off, h->len - h->off, MSG_NOSIGNAL);

    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) {
            h->wait = WAIT_BWRITE;
            return 0;
        }
        conn_closef(c, "backend write: %s", strerror(errno));
        return 0;
    }
    h->off += (size_t)n;
    h->bytes += (uint64_t)n;
    c->t_io = conn_now_ms();
    if (h->off == h->len)
        h->off = h->len = 0;
    return 1;
}

enum conn_read
conn_read_client(struct conn *c, char *buf, size_t *n, enum conn_wait *wait)
{
    enum tls_status st = tls_read(c->tls, buf, c->g->cfg->limits.buffer_size, n);

    switch (st) {
    case TLS_OK:
        metrics_add(&conn_ml(c)->rx, *n);
        return READ_DATA;
    case TLS_EOF:
        return READ_END;
    case TLS_ERROR:
        conn_close_tls(c, "client read");
        return READ_FAILED;
    default:
        *wait = tls_wait(st);
        return READ_WAIT;
    }
}

static int
up_fill(struct conn *c)
{
    struct half *h = &c->up;
    enum conn_wait wait = WAIT_NONE;

    if (half_buffer(c, h) != 0)
        return 0;
    switch (conn_read_client(c, h->buf, &h->len, &wait)) {
    case READ_DATA:
        c->t_io = conn_now_ms();
        return 1;
    case READ_END:
        h->eof = true;
        return 1;
    case READ_WAIT:
        half_idle(h, wait);
        return 0;
    default:
        return 0;
    }
}

void
up_end(struct conn *c)
{
    if (c->bfd >= 0)
        shutdown(c->bfd, SHUT_WR);
    c->up.done = true;
    half_idle(&c->up, WAIT_NONE);
}

void
conn_pump_up(struct conn *c)
{
    struct half *h = &c->up;

    for (int round = 0; c->state == CONN_RELAY && !h->done; round++) {
        if (h->len > 0) {
            if (!up_flush(c))
                return;
            continue;
        }
        if (h->eof) {
            up_end(c);
            return;
        }
        if (round >= CONN_PUMP_ROUNDS) {
            h->wait = WAIT_CREAD;
            c->kick |= WAIT_CREAD;
            return;
        }
        if (!c->proto->fill_up(c))
            return;
    }
}

static int
down_flush(struct conn *c)
{
    struct half *h = &c->down;
    size_t n = 0;
    enum tls_status st = tls_write(c->tls, h->buf + h->off, h->len - h->off, &n);

    if (st == TLS_OK) {
        h->off += n;
        h->bytes += n;
        metrics_add(&conn_ml(c)->tx, n);
        c->t_io = conn_now_ms();
        if (h->off == h->len)
            h->off = h->len = 0;
        return 1;
    }
    if (st == TLS_WANT_READ || st == TLS_WANT_WRITE) {
        h->wait = tls_wait(st);     /* retried with the same bytes */
        return 0;
    }
    conn_close_tls(c, "client write");
    return 0;
}

enum conn_read
conn_read_backend(struct conn *c, char *buf, size_t *n)
{
    size_t size = c->g->cfg->limits.buffer_size;
    ssize_t got;

    if (c->b_drained)           /* see tls_bio_recv(): same reasoning */
        return READ_WAIT;
    got = recv(c->bfd, buf, size, 0);
    if (got > 0) {
        c->b_drained = (size_t)got < size;
        *n = (size_t)got;
        c->t_io = conn_now_ms();
        return READ_DATA;
    }
    if (got == 0)
        return READ_END;
    if (errno == EAGAIN || errno == EINTR)
        return READ_WAIT;
    conn_closef(c, "backend read: %s", strerror(errno));
    return READ_FAILED;
}

static int
down_fill(struct conn *c)
{
    struct half *h = &c->down;

    if (half_buffer(c, h) != 0)
        return 0;
    switch (conn_read_backend(c, h->buf, &h->len)) {
    case READ_DATA:
        return 1;
    case READ_END:
        h->eof = true;
        return 1;
    case READ_WAIT:
        half_idle(h, WAIT_BREAD);
        return 0;
    default:
        return 0;
    }
}

/* The backend finished: close_notify, then FIN, after every byte. */
static void
down_end(struct conn *c)
{
    enum tls_status st = tls_close_notify(c->tls);

    if (st == TLS_WANT_WRITE || st == TLS_WANT_READ) {
        c->down.wait = tls_wait(st);
        return;
    }
    if (st != TLS_OK) {
        conn_close_tls(c, "client close_notify");
        return;
    }
    shutdown(c->cfd, SHUT_WR);
    c->down.done = true;
    half_idle(&c->down, WAIT_NONE);
}

void
conn_pump_down(struct conn *c)
{
    struct half *h = &c->down;

    for (int round = 0; c->state == CONN_RELAY && !h->done; round++) {
        if (h->len > 0) {
            if (!down_flush(c))
                return;
            continue;
        }
        if (h->eof) {
            down_end(c);
            return;
        }
        if (round >= CONN_PUMP_ROUNDS) {
            h->wait = WAIT_BREAD;
            c->kick |= WAIT_BREAD;
            return;
        }
        if (!c->proto->fill_down(c))
            return;
    }
}

/* Plain bytes: the relay as it is. */
static const struct conn_proto conn_proto_bytes = {
    .fill_up = up_fill,
    .fill_down = down_fill,
};

static void
conn_relay(struct conn *c, enum conn_wait fired)
{
    char why[sizeof(c->reason_buf)];

    if (c->up.wait == fired || fired == WAIT_NONE)
        conn_pump_up(c);
    if (c->down.wait == fired || fired == WAIT_NONE)
        conn_pump_down(c);
    if (c->proto->after_pump != NULL)
        c->proto->after_pump(c);
    if (c->state != CONN_RELAY || !c->up.done || !c->down.done)
        return;
    if (c->proto->reason != NULL && c->proto->reason(c, why, sizeof(why)))
        conn_closef(c, "%s", why);
    else
        conn_close(c, c->up.eof && tls_eof_was_truncated(c->tls)
                          ? "done (client sent no close_notify)" : "done");
}

/* ---- backend connect ------------------------------------------------- */

static void
conn_start_relay(struct conn *c)
{
    if (c->bfd >= 0 && c->be->proxy_protocol && conn_proxy_header(c) != 0)
        return;
    if (c->proto == NULL && conn_http_start(c, 0, NULL) < 0)
        return;
    if (c->proto == NULL)
        c->proto = &conn_proto_bytes;
    c->state = CONN_RELAY;
    c->t_io = c->t_phase = conn_now_ms();
    conn_arm_timer(c, c->t_io + c->g->cfg->timeouts.idle_ms);
    conn_relay(c, WAIT_NONE);
}

/* routes: exact names first, then wildcards, else the listener's backend. */
static const struct config_backend *
conn_route(const struct conn *c)
{
    const struct config_listener *lc = c->lc;
    const char *sni = tls_sni(c->tls);

    if (lc->n_routes == 0 || strcmp(sni, "-") == 0)
        return lc->backend;
    for (int wild = 0; wild < 2; wild++)
        for (size_t i = 0; i < lc->n_routes; i++)
            if ((lc->routes[i].sni[0] == '*') == wild && sni_match(lc->routes[i].sni, sni))
                return lc->routes[i].backend;
    return lc->backend;
}

/* The server failed before any byte went to it: it rests (pool.h), its
 * socket goes, and the caller may try another. */
static void
conn_server_failed(struct conn *c, const char *why)
{
    snprintf(c->fail, sizeof(c->fail), "%s: %s", c->server->text, why);
    metrics_add(&conn_ms(c)->failures, 1);
    pool_failed(&c->g->pool, c->be, c->srv_idx, conn_now_ms(), why);
    pool_release(&c->g->pool, c->be, c->srv_idx);
    c->srv_idx = -1;
    if (c->bfd >= 0) {
        event_del(&c->bev_r);
        event_del(&c->bev_w);
        c->active &= ~(unsigned)(WAIT_BREAD | WAIT_BWRITE);
        close(c->bfd);
        c->bfd = -1;
    }
}

/* With forwarded_headers the client is told, in HTTP, with a 503 to its
 * request; otherwise the connection closes.  c->fail holds why. */
static void
conn_unserved(struct conn *c)
{
    if (c->be->http.enabled && conn_http_start(c, 503, c->fail) > 0) {
        conn_start_relay(c);
        return;
    }
    if (c->state != CONN_CLOSED)
        conn_closef(c, "%s", c->fail);
}

static void
conn_no_server(struct conn *c)
{
    char last[sizeof(c->fail)];

    snprintf(last, sizeof(last), "%s", c->tried ? c->fail : "all down or full");
    snprintf(c->fail, sizeof(c->fail), "backend %s: no server available (last: %.300s)",
             c->be->name, last);
    conn_unserved(c);
}

/* Out of fds, memory or local ports is this host's shortage, not the
 * server's: its health stays as it is (else every server of the pool
 * would rest), and the listeners rest instead. */
static bool
conn_local_shortage(int err)
{
    return err == EMFILE || err == ENFILE || err == ENOMEM || err == ENOBUFS ||
           err == EADDRNOTAVAIL;
}

static void
conn_local_failure(struct conn *c, int err)
{
    atomic_fetch_add(&c->w->srv->n_local_failures, 1);
    metrics_add(&conn_ml(c)->refused[REFUSED_FD_EXHAUSTION], 1);
    snprintf(c->fail, sizeof(c->fail), "backend %s: local shortage, no socket for %s: %s "
             "(server health unchanged)", c->be->name, c->server->text, strerror(err));
    pool_release(&c->g->pool, c->be, c->srv_idx);
    c->srv_idx = -1;
    listeners_back_off(c->w, "backend socket", err);
    conn_unserved(c);
}

static void
conn_connect_done(struct conn *c)
{
    metrics_observe(&conn_ms(c)->connect_time, conn_now_us() - c->t_connect_us);
    pool_succeeded(&c->g->pool, c->be, c->srv_idx);
}

/* Tries the servers the pool offers until a connect starts; each server
 * at most once per connection. */
static void
conn_backend_connect(struct conn *c)
{
    int done = 0;

    if (c->be == NULL)
        c->be = conn_route(c);
    for (;;) {
        c->srv_idx = pool_pick(&c->g->pool, c->w->id, c->be, &c->peer_ss, c->tried,
                               conn_now_ms());
        if (c->srv_idx < 0) {
            conn_no_server(c);
            return;
        }
        c->tried |= 1ULL << c->srv_idx;
        c->server = &c->be->servers[c->srv_idx];
        c->t_connect_us = conn_now_us();
        c->bfd = backend_connect(c->server, &done);
        if (c->bfd >= 0)
            break;
        if (conn_local_shortage(errno)) {
            conn_local_failure(c, errno);
            return;
        }
        metrics_add(&conn_ms(c)->connects, 1);
        conn_server_failed(c, strerror(errno));
    }
    metrics_add(&conn_ms(c)->connects, 1);
    event_assign(&c->bev_r, c->w->base, c->bfd, EV_READ | EV_PERSIST, conn_event_cb, c);
    event_assign(&c->bev_w, c->w->base, c->bfd, EV_WRITE | EV_PERSIST, conn_event_cb, c);
    event_priority_set(&c->bev_r, PRIO_ESTABLISHED);
    event_priority_set(&c->bev_w, PRIO_ESTABLISHED);
    if (done) {
        conn_connect_done(c);
        conn_start_relay(c);
        return;
    }
    c->state = CONN_CONNECTING;
    c->hs_wait = WAIT_BWRITE;
    c->t_phase = conn_now_ms();
    conn_arm_timer(c, c->t_phase + c->g->cfg->timeouts.connect_ms);
}

static void
conn_connected(struct conn *c)
{
    int err = 0;
    socklen_t len = sizeof(err);

    if (getsockopt(c->bfd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    if (err != 0) {
        conn_server_failed(c, strerror(err));
        conn_backend_connect(c);
        return;
    }
    conn_connect_done(c);
    conn_start_relay(c);
}

/* ---- handshake ------------------------------------------------------- */

/* Counted from accept until the handshake ends either way: what
 * limits.max_handshakes bounds. */
static void
conn_hs_leave(struct conn *c)
{
    if (!c->in_hs)
        return;
    c->in_hs = false;
    c->w->handshaking--;
    atomic_fetch_sub(&c->w->srv->n_handshaking, 1);
    worker_handshake_done(c->w);
}

/* From here on its events run before any handshake step. */
static void
conn_established(struct conn *c)
{
    conn_hs_leave(c);
    event_priority_set(&c->cev_r, PRIO_ESTABLISHED);
    event_priority_set(&c->cev_w, PRIO_ESTABLISHED);
    event_priority_set(&c->timer, PRIO_ESTABLISHED);
}

/* As nginx does: the client is told in HTTP what went wrong, instead of
 * a TLS alert its HTTP parser cannot read.  Best effort: a fresh socket's
 * buffer takes these few bytes at once. */
static void
conn_plain_http(struct conn *c)
{
    static const char answer[] =
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 41\r\n"
        "Connection: close\r\n\r\nplain HTTP request sent to an HTTPS port\n";
    ssize_t n = send(c->cfd, answer, sizeof(answer) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);

    if (n > 0)
        c->down.bytes += (uint64_t)n;
    c->state = CONN_PLAIN_HTTP;
    conn_close(c, "plain HTTP request sent to the TLS port");
}

/* Looks at the first bytes without taking them: 1 to go on with TLS,
 * -1 closed (nothing was sent, or plain HTTP was). */
static int
conn_first_bytes(struct conn *c)
{
    unsigned char buf[TLS_HELLO_HTTP_PEEK];
    ssize_t n = recv(c->cfd, buf, sizeof(buf), MSG_PEEK);

    if (n == 0) {
        conn_close(c, "client closed before sending anything");
        return -1;
    }
    if (n > 0 && tls_hello_plain_http(buf, (size_t)n)) {
        conn_plain_http(c);
        return -1;
    }
    return 1;           /* a read error is the handshake's to report */
}

static void conn_handshake(struct conn *c);

/* CONN_FIRST_BYTE and CONN_PROXY_IN: the PROXY header (when the listener
 * takes one), then the first bytes decide.  TLS state is allocated only
 * once the client has sent something, so a connect-and-close (a health
 * check) is told apart from a failed handshake. */
static void
conn_first_step(struct conn *c)
{
    if (c->pp_in != PP_IN_NONE &&
        (c->pp_in == PP_IN_EXPECT ? conn_proxy_in(c) : conn_proxy_forbidden(c)) <= 0)
        return;
    if (c->lc->redirect_to_https) {
        c->state = CONN_REDIRECT;
        conn_redirect(c);
        return;
    }
    if (conn_first_bytes(c) < 0)
        return;
    c->t_first_us = conn_now_us();
    c->tls = tls_conn_new(c->g->wtls[c->w->id], c->lidx, c->cfd);
    if (c->tls == NULL) {
        conn_close(c, "out of memory for TLS session");
        return;
    }
    c->state = CONN_HANDSHAKE;
    conn_handshake(c);
}

static void
conn_handshake(struct conn *c)
{
    enum tls_status st;

    /* the cheap steps (a whole TLS 1.2 resumption) run here, without a
     * hand-off; the crypto goes to the handshake thread */
    st = tls_handshake(c->tls, true);
    if (st == TLS_CRYPTO && conn_hs_offload(c))
        return;
    if (st == TLS_CRYPTO)
        st = tls_handshake(c->tls, false);
    conn_handshake_result(c, st);
}

static void
conn_count_handshake(struct conn *c)
{
    struct metrics_listener *m = conn_ml(c);

    metrics_add(&m->hs_ok[tls_version_slot(c->tls)][tls_suite_slot_of(c->tls)]
                         [tls_resumed(c->tls)], 1);
    metrics_observe(&m->hs_time, conn_now_us() - c->t_first_us);
}

void
conn_handshake_result(struct conn *c, enum tls_status st)
{
    if (st == TLS_WANT_READ || st == TLS_WANT_WRITE) {
        if (c->hs_late)
            conn_close(c, "handshake timeout");
        c->hs_wait = tls_wait(st);
        return;
    }
    if (st != TLS_OK) {
        conn_close_tls(c, "handshake failed");
        return;
    }
    c->t_hs = conn_now_ms();
    conn_established(c);
    atomic_fetch_add(tls_resumed(c->tls) ? &c->w->srv->n_resumed_handshakes
                                         : &c->w->srv->n_full_handshakes, 1);
    conn_count_handshake(c);
    conn_backend_connect(c);
}

/* ---- dispatch and the one close path ------------------------------ */

/* The access line's state= (tlsterm.8): the state the close found. */
static const char *const conn_state_names[CONN_STATES] = {
    [CONN_FIRST_BYTE] = "before the first byte",
    [CONN_PROXY_IN] = "in PROXY header",
    [CONN_HANDSHAKE] = "in handshake",
    [CONN_PLAIN_HTTP] = "plain http",
    [CONN_REDIRECT] = "plain http",
    [CONN_CONNECTING] = "established",
    [CONN_RELAY] = "established",
    [CONN_CLOSED] = "closed",
};

/* Client-certificate fields, only on listeners with client_auth. */
static void
conn_format_peer_cert(const struct conn *c, char *out, size_t len)
{
    const char *verify = tls_peer_verify(c->tls);
    const struct tls_peer *p = tls_peer(c->tls);

    out[0] = '\0';
    if (verify == NULL)
        return;
    if (p == NULL)
        snprintf(out, len, " client_cert=- verify=\"%s\"", verify);
    else
        snprintf(out, len, " client_cert=\"%s\" issuer=\"%s\" serial=%s sha256=%s "
                 "verify=\"%s\"", p->subject, p->issuer, p->serial, p->sha256, verify);
}

static bool
conn_reason_is(const struct conn *c, const char *prefix)
{
    return strncmp(c->reason, prefix, strlen(prefix)) == 0;
}

/* Whether the connection ended the way connections normally end; every
 * other end is an error, logged even with log.access: false (tlsterm.8,
 * LOGGING): a failed or timed-out handshake, a refusal, a backend that
 * failed or never answered, an HTTP error we answered, a cut at stop. */
static bool
conn_ended_cleanly(const struct conn *c)
{
    if (conn_reason_is(c, "done"))              /* both directions finished */
        return true;
    if (conn_reason_is(c, "client closed before sending anything") ||
        conn_reason_is(c, "client closed before the request"))
        return true;                            /* a TCP health check */
    if (c->lc->redirect_to_https)
        return conn_reason_is(c, "redirected ");
    /* an idle keep-alive connection, unless the client's bytes got no
     * answer at all (a backend that hangs) */
    return conn_reason_is(c, "idle timeout") &&
           (c->down.bytes > 0 || c->up.bytes == c->pp_len);
}

/* log.access: false keeps clean ends at debug, errors at info like every
 * access line: a client that fails a handshake is the client's business,
 * not a fault of ours worth a warning (nginx logs it at info too).
 * per_address refusals have their own rate-limited warning instead. */
static enum log_level
conn_close_level(const struct conn *c)
{
    if (c->refused)
        return LOG_LVL_DEBUG;
    return c->g->cfg->log_access || !conn_ended_cleanly(c) ? LOG_LVL_INFO : LOG_LVL_DEBUG;
}

static void
conn_log_close(struct conn *c, unsigned open)
{
    uint64_t now = conn_now_ms();
    long hs_ms = c->t_hs ? (long)(c->t_hs - c->t_start) : -1;
    char cert[1024];

    conn_format_peer_cert(c, cert, sizeof(cert));
    /* The access line: its keys are documented in tlsterm.8 (LOGGING) and
     * only ever added to, never renamed. */
    log_msg(conn_close_level(c),
            "conn=%llu client=%s listener=%s sni=%s alpn=%s tls=%s cipher=%s "
            "resumed=%d%s backend=%s in=%llu out=%llu hs_ms=%ld ms=%llu open=%u "
            "gen=%lu state=\"%s\" reason=\"%s\"",
            (unsigned long long)c->id, c->peer, c->lc->name,
            tls_sni(c->tls), tls_alpn(c->tls), tls_version(c->tls), tls_cipher(c->tls),
            tls_resumed(c->tls), cert, c->server ? c->server->text : "-",
            (unsigned long long)(c->up.bytes - c->pp_len), (unsigned long long)c->down.bytes,
            hs_ms, (unsigned long long)(now - c->t_start), open,
            c->g->id, conn_state_names[c->closed_in], c->reason);
}

/* Reads what the client already sent, so that close() sends a FIN rather
 * than a RST that could destroy our last bytes in flight. */
static void
conn_drain_client(int fd)
{
    char sink[4096];

    for (int i = 0; i < 16; i++)
        if (recv(fd, sink, sizeof(sink), MSG_DONTWAIT) <= 0)
            return;
}

static void
conn_count_close(const struct conn *c)
{
    struct metrics_listener *m = conn_ml(c);

    /* a client that sent bytes and got no session; not a refusal, not
     * a connect-and-close health check, not a redirect listener */
    if (c->closed_in == CONN_HANDSHAKE || c->closed_in == CONN_PLAIN_HTTP)
        metrics_add(&m->hs_failed, 1);
    metrics_add(&m->closed, 1);
}

static void
conn_free(struct conn *c)
{
    struct worker *w = c->w;
    unsigned open = atomic_fetch_sub(&w->srv->n_open, 1) - 1;

    conn_hs_leave(c);
    conn_log_close(c, open);
    conn_count_close(c);
    if (c->t_hs && !c->tls_broken && !c->down.done)
        tls_close_notify(c->tls);           /* best effort, never waits */
    event_del(&c->cev_r);
    event_del(&c->cev_w);
    event_del(&c->timer);
    if (c->bfd >= 0) {
        event_del(&c->bev_r);
        event_del(&c->bev_w);
        close(c->bfd);
    }
    if (!c->up.eof)
        conn_drain_client(c->cfd);
    close(c->cfd);
    tls_conn_free(c->tls);
    if (c->proto != NULL && c->proto->free != NULL)
        c->proto->free(c);
    pool_release(&c->g->pool, c->be, c->srv_idx);
    if (c->addr_counted)
        addr_limit_release(&w->srv->addrs, (const struct sockaddr *)&c->peer_ss);
    free(c->pp_buf);
    free(c->up.buf);
    free(c->down.buf);
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    gen_unref(c->g);
    free(c);
    if (w->draining && w->conns == NULL && w->srv->drained_ev != NULL)
        event_active(w->srv->drained_ev, 0, 0);
}

/* A pump that yielded runs again on the next loop iteration.  The event
 * must be registered before it is activated: libevent's event_add() does
 * not register an event that is already active, so activating first would
 * leave the socket out of epoll for good. */
static void
conn_kick(struct conn *c)
{
    for (unsigned bit = WAIT_CREAD; bit <= WAIT_BWRITE; bit <<= 1)
        if (c->kick & c->active & bit)
            event_active(conn_event_of(c, bit),
                         bit & (WAIT_CREAD | WAIT_BREAD) ? EV_READ : EV_WRITE, 0);
    c->kick = 0;
}

void
conn_finish(struct conn *c)
{
    if (c->state == CONN_CLOSED) {
        conn_free(c);
        return;
    }
    conn_update_events(c);
    conn_kick(c);
}

static void
conn_step(struct conn *c, enum conn_wait fired)
{
    switch (c->state) {
    case CONN_FIRST_BYTE:
    case CONN_PROXY_IN:
        if (fired == c->hs_wait)
            conn_first_step(c);
        break;
    case CONN_HANDSHAKE:
        if (fired == c->hs_wait)
            conn_handshake(c);
        break;
    case CONN_REDIRECT:
        if (fired == c->hs_wait)
            conn_redirect(c);
        break;
    case CONN_CONNECTING:
        if (fired == WAIT_BWRITE)
            conn_connected(c);
        break;
    case CONN_RELAY:
        conn_relay(c, fired);
        break;
    default:
        break;
    }
}

static void
conn_event_cb(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    enum conn_wait fired;

    if (fd == c->cfd)
        fired = (what & EV_READ) ? WAIT_CREAD : WAIT_CWRITE;
    else
        fired = (what & EV_READ) ? WAIT_BREAD : WAIT_BWRITE;
    if (fired == WAIT_CREAD && c->tls != NULL)
        tls_readable(c->tls);
    else if (fired == WAIT_BREAD)
        c->b_drained = false;
    conn_step(c, fired);
    conn_finish(c);
}

static void
conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    const struct config *cfg = c->g->cfg;
    uint64_t now = conn_now_ms();

    (void)fd;
    (void)what;
    if (c->hs_busy) {           /* the step in progress ends it */
        c->hs_late = true;
        return;
    }
    switch (c->state) {
    case CONN_FIRST_BYTE:
    case CONN_PROXY_IN:
    case CONN_HANDSHAKE:
    case CONN_REDIRECT:         /* timeouts.handshake bounds the request too */
        conn_close(c, "handshake timeout");
        break;
    case CONN_CONNECTING:
        conn_server_failed(c, "connect timeout");
        conn_backend_connect(c);
        break;
    case CONN_RELAY:
        if (now - c->t_io >= cfg->timeouts.idle_ms)
            conn_close(c, "idle timeout");
        else
            conn_arm_timer(c, c->t_io + cfg->timeouts.idle_ms);
        break;
    default:
        break;
    }
    conn_finish(c);
}

/* ---- per-address limits -------------------------------------------- */

static bool
conn_exempt(const struct config_per_address *pa, const struct sockaddr_storage *ss)
{
    for (size_t i = 0; i < pa->n_exempt; i++)
        if (config_cidr_match(&pa->exempt[i], (const struct sockaddr *)ss))
            return true;
    return false;
}

static void
conn_log_refusals(const struct config_per_address *pa, enum addr_verdict v,
                  const char *listener, const struct sockaddr_storage *ss, unsigned long n)
{
    char ip[INET6_ADDRSTRLEN];

    conn_format_ip(ip, sizeof(ip), ss);
    if (v == ADDR_TOO_MANY)
        log_warn("client=%s listener=%s: per_address.connections (%u) reached: refused %lu "
                 "connection(s) since the last report (one report per %d s per address)",
                 ip, listener, pa->connections, n, ADDR_LIMIT_LOG_MS / 1000);
    else
        log_warn("client=%s listener=%s: per_address.handshakes_per_second (%u, burst %u) "
                 "reached: refused %lu connection(s) since the last report (one report per "
                 "%d s per address)", ip, listener, pa->handshakes_per_second,
                 pa->handshake_burst ? pa->handshake_burst : pa->handshakes_per_second, n,
                 ADDR_LIMIT_LOG_MS / 1000);
}

enum addr_verdict
conn_addr_admit(struct worker *w, const struct config *cfg, const char *listener,
                const struct sockaddr_storage *ss)
{
    const struct config_per_address *pa = &cfg->limits.per_address;
    struct addr_rules r = { pa->connections, pa->handshakes_per_second, pa->handshake_burst };
    enum addr_verdict v;
    unsigned long n = 0;

    if ((r.connections == 0 && r.rate == 0) || conn_exempt(pa, ss))
        return ADDR_UNTRACKED;
    v = addr_limit_admit(&w->srv->addrs, (const struct sockaddr *)ss, &r, conn_now_ms(), &n);
    if (v == ADDR_TOO_MANY)
        atomic_fetch_add(&w->srv->n_refused_addr_conns, 1);
    else if (v == ADDR_TOO_FAST)
        atomic_fetch_add(&w->srv->n_refused_addr_rate, 1);
    else if (v == ADDR_UNTRACKED)
        atomic_fetch_add(&w->srv->n_addr_untracked, 1);
    if (n)
        conn_log_refusals(pa, v, listener, ss, n);
    return v;
}

void
conn_accept(struct worker *w, const struct listener *l, int fd,
            const struct sockaddr_storage *peer)
{
    struct conn *c;
    enum addr_verdict v = ADDR_UNTRACKED;
    int one = 1;

    /* behind a trusted PROXY sender the client is known only after the header */
    if (!(l->lc->proxy_protocol_in && conn_trusted(l->lc, peer)))
        v = conn_addr_admit(w, w->gen->cfg, l->lc->name, peer);
    if (v == ADDR_TOO_MANY || v == ADDR_TOO_FAST || (c = calloc(1, sizeof(*c))) == NULL) {
        if (v == ADDR_ADMIT)
            addr_limit_release(&w->srv->addrs, (const struct sockaddr *)peer);
        close(fd);
        atomic_fetch_sub(&w->srv->n_open, 1);
        if (v == ADDR_TOO_MANY || v == ADDR_TOO_FAST)
            metrics_add(&w->m->l[w->gen->mslot_l[l->lidx]].refused[REFUSED_PER_ADDRESS], 1);
        if (v == ADDR_ADMIT || v == ADDR_UNTRACKED)
            log_error("listener=%s: out of memory for a new connection", l->lc->name);
        return;
    }
    c->addr_counted = v == ADDR_ADMIT;
    atomic_fetch_add(&w->srv->n_accepted, 1);
    c->w = w;
    c->g = gen_ref(w->gen);
    c->lc = l->lc;
    c->lidx = l->lidx;
    metrics_add(&conn_ml(c)->accepted, 1);
    c->cfd = fd;
    c->bfd = -1;
    c->srv_idx = -1;
    c->id = atomic_fetch_add(&w->srv->next_conn_id, 1) + 1;
    c->t_start = conn_now_ms();
    c->reason = "";
    conn_format_peer(c->peer, sizeof(c->peer), peer);
    c->peer_ss = *peer;
    if (l->lc->proxy_protocol_in)
        c->pp_in = conn_trusted(l->lc, peer) ? PP_IN_EXPECT : PP_IN_FORBID;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    event_assign(&c->cev_r, w->base, fd, EV_READ | EV_PERSIST, conn_event_cb, c);
    event_assign(&c->cev_w, w->base, fd, EV_WRITE | EV_PERSIST, conn_event_cb, c);
    evtimer_assign(&c->timer, w->base, conn_timer_cb, c);
    event_priority_set(&c->cev_r, PRIO_HANDSHAKE);
    event_priority_set(&c->cev_w, PRIO_HANDSHAKE);
    event_priority_set(&c->timer, PRIO_HANDSHAKE);
    if (!l->lc->redirect_to_https) {
        c->in_hs = true;
        w->handshaking++;
        atomic_fetch_add(&w->srv->n_handshaking, 1);
    }
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    c->state = l->lc->redirect_to_https && c->pp_in == PP_IN_NONE ? CONN_REDIRECT
                                                                  : CONN_FIRST_BYTE;
    c->hs_wait = WAIT_CREAD;
    conn_arm_timer(c, c->t_start + c->g->cfg->timeouts.handshake_ms);
    conn_update_events(c);
    log_debug("conn=%llu client=%s listener=%s accepted",
              (unsigned long long)c->id, c->peer, l->lc->name);
}

void
conn_close_all(struct worker *w, const char *reason)
{
    while (w->conns) {
        conn_close(w->conns, reason);
        conn_free(w->conns);
    }
}
