/* SPDX-License-Identifier: BSD-2-Clause */
/* server.h - process-wide state shared by all workers.  gen is the
 * current generation, read and replaced by the main thread only; workers
 * reach their own generation through struct worker.  The counters are
 * atomics. */
#ifndef TLSTERM_SERVER_H
#define TLSTERM_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "addr_limit.h"
#include "config.h"
#include "metrics.h"

/* Addresses the per_address limits track at once. */
#define SERVER_ADDR_TABLE 65536

struct worker;
struct event;
struct gen;
struct health;
struct event_base;
struct admin;

/* A listening socket passed by systemd (LISTEN_FDS). */
struct inherited_fd {
    int fd;
    char text[128];                 /* its address, as config_addr.text */
    bool used;
};

struct server {
    const char *config_path;
    struct gen *gen;
    struct event_base *base;        /* the main thread's loop, while it runs */
    struct health *health;          /* active checks of gen; main thread only */
    unsigned n_workers;
    struct worker *workers;
    struct inherited_fd *inherited;
    size_t n_inherited;
    struct event *drained_ev;       /* a draining worker has no connections left */
    pthread_mutex_t lock;           /* guards each worker's pending swap */
    pthread_cond_t swapped;
    uint8_t instance_id[8];         /* random per process: PROXY v2 unique ids */
    atomic_uint n_open;             /* connections open right now */
    atomic_ulong n_accepted;        /* accepted and served */
    atomic_ulong n_rejected;        /* closed at once: max_connections */
    atomic_ulong next_conn_id;
    atomic_ulong n_full_handshakes;
    atomic_ulong n_resumed_handshakes;
    atomic_uint n_handshaking;      /* accepted, handshake not finished */
    atomic_ulong n_accept_holds;    /* times a worker stopped accepting: max_handshakes */
    atomic_ulong n_local_failures;  /* backend socket() failed here: fds, memory */
    atomic_ulong n_refused_addr_conns;  /* per_address.connections */
    atomic_ulong n_refused_addr_rate;   /* per_address.handshakes_per_second */
    atomic_ulong n_addr_untracked;  /* the address table was full */
    struct addr_limit addrs;
    struct metrics metrics;         /* /metrics and /status (admin.c) */
    struct admin *admin;            /* the admin listener's thread; NULL: none */
};

#endif
