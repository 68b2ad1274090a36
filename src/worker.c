/* SPDX-License-Identifier: BSD-2-Clause */
/* worker.c - a thread running one event_base, and the hand-over of a new
 * generation to it. */
#include "autoconf.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "conn.h"
#include "conn_hs.h"
#include "gen.h"
#include "listener.h"
#include "log.h"
#include "worker.h"

static size_t
count_addrs(const struct config *cfg)
{
    size_t n = 0;

    for (size_t i = 0; i < cfg->n_listeners; i++)
        n += cfg->listeners[i].n_listen;
    return n;
}

/* The socket this worker already listens on for a, or -1. */
static int
held_fd(const struct worker *w, const struct config_addr *a)
{
    for (size_t i = 0; i < w->n_listeners; i++)
        if (w->listeners[i].fd >= 0 && strcmp(w->listeners[i].addr->text, a->text) == 0)
            return w->listeners[i].fd;
    return -1;
}

/* The socket systemd passed for a, or NULL. */
static struct inherited_fd *
inherited_for(const struct server *srv, const struct config_addr *a)
{
    for (size_t i = 0; i < srv->n_inherited; i++)
        if (strcmp(srv->inherited[i].text, a->text) == 0)
            return &srv->inherited[i];
    return NULL;
}

/* A socket for a, in this order: one this worker already listens on (a
 * reload keeps it, so no connection is refused), one systemd passed us,
 * a new one. */
static int
worker_socket(struct worker *w, const struct config_addr *a, char *err, size_t errlen)
{
    struct inherited_fd *in;
    int fd = held_fd(w, a);

    if (fd >= 0)
        return fd;
    if ((in = inherited_for(w->srv, a)) != NULL) {
        in->used = true;
        return fcntl(in->fd, F_DUPFD_CLOEXEC, 0);
    }
    return listener_bind(a, err, errlen);
}

int
workers_probe(const struct server *srv, const struct config *cfg, const char *what)
{
    char err[256];

    for (size_t i = 0; i < cfg->n_listeners; i++) {
        for (size_t j = 0; j < cfg->listeners[i].n_listen; j++) {
            const struct config_addr *a = &cfg->listeners[i].listen[j];
            if ((srv->workers != NULL && held_fd(&srv->workers[0], a) >= 0) ||
                inherited_for(srv, a) != NULL)
                continue;
            if (listener_probe(a, err, sizeof(err)) != 0) {
                log_error("%slistener=%s: %s", what, cfg->listeners[i].name, err);
                return -1;
            }
        }
    }
    return 0;
}

static bool
set_has_fd(const struct listener *set, size_t n, int fd)
{
    for (size_t i = 0; i < n; i++)
        if (set[i].fd == fd)
            return true;
    return false;
}

static void
free_set(struct worker *w, struct listener *set, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (set_has_fd(w->listeners, w->n_listeners, set[i].fd))
            set[i].fd = -1;             /* still the running set's */
        listener_close(&set[i]);
    }
    free(set);
}

int
worker_prepare(struct worker *w, struct gen *gen)
{
    const struct config *cfg = gen->cfg;
    size_t n = count_addrs(cfg), k = 0;
    struct listener *set = calloc(n ? n : 1, sizeof(*set));
    char err[256];

    if (set == NULL)
        return -1;
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        for (size_t j = 0; j < cfg->listeners[i].n_listen; j++, k++) {
            struct listener *l = &set[k];
            l->w = w;
            l->lidx = i;
            l->lc = &cfg->listeners[i];
            l->addr = &cfg->listeners[i].listen[j];
            l->fd = worker_socket(w, l->addr, err, sizeof(err));
            if (l->fd < 0) {
                log_error("listener=%s: %s", l->lc->name, err);
                free_set(w, set, k);
                return -1;
            }
        }
    }
    w->next_listeners = set;
    w->next_n = n;
    w->next_gen = gen_ref(gen);
    return 0;
}

void
worker_unprepare(struct worker *w)
{
    free_set(w, w->next_listeners, w->next_n);
    gen_unref(w->next_gen);
    w->next_listeners = NULL;
    w->next_n = 0;
    w->next_gen = NULL;
}

/* Runs in the worker (or before it started): sockets kept by the
 * prepared set only lose their old events; the others close. */
static void
worker_install(struct worker *w)
{
    struct listener *set = w->next_listeners;
    size_t n = w->next_n;
    struct gen *gen = w->next_gen;

    for (size_t i = 0; i < w->n_listeners; i++) {
        if (set_has_fd(set, n, w->listeners[i].fd))
            w->listeners[i].fd = -1;
        listener_close(&w->listeners[i]);
    }
    free(w->listeners);
    w->listeners = set;
    w->n_listeners = n;
    for (size_t i = 0; i < n; i++)
        if (listener_start(&set[i]) != 0)
            log_error("listener=%s addr=%s: cannot watch the socket",
                      set[i].lc->name, set[i].addr->text);
    gen_unref(w->gen);
    w->gen = gen;
    w->next_listeners = NULL;
    w->next_n = 0;
    w->next_gen = NULL;
    w->swap_done = true;
}

static void
worker_swap_cb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;

    (void)fd;
    (void)what;
    pthread_mutex_lock(&w->srv->lock);
    worker_install(w);
    pthread_cond_broadcast(&w->srv->swapped);
    pthread_mutex_unlock(&w->srv->lock);
}

void
worker_swap(struct worker *w)
{
    struct server *srv = w->srv;

    pthread_mutex_lock(&srv->lock);
    w->swap_done = false;
    if (!w->started)
        worker_install(w);
    else
        event_active(w->swap_ev, 0, 0);
    while (!w->swap_done)
        pthread_cond_wait(&srv->swapped, &srv->lock);
    pthread_mutex_unlock(&srv->lock);
}

static void
worker_drain_cb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;

    (void)fd;
    (void)what;
    /* Connections already in the accept queue were promised service:
     * take them before the socket closes (closing would reset them). */
    for (size_t i = 0; i < w->n_listeners; i++) {
        listener_accept_pending(&w->listeners[i]);
        listener_close(&w->listeners[i]);
    }
    w->draining = true;
    conn_drain_start(w);
    if (w->conns == NULL && w->srv->drained_ev != NULL)
        event_active(w->srv->drained_ev, 0, 0);
}

static void
worker_ping_cb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;

    (void)fd;
    (void)what;
    atomic_fetch_add(&w->pongs, 1);
}

/* tlsterm_worker_up reads it: a loop stuck in a callback stops beating. */
static void
worker_beat_cb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    struct timespec ts;

    (void)fd;
    (void)what;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    metrics_set(&w->m->beat_ms, (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000);
}

static void
worker_stop_cb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;

    (void)fd;
    (void)what;
    for (size_t i = 0; i < w->n_listeners; i++)
        listener_close(&w->listeners[i]);
    hs_thread_stop(w->hs);
    conn_close_all(w, w->stop_reason ? w->stop_reason : "shutdown");
    event_base_loopbreak(w->base);
}

/* One handshake or accept callback per loop round: after it libevent
 * polls the sockets again and runs whatever established connection
 * became ready first. */
static struct event_base *
worker_base_new(void)
{
    struct event_config *ec = event_config_new();
    struct event_base *base = NULL;

    if (ec == NULL)
        return NULL;
    if (event_config_set_max_dispatch_interval(ec, NULL, 1, PRIO_HANDSHAKE) == 0)
        base = event_base_new_with_config(ec);
    event_config_free(ec);
    if (base != NULL && event_base_priority_init(base, PRIO_LEVELS) != 0) {
        event_base_free(base);
        base = NULL;
    }
    return base;
}

/* ---- max_handshakes -------------------------------------------------- */

#define WORKER_HOLD_RETRY_MS 10

static unsigned
worker_hs_limit(const struct worker *w)
{
    const struct config *cfg = w->gen->cfg;
    unsigned n = w->srv->n_workers ? w->srv->n_workers : 1;

    if (cfg->limits.worker_max_handshakes)
        return cfg->limits.worker_max_handshakes;
    return cfg->limits.max_handshakes ? (cfg->limits.max_handshakes + n - 1) / n : 0;
}

static void
worker_listen(struct worker *w, bool on)
{
    for (size_t i = 0; i < w->n_listeners; i++) {
        struct listener *l = &w->listeners[i];
        if (l->ev == NULL || (l->backoff && evtimer_pending(l->backoff, NULL)))
            continue;
        if (on)
            event_add(l->ev, NULL);
        else
            event_del(l->ev);
    }
}

static void
worker_hold(struct worker *w, const char *what, unsigned limit)
{
    struct timeval tv = { 0, WORKER_HOLD_RETRY_MS * 1000 };
    time_t now = time(NULL);

    worker_listen(w, false);
    w->accept_held = true;
    /* the whole-process limit is freed by other threads: look again soon */
    evtimer_add(w->hold_ev, &tv);
    atomic_fetch_add(&w->srv->n_accept_holds, 1);
    if (now - w->hold_logged_at < 10)
        return;
    w->hold_logged_at = now;
    log_warn("worker=%u: %s (%u) handshakes in progress; new connections wait in the "
             "accept queue", w->id, what, limit);
}

static void
worker_release(struct worker *w)
{
    if (!w->accept_held)
        return;
    w->accept_held = false;
    evtimer_del(w->hold_ev);
    worker_listen(w, true);
}

bool
worker_may_accept(struct worker *w)
{
    unsigned mine = worker_hs_limit(w), all = w->gen->cfg->limits.max_handshakes;

    if (mine && w->handshaking >= mine) {
        worker_hold(w, w->gen->cfg->limits.worker_max_handshakes
                       ? "limits.worker_max_handshakes" : "limits.max_handshakes / workers",
                    mine);
        return false;
    }
    if (all && atomic_load(&w->srv->n_handshaking) >= all) {
        worker_hold(w, "limits.max_handshakes", all);
        return false;
    }
    return true;
}

void
worker_handshake_done(struct worker *w)
{
    unsigned mine = worker_hs_limit(w), all = w->gen->cfg->limits.max_handshakes;

    if (w->accept_held && (!mine || w->handshaking < mine) &&
        (!all || atomic_load(&w->srv->n_handshaking) < all))
        worker_release(w);
}

static void
worker_hold_cb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;

    (void)fd;
    (void)what;
    worker_handshake_done(w);
    if (w->accept_held) {
        struct timeval tv = { 0, WORKER_HOLD_RETRY_MS * 1000 };
        evtimer_add(w->hold_ev, &tv);
    }
}

int
worker_init(struct worker *w, unsigned id, struct server *srv, struct gen *gen)
{
    memset(w, 0, sizeof(*w));
    w->id = id;
    w->srv = srv;
    w->m = &srv->metrics.w[id];
    if ((w->base = worker_base_new()) == NULL)
        return -1;
    w->stop_ev = event_new(w->base, -1, 0, worker_stop_cb, w);
    w->drain_ev = event_new(w->base, -1, 0, worker_drain_cb, w);
    w->swap_ev = event_new(w->base, -1, 0, worker_swap_cb, w);
    w->ping_ev = event_new(w->base, -1, 0, worker_ping_cb, w);
    w->hold_ev = evtimer_new(w->base, worker_hold_cb, w);
    w->beat_ev = event_new(w->base, -1, EV_PERSIST, worker_beat_cb, w);
    if (w->stop_ev == NULL || w->drain_ev == NULL || w->swap_ev == NULL || w->ping_ev == NULL ||
        w->hold_ev == NULL || w->beat_ev == NULL)
        return -1;
    event_priority_set(w->beat_ev, PRIO_ESTABLISHED);
    /* control events jump the queue: a stop must not wait behind a flood */
    event_priority_set(w->stop_ev, PRIO_ESTABLISHED);
    event_priority_set(w->drain_ev, PRIO_ESTABLISHED);
    event_priority_set(w->swap_ev, PRIO_ESTABLISHED);
    event_priority_set(w->ping_ev, PRIO_ESTABLISHED);
    event_priority_set(w->hold_ev, PRIO_ACCEPT);
    if ((w->hs = hs_thread_new(w)) == NULL)
        return -1;
    if (worker_prepare(w, gen) != 0)
        return -1;
    worker_swap(w);
    return 0;
}

static void *
worker_main(void *arg)
{
    struct worker *w = arg;
    struct timeval beat = { METRICS_BEAT_MS / 1000, (METRICS_BEAT_MS % 1000) * 1000 };

    worker_beat_cb(-1, 0, w);
    event_add(w->beat_ev, &beat);
    event_base_dispatch(w->base);
    return NULL;
}

int
worker_start(struct worker *w)
{
    if (hs_thread_start(w->hs) != 0)
        return -1;
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
        return -1;
    w->started = 1;
    return 0;
}

void
worker_ping(struct worker *w)
{
    event_active(w->ping_ev, 0, 0);
}

void
worker_drain(struct worker *w)
{
    if (w->drain_ev)
        event_active(w->drain_ev, 0, 0);
}

void
worker_stop(struct worker *w, const char *reason)
{
    if (w->stop_ev == NULL)
        return;
    w->stop_reason = reason;
    event_active(w->stop_ev, 0, 0);
}

void
worker_join(struct worker *w)
{
    if (w->started)
        pthread_join(w->thread, NULL);
    w->started = 0;
}

void
worker_free(struct worker *w)
{
    for (size_t i = 0; i < w->n_listeners; i++)
        listener_close(&w->listeners[i]);
    hs_thread_free(w->hs);
    w->hs = NULL;
    conn_close_all(w, "shutdown");
    if (w->next_gen != NULL)
        worker_unprepare(w);
    if (w->stop_ev)
        event_free(w->stop_ev);
    if (w->drain_ev)
        event_free(w->drain_ev);
    if (w->swap_ev)
        event_free(w->swap_ev);
    if (w->ping_ev)
        event_free(w->ping_ev);
    if (w->hold_ev)
        event_free(w->hold_ev);
    if (w->beat_ev)
        event_free(w->beat_ev);
    if (w->base)
        event_base_free(w->base);
    gen_unref(w->gen);
    free(w->listeners);
    memset(w, 0, sizeof(*w));
}
