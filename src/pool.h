/* SPDX-License-Identifier: BSD-2-Clause */
/* pool.h - choosing a backend server: balance (weighted round robin,
 * least connections, source hash), per-server max_connections, backup
 * servers, and passive health (a server whose connect failed rests for
 * the backend's fail_timeout while connections retry on another). */
#ifndef TLSTERM_POOL_H
#define TLSTERM_POOL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config.h"

/* Shared by every worker of one generation, one per server. */
struct pool_server {
    atomic_uint active;             /* connections using it now */
    atomic_uint_least64_t down_until;   /* monotonic ms; 0: available */
    atomic_bool unhealthy;          /* the active health check says down */
};

struct pool {
    const struct config *cfg;
    struct pool_server *servers;    /* [cfg->n_servers_total] */
    int *wrr;                       /* [worker * n_servers_total + server]: smooth WRR */
    unsigned *rr;                   /* [worker * n_backends + backend]: tie breaking */
};

int pool_init(struct pool *p, const struct config *cfg, unsigned n_workers);
void pool_free(struct pool *p);

/* Index (into be->servers) of the server for a new connection from
 * client, skipping those in the tried bitmask, down by the active check,
 * or full; servers resting after a failed connect only when no other is
 * left.  It counts as active until pool_release().  -1: none left. */
int pool_pick(struct pool *p, unsigned worker, const struct config_backend *be,
              const struct sockaddr_storage *client, uint64_t tried, uint64_t now_ms);
void pool_release(struct pool *p, const struct config_backend *be, int idx);
/* A connect failed: the server rests for fail_timeout.  Logs when it
 * goes from available to down. */
void pool_failed(struct pool *p, const struct config_backend *be, int idx, uint64_t now_ms,
                 const char *why);
/* A connect succeeded: logs when the server was down before. */
void pool_succeeded(struct pool *p, const struct config_backend *be, int idx);
/* The active health check's verdict (health.c). */
/* 1 while server idx of be takes connections (not resting, not down). */
int pool_server_up(const struct pool *p, const struct config_backend *be, size_t idx,
                   uint64_t now_ms);
void pool_set_healthy(struct pool *p, const struct config_backend *be, int idx, bool healthy);

#endif
