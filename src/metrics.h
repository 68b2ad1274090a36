/* SPDX-License-Identifier: BSD-2-Clause */
/* metrics.h - the counters behind /metrics and /status (admin.c).
 *
 * Each worker owns one struct metrics_worker and is its only writer: an
 * increment is a relaxed load, add and store (plain moves on x86, no lock
 * prefix, no shared cache line between workers), and a scrape on the
 * admin thread sums the workers with relaxed loads.  So the hot path
 * takes no lock, and a scrape reads each counter whole.
 *
 * Counters are kept per slot, not per configuration index: a listener or
 * server gets a slot the first time a generation names it
 * (metrics_bind, main thread, under the registry lock) and keeps it for
 * the life of the process, so counters survive reloads and a renamed
 * listener starts a new series, as Prometheus expects. */
#ifndef TLSTERM_METRICS_H
#define TLSTERM_METRICS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct gen;
struct evbuffer;

/* Slots for the life of the process; past them, new names share the last
 * slot (named "_other"), said once in the log. */
#define METRICS_LISTENERS 128
#define METRICS_SERVERS 512
/* tls_suite_slot(): the suites tlsterm can negotiate, plus "other". */
#define METRICS_SUITES 10
/* Histogram bounds in microseconds; the last bucket is +Inf. */
#define METRICS_BOUNDS 13
#define METRICS_BUCKETS (METRICS_BOUNDS + 1)

enum metrics_refusal {
    REFUSED_MAX_CONNECTIONS,
    REFUSED_FD_EXHAUSTION,
    REFUSED_PROXY,
    REFUSED_PER_ADDRESS,
    REFUSED_KINDS
};

typedef _Atomic uint64_t mctr;

extern const uint64_t metrics_bounds_us[METRICS_BOUNDS];
extern const char *const metrics_refusal_names[REFUSED_KINDS];   /* label values */

struct metrics_hist {
    mctr bucket[METRICS_BUCKETS];   /* not cumulative; the renderer adds up */
    mctr sum_us;
};

struct metrics_listener {
    mctr accepted, closed;
    mctr refused[REFUSED_KINDS];
    mctr hs_ok[2][METRICS_SUITES][2];   /* [TLS 1.2, 1.3][suite slot][resumed] */
    mctr hs_failed;
    struct metrics_hist hs_time;
    mctr rx, tx;                    /* decrypted bytes from / to clients */
    mctr http_requests;
};

struct metrics_server {
    mctr connects, failures;
    struct metrics_hist connect_time;
};

struct metrics_worker {
    struct metrics_listener l[METRICS_LISTENERS];
    struct metrics_server s[METRICS_SERVERS];
    mctr beat_ms;                   /* monotonic ms of the loop's last heartbeat */
};

struct metrics_server_name {
    char *backend, *server;
};

struct metrics {
    pthread_mutex_t lock;           /* the names and gen below */
    char *lnames[METRICS_LISTENERS];
    size_t n_l;
    struct metrics_server_name snames[METRICS_SERVERS];
    size_t n_s;
    bool overflow_logged;
    struct gen *gen;                /* the running generation (a reference) */
    time_t gen_loaded;              /* its load time */
    unsigned n_workers;
    struct metrics_worker *w;       /* [n_workers] */
    /* main thread only writes these */
    mctr reloads_ok, reloads_failed;
    time_t started;
    atomic_bool draining;
};

/* Single writer: only the thread that owns the counter calls these. */
static inline void
metrics_add(mctr *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

static inline void
metrics_set(mctr *c, uint64_t v)
{
    atomic_store_explicit(c, v, memory_order_relaxed);
}

static inline uint64_t
metrics_get(const mctr *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

void metrics_observe(struct metrics_hist *h, uint64_t us);

int metrics_init(struct metrics *m, unsigned n_workers);
void metrics_free(struct metrics *m);

/* Main thread, after a generation loaded: gives each of its listeners and
 * servers a slot (g->mslot_l, g->mslot_s).  -1 without memory. */
int metrics_bind(struct metrics *m, struct gen *g);
/* Main thread: g is now the running generation (takes a reference). */
void metrics_set_gen(struct metrics *m, struct gen *g);
/* Any thread: the running generation with a reference, or NULL. */
struct gen *metrics_gen(struct metrics *m, time_t *loaded);

/* The whole /metrics document (Prometheus text format 0.0.4). */
int metrics_render(struct metrics *m, struct evbuffer *out);

/* Sums for /status and systemd's STATUS=. */
struct metrics_sums {
    uint64_t accepted, closed, hs_ok, hs_failed, rx, tx, http_requests;
};
void metrics_sum_listener(const struct metrics *m, unsigned slot, struct metrics_sums *s);
void metrics_sum_all(const struct metrics *m, struct metrics_sums *s);
/* Slot's connects and failures over all workers. */
void metrics_sum_server(const struct metrics *m, unsigned slot, uint64_t *connects,
                        uint64_t *failures);
/* Its heartbeat is at most this old: the worker's loop runs. */
#define METRICS_BEAT_MS 1000
#define METRICS_ALIVE_MS 5000
bool metrics_worker_up(const struct metrics *m, unsigned worker, uint64_t now_ms);

#endif
