/* SPDX-License-Identifier: BSD-2-Clause */
/* pool.c - server choice and passive health (see pool.h). */
#include "autoconf.h"

#include <math.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "log.h"
#include "pool.h"

int
pool_init(struct pool *p, const struct config *cfg, unsigned n_workers)
{
    size_t n = cfg->n_servers_total ? cfg->n_servers_total : 1;

    memset(p, 0, sizeof(*p));
    p->cfg = cfg;
    p->servers = calloc(n, sizeof(*p->servers));
    p->wrr = calloc((size_t)n_workers * n, sizeof(*p->wrr));
    p->rr = calloc((size_t)n_workers * (cfg->n_backends + 1), sizeof(*p->rr));
    if (p->servers == NULL || p->wrr == NULL || p->rr == NULL)
        return -1;
    /* Spread the starting point so workers do not move in lockstep. */
    for (unsigned w = 0; w < n_workers; w++)
        for (size_t b = 0; b < cfg->n_backends; b++)
            p->rr[w * cfg->n_backends + b] = w;
    return 0;
}

void
pool_free(struct pool *p)
{
    free(p->servers);
    free(p->wrr);
    free(p->rr);
    memset(p, 0, sizeof(*p));
}

static struct pool_server *
srv_of(struct pool *p, const struct config_backend *be, int i)
{
    return &p->servers[be->first + (size_t)i];
}

/* now == UINT64_MAX: ignore passive-health rests (see pool_pick). */
static bool
usable(struct pool *p, const struct config_backend *be, int i, uint64_t tried, uint64_t now)
{
    struct pool_server *s = srv_of(p, be, i);
    unsigned max = be->opts[i].max_connections;

    return !(tried & (1ULL << i)) && !atomic_load(&s->unhealthy) &&
           atomic_load(&s->down_until) <= now &&
           (max == 0 || atomic_load(&s->active) < max);
}

/* nginx's smooth weighted round robin: over any stretch of picks each
 * server gets its share, interleaved rather than in bursts. */
static int
pick_wrr(struct pool *p, unsigned w, const struct config_backend *be, const bool *ok)
{
    int *cw = &p->wrr[(size_t)w * p->cfg->n_servers_total + be->first];
    int best = -1, total = 0;

    for (size_t i = 0; i < be->n_servers; i++) {
        if (!ok[i])
            continue;
        cw[i] += (int)be->opts[i].weight;
        total += (int)be->opts[i].weight;
        if (best < 0 || cw[i] > cw[best])
            best = (int)i;
    }
    if (best >= 0)
        cw[best] -= total;
    return best;
}

/* Fewest active connections per unit of weight; ties go round robin. */
static int
pick_least(struct pool *p, unsigned w, const struct config_backend *be, const bool *ok)
{
    unsigned *rr = &p->rr[(size_t)w * p->cfg->n_backends + (size_t)(be - p->cfg->backends)];
    int best = -1;
    uint64_t best_a = 0, best_w = 1;

    for (size_t k = 0; k < be->n_servers; k++) {
        size_t i = (*rr + k) % be->n_servers;
        uint64_t a = atomic_load(&srv_of(p, be, (int)i)->active), wt = be->opts[i].weight;
        if (ok[i] && (best < 0 || a * best_w < best_a * wt)) {
            best = (int)i;
            best_a = a;
            best_w = wt;
        }
    }
    (*rr)++;
    return best;
}

static uint64_t
hash_bytes(const void *data, size_t n, uint64_t seed)
{
    const unsigned char *b = data;
    uint64_t h = seed ^ 0x9e3779b97f4a7c15ULL;

    for (size_t i = 0; i < n; i++)
        h = mix64(h ^ b[i]);
    return h;
}

/* Weighted rendezvous hashing on the client's address (not its port):
 * a client keeps its server, and when a server goes away only its own
 * clients move. */
static int
pick_hash(const struct config_backend *be, const bool *ok, const struct sockaddr_storage *cl)
{
    const void *ip = cl->ss_family == AF_INET6
                     ? (const void *)&((const struct sockaddr_in6 *)cl)->sin6_addr
                     : (const void *)&((const struct sockaddr_in *)cl)->sin_addr;
    size_t iplen = cl->ss_family == AF_INET6 ? 16 : cl->ss_family == AF_INET ? 4 : 0;
    uint64_t h = hash_bytes(ip, iplen, 0);
    double best_score = 0;
    int best = -1;

    for (size_t i = 0; i < be->n_servers; i++) {
        if (!ok[i])
            continue;
        uint64_t x = hash_bytes(be->servers[i].text, strlen(be->servers[i].text), h);
        double u = ((double)(x >> 11) + 0.5) / 9007199254740992.0;     /* (0, 1) */
        double score = -(double)be->opts[i].weight / log(u);
        if (best < 0 || score > best_score) {
            best = (int)i;
            best_score = score;
        }
    }
    return best;
}

static int
pick_once(struct pool *p, unsigned worker, const struct config_backend *be,
          const struct sockaddr_storage *client, uint64_t tried, uint64_t now_ms)
{
    bool ok[CONFIG_SERVERS_MAX];
    int idx = -1;

    /* primaries first; backups only when no primary is available */
    for (int backup = 0; backup < 2 && idx < 0; backup++) {
        bool any = false;
        for (size_t i = 0; i < be->n_servers; i++) {
            ok[i] = be->opts[i].backup == (bool)backup && usable(p, be, (int)i, tried, now_ms);
            any |= ok[i];
        }
        if (!any)
            continue;
        if (be->balance == BALANCE_LEAST_CONN)
            idx = pick_least(p, worker, be, ok);
        else if (be->balance == BALANCE_SOURCE_HASH)
            idx = pick_hash(be, ok, client);
        else
            idx = pick_wrr(p, worker, be, ok);
    }
    return idx;
}

int
pool_pick(struct pool *p, unsigned worker, const struct config_backend *be,
          const struct sockaddr_storage *client, uint64_t tried, uint64_t now_ms)
{
    for (;;) {
        int idx = pick_once(p, worker, be, client, tried, now_ms);
        unsigned max;
        /* Passive health steers connections away from a resting server
         * while another can take them; when all rest (a one-server
         * backend after a single refused connect), refusing the client
         * outright would be worse than trying them (nginx does the same). */
        if (idx < 0)
            idx = pick_once(p, worker, be, client, tried, UINT64_MAX);
        if (idx < 0)
            return -1;
        /* Claim the slot atomically: another worker may have taken the
         * last one since usable() looked, and max_connections is a limit. */
        max = be->opts[idx].max_connections;
        if (atomic_fetch_add(&srv_of(p, be, idx)->active, 1) < max || max == 0)
            return idx;
        atomic_fetch_sub(&srv_of(p, be, idx)->active, 1);
        tried |= 1ULL << idx;
    }
}

void
pool_release(struct pool *p, const struct config_backend *be, int idx)
{
    if (idx >= 0)
        atomic_fetch_sub(&srv_of(p, be, idx)->active, 1);
}

void
pool_failed(struct pool *p, const struct config_backend *be, int idx, uint64_t now_ms,
            const char *why)
{
    uint64_t until = now_ms + be->fail_timeout_ms;
    uint64_t was = atomic_exchange(&srv_of(p, be, idx)->down_until, until);

    if (was <= now_ms)
        log_warn("backend=%s server=%s is down for %llu ms: %s", be->name,
                 be->servers[idx].text, (unsigned long long)be->fail_timeout_ms, why);
}

void
pool_succeeded(struct pool *p, const struct config_backend *be, int idx)
{
    struct pool_server *s = srv_of(p, be, idx);

    /* read first: an exchange on every connection would bounce the line */
    if (atomic_load(&s->down_until) != 0 && atomic_exchange(&s->down_until, 0) != 0)
        log_info("backend=%s server=%s is up again", be->name, be->servers[idx].text);
}

void
pool_set_healthy(struct pool *p, const struct config_backend *be, int idx, bool healthy)
{
    atomic_store(&srv_of(p, be, idx)->unhealthy, !healthy);
}

int
pool_server_up(const struct pool *p, const struct config_backend *be, size_t idx,
               uint64_t now_ms)
{
    struct pool_server *s = &p->servers[be->first + idx];

    return !atomic_load(&s->unhealthy) && atomic_load(&s->down_until) <= now_ms;
}
