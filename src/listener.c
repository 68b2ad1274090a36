/* SPDX-License-Identifier: BSD-2-Clause */
/* listener.c - listening sockets, accept, and the max_connections and
 * fd-exhaustion policies. */
#include "autoconf.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "conn.h"
#include "gen.h"
#include "listener.h"
#include "log.h"
#include "worker.h"

#define LISTENER_BACKLOG 4096
#define LISTENER_ACCEPTS_PER_WAKE 64
#define LISTENER_BACKOFF_MS 100

/* The config line, and for the two usual causes what to do about them. */
static void
listen_err(char *err, size_t errlen, const struct config_addr *a, const char *step, int e)
{
    char line[32] = "";
    const char *hint = "";
    unsigned port = 0;

    if (a->pos.line > 0)
        snprintf(line, sizeof(line), " (config line %d)", a->pos.line);
    if (a->ss.ss_family == AF_INET)
        port = ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
    else if (a->ss.ss_family == AF_INET6)
        port = ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
    if (e == EADDRINUSE)
        hint = "; another process listens there (ss -ltnp shows which)";
    else if (e == EACCES && port > 0 && port < 1024)
        hint = "; a port below 1024 needs root or CAP_NET_BIND_SERVICE";
    else if (e == EADDRNOTAVAIL)
        hint = "; no interface of this host has that address";
    snprintf(err, errlen, "cannot listen on %s%s: %s%s%s", a->text, line, step, strerror(e),
             hint);
}

static int
listener_socket(const struct config_addr *a, int reuseport, char *err, size_t errlen)
{
    int one = 1;
    int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        listen_err(err, errlen, a, "socket: ", errno);
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (reuseport)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    /* "[::]:443" must not also claim IPv4, so it can sit beside "0.0.0.0:443". */
    if (a->ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, (const struct sockaddr *)&a->ss, a->len) != 0) {
        listen_err(err, errlen, a, "", errno);
        close(fd);
        return -1;
    }
    return fd;
}

int
listener_probe(const struct config_addr *a, char *err, size_t errlen)
{
    int fd = listener_socket(a, 0, err, errlen);

    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

int
listener_bind(const struct config_addr *a, char *err, size_t errlen)
{
    int fd = listener_socket(a, 1, err, errlen);

    if (fd < 0)
        return -1;
    if (listen(fd, LISTENER_BACKLOG) != 0) {
        listen_err(err, errlen, a, "", errno);
        close(fd);
        return -1;
    }
    return fd;
}

static void
listener_reject_log(struct listener *l)
{
    if (l->rejects_unlogged == 0)
        return;
    log_warn("listener=%s: max_connections (%u) reached, refused %lu connection(s)",
             l->lc->name, l->w->gen->cfg->limits.max_connections, l->rejects_unlogged);
    l->reject_logged_at = time(NULL);
    l->rejects_unlogged = 0;
}

static void
listener_reject_flush_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    listener_reject_log(arg);
}

/* The listener's counters in its worker's block (metrics.h); listeners
 * are installed together with their generation, so w->gen is theirs. */
static struct metrics_listener *
listener_metrics(const struct listener *l)
{
    return &l->w->m->l[l->w->gen->mslot_l[l->lidx]];
}

/* Closes at once; one warning per second per listener says how many, and
 * the second's last refusals are logged when it ends, so the warnings add
 * up to the count in the exit summary. */
static void
listener_reject(struct listener *l, int fd)
{
    struct timeval second = { 1, 0 };

    close(fd);
    atomic_fetch_add(&l->w->srv->n_rejected, 1);
    metrics_add(&listener_metrics(l)->refused[REFUSED_MAX_CONNECTIONS], 1);
    l->rejects_unlogged++;
    if (time(NULL) != l->reject_logged_at)
        listener_reject_log(l);
    else if (l->reject_flush != NULL && !evtimer_pending(l->reject_flush, NULL))
        evtimer_add(l->reject_flush, &second);
}

/* Out of fds: stop accepting for a moment instead of spinning on a
 * listening socket that stays readable.  *logged_at: one line per second
 * per cause. */
static void
listener_pause(struct listener *l, const char *what, int err, time_t *logged_at)
{
    struct timeval tv = { 0, LISTENER_BACKOFF_MS * 1000 };
    time_t now = time(NULL);

    if (l->ev == NULL)
        return;
    event_del(l->ev);
    evtimer_add(l->backoff, &tv);
    if (now == *logged_at)
        return;
    *logged_at = now;
    log_warn("listener=%s addr=%s: %s: %s; pausing accepts for %d ms",
             l->lc->name, l->addr->text, what, strerror(err), LISTENER_BACKOFF_MS);
}

void
listeners_back_off(struct worker *w, const char *what, int err)
{
    for (size_t i = 0; i < w->n_listeners; i++)
        listener_pause(&w->listeners[i], what, err, &w->listeners[i].local_logged_at);
}

static void
listener_resume_cb(evutil_socket_t fd, short what, void *arg)
{
    struct listener *l = arg;

    (void)fd;
    (void)what;
    if (!l->w->accept_held)     /* else worker_release() turns it on */
        event_add(l->ev, NULL);
}

/* check: honour max_handshakes (not while draining: what is queued then
 * is accepted and served, never reset by the close). */
static int
listener_accept_one(struct listener *l, bool check)
{
    struct sockaddr_storage peer;
    socklen_t len = sizeof(peer);
    struct server *srv = l->w->srv;
    int fd;

    if (check && !worker_may_accept(l->w))
        return -1;
    fd = accept4(l->fd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            metrics_add(&listener_metrics(l)->refused[REFUSED_FD_EXHAUSTION], 1);
            listener_pause(l, "accept", errno, &l->pause_logged_at);
        } else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
            log_warn("listener=%s: accept: %s", l->lc->name, strerror(errno));
        return -1;
    }
    if (atomic_fetch_add(&srv->n_open, 1) >= l->w->gen->cfg->limits.max_connections) {
        atomic_fetch_sub(&srv->n_open, 1);
        listener_reject(l, fd);
        return 0;
    }
    conn_accept(l->w, l, fd, &peer);
    return 0;
}

static void
listener_accept_cb(evutil_socket_t fd, short what, void *arg)
{
    struct listener *l = arg;

    (void)fd;
    (void)what;
    for (int i = 0; i < LISTENER_ACCEPTS_PER_WAKE; i++)
        if (listener_accept_one(l, true) != 0)
            return;
}

void
listener_accept_pending(struct listener *l)
{
    if (l->fd < 0)
        return;
    while (listener_accept_one(l, false) == 0)
        ;
}

int
listener_start(struct listener *l)
{
    struct event_base *base = l->w->base;

    l->ev = event_new(base, l->fd, EV_READ | EV_PERSIST, listener_accept_cb, l);
    l->backoff = evtimer_new(base, listener_resume_cb, l);
    l->reject_flush = evtimer_new(base, listener_reject_flush_cb, l);
    if (l->ev == NULL || l->backoff == NULL || l->reject_flush == NULL)
        return -1;
    event_priority_set(l->ev, PRIO_ACCEPT);
    event_priority_set(l->backoff, PRIO_ACCEPT);
    return event_add(l->ev, NULL);
}

void
listener_close(struct listener *l)
{
    if (l->reject_flush) {
        listener_reject_log(l);
        event_free(l->reject_flush);
        l->reject_flush = NULL;
    }
    if (l->ev) {
        event_free(l->ev);
        l->ev = NULL;
    }
    if (l->backoff) {
        event_free(l->backoff);
        l->backoff = NULL;
    }
    if (l->fd >= 0) {
        close(l->fd);
        l->fd = -1;
    }
}
