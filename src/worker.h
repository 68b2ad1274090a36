/* SPDX-License-Identifier: BSD-2-Clause */
/* worker.h - one thread, one event_base, its own listening sockets
 * (SO_REUSEPORT) and connections.
 *
 * The main thread talks to a worker only through events activated from
 * outside (stop, drain, swap) and, for a swap, the pending fields under
 * srv->lock. */
#ifndef TLSTERM_WORKER_H
#define TLSTERM_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "server.h"

struct event_base;
struct event;
struct listener;
struct conn;
struct gen;

/* Event priorities of a worker's loop (docs/design.md, "Established
 * traffic first"): each loop round runs only the most urgent non-empty
 * level, and at most one handshake step or accept round before it looks
 * at the sockets again, so relaying never waits behind more than one step
 * of handshake crypto. */
enum worker_prio {
    PRIO_ESTABLISHED = 0,           /* relay, backend connect, control events */
    PRIO_HANDSHAKE = 1,
    PRIO_ACCEPT = 2,
    PRIO_LEVELS
};

struct worker {
    unsigned id;
    pthread_t thread;
    int started;
    struct server *srv;
    struct event_base *base;
    struct gen *gen;                /* new connections start on this one */
    struct listener *listeners;     /* one per listen address of gen */
    size_t n_listeners;
    struct conn *conns;             /* every open connection */
    struct event *stop_ev, *drain_ev, *swap_ev, *ping_ev;
    struct event *hold_ev;          /* retries accepts held by max_handshakes */
    struct hs_thread *hs;           /* runs the handshake steps (conn_hs.h) */
    struct metrics_worker *m;       /* this worker's counters; it is their only writer */
    struct event *beat_ev;          /* the heartbeat /metrics reads (tlsterm_worker_up) */
    atomic_ulong pongs;             /* pings answered: the loop is alive */
    bool draining;                  /* listeners closed; finishing connections */
    const char *stop_reason;        /* set before stop_ev is activated */
    /* Prepared by the main thread, applied by the worker (swap_ev). */
    struct gen *next_gen;
    struct listener *next_listeners;
    size_t next_n;
    bool swap_done;
    unsigned handshaking;           /* connections accepted, handshake not done */
    bool accept_held;               /* listeners off: max_handshakes reached */
    time_t hold_logged_at;
};

/* Binds (or takes from socket activation) every listener of gen, in the
 * main thread, so start-up errors surface before any thread runs.  Takes
 * a reference to gen. */
int worker_init(struct worker *w, unsigned id, struct server *srv, struct gen *gen);
int worker_start(struct worker *w);

/* Refuses an address of cfg that something else already listens on:
 * SO_REUSEPORT would otherwise let two programs share a port without a
 * word.  Addresses this process holds (worker 0's sockets, sockets from
 * socket activation) are skipped.  what prefixes the error line. */
int workers_probe(const struct server *srv, const struct config *cfg, const char *what);

/* Reload, main thread: worker_prepare() opens the listening sockets gen
 * needs, reusing the worker's sockets for addresses that did not change;
 * on failure nothing changed.  worker_swap() hands them over and returns
 * once the worker switched; worker_unprepare() undoes a prepare. */
int worker_prepare(struct worker *w, struct gen *gen);
void worker_unprepare(struct worker *w);
void worker_swap(struct worker *w);

/* Thread-safe: asks the worker's loop to answer (w->pongs grows); the
 * watchdog only reassures systemd when every worker answered. */
void worker_ping(struct worker *w);
/* Thread-safe: stop accepting and let connections finish. */
void worker_drain(struct worker *w);
/* Thread-safe: close everything (logged with reason, a static string)
 * and leave the loop. */
void worker_stop(struct worker *w, const char *reason);
void worker_join(struct worker *w);
void worker_free(struct worker *w);

/* Worker thread: a connection leaves the handshake (done or closed); may
 * turn the listeners back on. */
void worker_handshake_done(struct worker *w);
/* Worker thread, before accepting: false when this worker or the whole
 * process has max_handshakes in progress (the listeners are then off
 * until there is room again). */
bool worker_may_accept(struct worker *w);

#endif
