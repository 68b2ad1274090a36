/* worker.c - a thread running one event_base. */
#include "autoconf.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "conn.h"
#include "listener.h"
#include "log.h"
#include "tls.h"
#include "worker.h"

static size_t
worker_count_addrs(const struct config *cfg)
{
    size_t n = 0;

    for (size_t i = 0; i < cfg->n_listeners; i++)
        n += cfg->listeners[i].n_listen;
    return n;
}

static int
worker_bind_all(struct worker *w)
{
    const struct config *cfg = w->srv->cfg;
    char err[256];
    size_t k = 0;

    for (size_t i = 0; i < cfg->n_listeners; i++) {
        for (size_t j = 0; j < cfg->listeners[i].n_listen; j++, k++) {
            struct listener *l = &w->listeners[k];
            l->w = w;
            l->lidx = i;
            l->lc = &cfg->listeners[i];
            l->addr = &cfg->listeners[i].listen[j];
            l->fd = listener_bind(l->addr, err, sizeof(err));
            if (l->fd < 0) {
                log_error("listener=%s: %s", l->lc->name, err);
                return -1;
            }
            if (listener_start(l) != 0)
                return -1;
        }
    }
    return 0;
}

static void
worker_stop_cb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;

    (void)fd;
    (void)what;
    for (size_t i = 0; i < w->n_listeners; i++)
        listener_close(&w->listeners[i]);
    conn_close_all(w, "shutdown");
    event_base_loopbreak(w->base);
}

int
worker_init(struct worker *w, unsigned id, struct server *srv, struct tls_ctx *tls)
{
    const struct config *cfg = srv->cfg;

    memset(w, 0, sizeof(*w));
    w->id = id;
    w->srv = srv;
    w->tls = tls;
    w->base = event_base_new();
    w->n_listeners = worker_count_addrs(cfg);
    w->listeners = calloc(w->n_listeners, sizeof(*w->listeners));
    w->rr = calloc(cfg->n_backends ? cfg->n_backends : 1, sizeof(*w->rr));
    if (w->base == NULL || w->listeners == NULL || w->rr == NULL)
        return -1;
    for (size_t i = 0; i < w->n_listeners; i++)
        w->listeners[i].fd = -1;
    /* Spread the round-robin start so workers do not move in lockstep. */
    for (size_t i = 0; i < cfg->n_backends; i++)
        w->rr[i] = id;
    w->stop_ev = event_new(w->base, -1, 0, worker_stop_cb, w);
    if (w->stop_ev == NULL)
        return -1;
    return worker_bind_all(w);
}

static void *
worker_main(void *arg)
{
    struct worker *w = arg;

    event_base_dispatch(w->base);
    return NULL;
}

int
worker_start(struct worker *w)
{
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
        return -1;
    w->started = 1;
    return 0;
}

void
worker_stop(struct worker *w)
{
    if (w->stop_ev)
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
    conn_close_all(w, "shutdown");
    if (w->stop_ev)
        event_free(w->stop_ev);
    if (w->base)
        event_base_free(w->base);
    tls_ctx_free(w->tls);
    free(w->listeners);
    free(w->rr);
    memset(w, 0, sizeof(*w));
}
