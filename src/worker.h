/* worker.h - one thread, one event_base, its own listening sockets
 * (SO_REUSEPORT), TLS context and connections. */
#ifndef TLSTERM_WORKER_H
#define TLSTERM_WORKER_H

#include <pthread.h>
#include <stddef.h>
#include <time.h>

#include "server.h"

struct event_base;
struct event;
struct listener;
struct conn;
struct tls_ctx;

struct worker {
    unsigned id;
    pthread_t thread;
    int started;
    struct server *srv;
    struct event_base *base;
    struct tls_ctx *tls;
    struct listener *listeners;     /* one per listen address */
    size_t n_listeners;
    struct conn *conns;             /* every open connection, for shutdown */
    unsigned *rr;                   /* round-robin position per backend */
    struct event *stop_ev;
    time_t reject_logged_at;        /* rate limit for max_connections logs */
    unsigned long rejects_unlogged;
};

/* Everything that can fail (binding, TLS loading) happens here, in the
 * main thread, so start-up errors surface before any thread runs. */
int worker_init(struct worker *w, unsigned id, struct server *srv, struct tls_ctx *tls);
int worker_start(struct worker *w);
/* Thread-safe: asks the worker to close everything and leave its loop. */
void worker_stop(struct worker *w);
void worker_join(struct worker *w);
void worker_free(struct worker *w);

#endif
