/* SPDX-License-Identifier: BSD-2-Clause */
/* metrics.c - slots, sums and the Prometheus text rendering (metrics.h). */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "gen.h"
#include "log.h"
#include "metrics.h"
#include "tls.h"
#include "tls_names.h"

/* Handshakes take a millisecond or so, backend connects on a LAN less:
 * the bounds start at 1 ms and reach the default handshake timeout. */
const uint64_t metrics_bounds_us[METRICS_BOUNDS] = {
    1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
    1000000, 2500000, 5000000, 10000000,
};

const char *const metrics_refusal_names[REFUSED_KINDS] = {
    "max_connections", "fd_exhaustion", "proxy_refused", "per_address",
};

void
metrics_observe(struct metrics_hist *h, uint64_t us)
{
    size_t i = 0;

    while (i < METRICS_BOUNDS && us > metrics_bounds_us[i])
        i++;
    metrics_add(&h->bucket[i], 1);
    metrics_add(&h->sum_us, us);
}

int
metrics_init(struct metrics *m, unsigned n_workers)
{
    memset(m, 0, sizeof(*m));
    if (pthread_mutex_init(&m->lock, NULL) != 0)
        return -1;
    m->n_workers = n_workers;
    m->w = calloc(n_workers ? n_workers : 1, sizeof(*m->w));
    m->started = time(NULL);
    return m->w != NULL ? 0 : -1;
}

void
metrics_free(struct metrics *m)
{
    if (m->w == NULL)
        return;
    for (size_t i = 0; i < m->n_l; i++)
        free(m->lnames[i]);
    for (size_t i = 0; i < m->n_s; i++) {
        free(m->snames[i].backend);
        free(m->snames[i].server);
    }
    gen_unref(m->gen);
    free(m->w);
    pthread_mutex_destroy(&m->lock);
    m->w = NULL;
}

static void
note_overflow(struct metrics *m, const char *what)
{
    if (!m->overflow_logged)
        log_warn("metrics: more than %d %s names since start; the rest are counted "
                 "together as \"_other\" until a restart",
                 what[0] == 'l' ? METRICS_LISTENERS : METRICS_SERVERS, what);
    m->overflow_logged = true;
}

static unsigned
listener_slot(struct metrics *m, const char *name)
{
    for (size_t i = 0; i < m->n_l; i++)
        if (strcmp(m->lnames[i], name) == 0)
            return (unsigned)i;
    if (m->n_l == METRICS_LISTENERS - 1) {
        note_overflow(m, "listener");
        if ((m->lnames[m->n_l] = strdup("_other")) == NULL)
            return METRICS_LISTENERS - 1;
        m->n_l++;
    }
    if (m->n_l == METRICS_LISTENERS)
        return METRICS_LISTENERS - 1;
    if ((m->lnames[m->n_l] = strdup(name)) == NULL)
        return METRICS_LISTENERS - 1;
    return (unsigned)m->n_l++;
}

static unsigned
server_slot(struct metrics *m, const char *backend, const char *server)
{
    struct metrics_server_name *s;

    for (size_t i = 0; i < m->n_s; i++)
        if (strcmp(m->snames[i].backend, backend) == 0 &&
            strcmp(m->snames[i].server, server) == 0)
            return (unsigned)i;
    if (m->n_s >= METRICS_SERVERS - 1) {
        if (m->n_s == METRICS_SERVERS - 1) {
            note_overflow(m, "server");
            backend = server = "_other";
        } else {
            return METRICS_SERVERS - 1;
        }
    }
    s = &m->snames[m->n_s];
    s->backend = strdup(backend);
    s->server = strdup(server);
    if (s->backend == NULL || s->server == NULL) {
        free(s->backend);
        free(s->server);
        s->backend = s->server = NULL;
        return METRICS_SERVERS - 1;
    }
    return (unsigned)m->n_s++;
}

int
metrics_bind(struct metrics *m, struct gen *g)
{
    const struct config *cfg = g->cfg;

    g->mslot_l = calloc(cfg->n_listeners + 1, sizeof(*g->mslot_l));
    g->mslot_s = calloc(cfg->n_servers_total + 1, sizeof(*g->mslot_s));
    if (g->mslot_l == NULL || g->mslot_s == NULL)
        return -1;
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < cfg->n_listeners; i++)
        g->mslot_l[i] = listener_slot(m, cfg->listeners[i].name);
    for (size_t b = 0; b < cfg->n_backends; b++) {
        const struct config_backend *be = &cfg->backends[b];
        for (size_t i = 0; i < be->n_servers; i++)
            g->mslot_s[be->first + i] = server_slot(m, be->name, be->servers[i].text);
    }
    pthread_mutex_unlock(&m->lock);
    return 0;
}

void
metrics_set_gen(struct metrics *m, struct gen *g)
{
    struct gen *old;

    gen_ref(g);
    pthread_mutex_lock(&m->lock);
    old = m->gen;
    m->gen = g;
    m->gen_loaded = time(NULL);
    pthread_mutex_unlock(&m->lock);
    gen_unref(old);
}

struct gen *
metrics_gen(struct metrics *m, time_t *loaded)
{
    struct gen *g;

    pthread_mutex_lock(&m->lock);
    g = m->gen != NULL ? gen_ref(m->gen) : NULL;
    if (loaded != NULL)
        *loaded = m->gen_loaded;
    pthread_mutex_unlock(&m->lock);
    return g;
}

/* ---- sums ---------------------------------------------------------- */

void
metrics_sum_listener(const struct metrics *m, unsigned slot, struct metrics_sums *s)
{
    for (unsigned w = 0; w < m->n_workers; w++) {
        const struct metrics_listener *l = &m->w[w].l[slot];
        s->accepted += metrics_get(&l->accepted);
        s->closed += metrics_get(&l->closed);
        s->hs_failed += metrics_get(&l->hs_failed);
        s->rx += metrics_get(&l->rx);
        s->tx += metrics_get(&l->tx);
        s->http_requests += metrics_get(&l->http_requests);
        for (int v = 0; v < 2; v++)
            for (int k = 0; k < METRICS_SUITES; k++)
                s->hs_ok += metrics_get(&l->hs_ok[v][k][0]) + metrics_get(&l->hs_ok[v][k][1]);
    }
}

void
metrics_sum_all(const struct metrics *m, struct metrics_sums *s)
{
    for (unsigned i = 0; i < METRICS_LISTENERS; i++)
        metrics_sum_listener(m, i, s);
}

void
metrics_sum_server(const struct metrics *m, unsigned slot, uint64_t *connects,
                   uint64_t *failures)
{
    *connects = *failures = 0;
    for (unsigned w = 0; w < m->n_workers; w++) {
        *connects += metrics_get(&m->w[w].s[slot].connects);
        *failures += metrics_get(&m->w[w].s[slot].failures);
    }
}

bool
metrics_worker_up(const struct metrics *m, unsigned worker, uint64_t now_ms)
{
    uint64_t beat = metrics_get(&m->w[worker].beat_ms);

    return beat != 0 && now_ms < beat + METRICS_ALIVE_MS;
}
