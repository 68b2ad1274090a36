/* SPDX-License-Identifier: BSD-2-Clause */
/* metrics_text.c - /metrics in the Prometheus text exposition format
 * 0.0.4: every family with HELP and TYPE, base units (seconds, bytes),
 * counters ending in _total.  Reads the workers' counters without a lock
 * (metrics.h) and the running generation through a reference. */
#include "autoconf.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "gen.h"
#include "metrics.h"
#include "tls.h"
#include "tls_names.h"

static void
family(struct evbuffer *o, const char *name, const char *type, const char *help)
{
    evbuffer_add_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value: backslash, double quote and newline escaped. */
static void
label(struct evbuffer *o, const char *key, const char *v, bool more)
{
    evbuffer_add_printf(o, "%s=\"", key);
    for (const char *p = v; *p; p++) {
        if (*p == '\\' || *p == '"')
            evbuffer_add_printf(o, "\\%c", *p);
        else if (*p == '\n')
            evbuffer_add(o, "\\n", 2);
        else
            evbuffer_add(o, p, 1);
    }
    evbuffer_add(o, more ? "\"," : "\"", more ? 2 : 1);
}

static uint64_t
sum_l(const struct metrics *m, unsigned slot, size_t off)
{
    uint64_t n = 0;

    for (unsigned w = 0; w < m->n_workers; w++)
        n += metrics_get((const mctr *)((const char *)&m->w[w].l[slot] + off));
    return n;
}

static uint64_t
sum_s(const struct metrics *m, unsigned slot, size_t off)
{
    uint64_t n = 0;

    for (unsigned w = 0; w < m->n_workers; w++)
        n += metrics_get((const mctr *)((const char *)&m->w[w].s[slot] + off));
    return n;
}

/* A per-listener counter (or, with gauge, accepted - closed). */
static void
listener_family(struct evbuffer *o, const struct metrics *m, const char *name,
                const char *type, const char *help, size_t off)
{
    family(o, name, type, help);
    for (unsigned i = 0; i < m->n_l; i++) {
        uint64_t v = sum_l(m, i, off);
        if (strcmp(type, "gauge") == 0)
            v = sum_l(m, i, offsetof(struct metrics_listener, accepted)) -
                sum_l(m, i, offsetof(struct metrics_listener, closed));
        evbuffer_add_printf(o, "%s{", name);
        label(o, "listener", m->lnames[i], false);
        evbuffer_add_printf(o, "} %" PRIu64 "\n", v);
    }
}

static void
refusals(struct evbuffer *o, const struct metrics *m)
{
    family(o, "tlsterm_connections_refused_total", "counter",
           "Connections closed before any TLS byte, by reason.");
    for (unsigned i = 0; i < m->n_l; i++)
        for (int r = 0; r < REFUSED_KINDS; r++) {
            evbuffer_add(o, "tlsterm_connections_refused_total{", 34);
            label(o, "listener", m->lnames[i], true);
            label(o, "reason", metrics_refusal_names[r], false);
            evbuffer_add_printf(o, "} %" PRIu64 "\n",
                                sum_l(m, i, offsetof(struct metrics_listener, refused[r])));
        }
}

static void
handshakes(struct evbuffer *o, const struct metrics *m)
{
    static const char *const versions[2] = { "TLSv1.2", "TLSv1.3" };

    family(o, "tlsterm_handshakes_total", "counter",
           "TLS handshakes by result; version, suite and resumed for those that succeeded.");
    for (unsigned i = 0; i < m->n_l; i++) {
        for (int v = 0; v < 2; v++)
            for (int k = 0; k < METRICS_SUITES; k++)
                for (int r = 0; r < 2; r++) {
                    size_t off = offsetof(struct metrics_listener, hs_ok[v][k][r]);
                    uint64_t n = sum_l(m, i, off);
                    if (n == 0)
                        continue;       /* only combinations that happened */
                    evbuffer_add(o, "tlsterm_handshakes_total{", 25);
                    label(o, "listener", m->lnames[i], true);
                    evbuffer_add_printf(o, "result=\"ok\",version=\"%s\",suite=\"%s\","
                                        "resumed=\"%s\"} %" PRIu64 "\n", versions[v],
                                        tls_suite_slot_name((unsigned)k),
                                        r ? "true" : "false", n);
                }
        evbuffer_add(o, "tlsterm_handshakes_total{", 25);
        label(o, "listener", m->lnames[i], true);
        evbuffer_add_printf(o, "result=\"failed\",version=\"\",suite=\"\",resumed=\"false\"} "
                            "%" PRIu64 "\n",
                            sum_l(m, i, offsetof(struct metrics_listener, hs_failed)));
    }
}

/* One histogram series; key/value is its identifying label pair(s),
 * already escaped and comma-terminated. */
static void
histogram(struct evbuffer *o, const char *name, const char *labels, const uint64_t *buckets,
          uint64_t sum_us)
{
    uint64_t cum = 0;

    for (int b = 0; b < METRICS_BUCKETS; b++) {
        cum += buckets[b];
        if (b < METRICS_BOUNDS)
            evbuffer_add_printf(o, "%s_bucket{%sle=\"%g\"} %" PRIu64 "\n", name, labels,
                                (double)metrics_bounds_us[b] / 1e6, cum);
        else
            evbuffer_add_printf(o, "%s_bucket{%sle=\"+Inf\"} %" PRIu64 "\n", name, labels, cum);
    }
    evbuffer_add_printf(o, "%s_sum{%.*s} %.6f\n", name, (int)strlen(labels) - 1, labels,
                        (double)sum_us / 1e6);
    evbuffer_add_printf(o, "%s_count{%.*s} %" PRIu64 "\n", name, (int)strlen(labels) - 1,
                        labels, cum);
}

/* labels of one series as text: escaped values, comma-terminated */
static char *
labels_text(const char *k1, const char *v1, const char *k2, const char *v2)
{
    struct evbuffer *b = evbuffer_new();
    char *s = NULL;
    size_t n;

    if (b == NULL)
        return NULL;
    label(b, k1, v1, true);
    if (k2 != NULL)
        label(b, k2, v2, true);
    n = evbuffer_get_length(b);
    if ((s = malloc(n + 1)) != NULL) {
        evbuffer_remove(b, s, n);
        s[n] = '\0';
    }
    evbuffer_free(b);
    return s;
}

static void
hs_histograms(struct evbuffer *o, const struct metrics *m)
{
    family(o, "tlsterm_handshake_duration_seconds", "histogram",
           "Successful TLS handshakes, from the client's first byte to the handshake's end.");
    for (unsigned i = 0; i < m->n_l; i++) {
        uint64_t b[METRICS_BUCKETS];
        char *lt = labels_text("listener", m->lnames[i], NULL, NULL);
        for (int k = 0; k < METRICS_BUCKETS; k++)
            b[k] = sum_l(m, i, offsetof(struct metrics_listener, hs_time.bucket[k]));
        if (lt != NULL)
            histogram(o, "tlsterm_handshake_duration_seconds", lt, b,
                      sum_l(m, i, offsetof(struct metrics_listener, hs_time.sum_us)));
        free(lt);
    }
}

static void
server_families(struct evbuffer *o, const struct metrics *m)
{
    static const struct { const char *name, *help; size_t off; } fam[] = {
        { "tlsterm_backend_connects_total", "Connection attempts to a backend server.",
          offsetof(struct metrics_server, connects) },
        { "tlsterm_backend_connect_failures_total",
          "Connection attempts to a backend server that failed (refused, timed out).",
          offsetof(struct metrics_server, failures) },
    };

    for (size_t f = 0; f < sizeof(fam) / sizeof(fam[0]); f++) {
        family(o, fam[f].name, "counter", fam[f].help);
        for (unsigned i = 0; i < m->n_s; i++) {
            evbuffer_add_printf(o, "%s{", fam[f].name);
            label(o, "backend", m->snames[i].backend, true);
            label(o, "server", m->snames[i].server, false);
            evbuffer_add_printf(o, "} %" PRIu64 "\n", sum_s(m, i, fam[f].off));
        }
    }
    family(o, "tlsterm_backend_connect_duration_seconds", "histogram",
           "Successful connects to a backend server, from connect() to connected.");
    for (unsigned i = 0; i < m->n_s; i++) {
        uint64_t b[METRICS_BUCKETS];
        char *lt = labels_text("backend", m->snames[i].backend, "server", m->snames[i].server);
        for (int k = 0; k < METRICS_BUCKETS; k++)
            b[k] = sum_s(m, i, offsetof(struct metrics_server, connect_time.bucket[k]));
        if (lt != NULL)
            histogram(o, "tlsterm_backend_connect_duration_seconds", lt, b,
                      sum_s(m, i, offsetof(struct metrics_server, connect_time.sum_us)));
        free(lt);
    }
}

static uint64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Health of the running generation's servers. */
static void
servers_up(struct evbuffer *o, const struct gen *g)
{
    const struct config *cfg = g->cfg;
    uint64_t now = now_ms();

    family(o, "tlsterm_server_up", "gauge",
           "1 while a backend server takes connections, 0 while a health check or a "
           "failed connect keeps it out.");
    for (size_t b = 0; b < cfg->n_backends; b++) {
        const struct config_backend *be = &cfg->backends[b];
        for (size_t i = 0; i < be->n_servers; i++) {
            evbuffer_add(o, "tlsterm_server_up{", 18);
            label(o, "backend", be->name, true);
            label(o, "server", be->servers[i].text, false);
            evbuffer_add_printf(o, "} %d\n", pool_server_up(&g->pool, be, i, now));
        }
    }
}

static void
certificates(struct evbuffer *o, const struct gen *g)
{
    /* sized by what is loaded: zeroing room for thousands was 91% of a
     * scrape (tests/bench/results/metrics-cost.md) */
    size_t n = tls_ctx_certs(g->wtls[0], NULL, 0);
    struct tls_cert_info *ci = n > 0 ? calloc(n, sizeof(*ci)) : NULL;

    n = ci != NULL ? tls_ctx_certs(g->wtls[0], ci, n) : 0;

    family(o, "tlsterm_certificate_not_after_seconds", "gauge",
           "When a loaded certificate expires, in seconds since the epoch.");
    for (size_t i = 0; i < n; i++) {
        evbuffer_add(o, "tlsterm_certificate_not_after_seconds{", 38);
        label(o, "listener", g->cfg->listeners[ci[i].lidx].name, true);
        label(o, "names", ci[i].names, true);
        label(o, "serial", ci[i].serial, false);
        evbuffer_add_printf(o, "} %lld\n", (long long)ci[i].not_after);
    }
    free(ci);
}

static void
process_families(struct evbuffer *o, struct metrics *m, const struct gen *g, time_t loaded)
{
    uint64_t now = now_ms();

    family(o, "tlsterm_build_info", "gauge", "Versions of tlsterm and its TLS library.");
    evbuffer_add_printf(o, "tlsterm_build_info{version=\"%s\",mbedtls=\"%s\"} 1\n",
                        PACKAGE_VERSION, tls_library_number());
    family(o, "tlsterm_start_time_seconds", "gauge", "When the process started.");
    evbuffer_add_printf(o, "tlsterm_start_time_seconds %lld\n", (long long)m->started);
    family(o, "tlsterm_reloads_total", "counter", "Configuration reloads by result.");
    evbuffer_add_printf(o, "tlsterm_reloads_total{result=\"success\"} %" PRIu64 "\n"
                        "tlsterm_reloads_total{result=\"failure\"} %" PRIu64 "\n",
                        metrics_get(&m->reloads_ok), metrics_get(&m->reloads_failed));
    family(o, "tlsterm_generation", "gauge",
           "The running configuration generation: 1 at start, one more per reload.");
    evbuffer_add_printf(o, "tlsterm_generation %lu\n", g->id);
    family(o, "tlsterm_generation_loaded_timestamp_seconds", "gauge",
           "When the running generation was loaded.");
    evbuffer_add_printf(o, "tlsterm_generation_loaded_timestamp_seconds %lld\n",
                        (long long)loaded);
    family(o, "tlsterm_draining", "gauge", "1 once a stop signal started the drain.");
    evbuffer_add_printf(o, "tlsterm_draining %d\n", atomic_load(&m->draining) ? 1 : 0);
    family(o, "tlsterm_worker_up", "gauge",
           "1 while a worker's event loop answers its heartbeat (every second).");
    for (unsigned i = 0; i < m->n_workers; i++)
        evbuffer_add_printf(o, "tlsterm_worker_up{worker=\"%u\"} %d\n", i,
                            metrics_worker_up(m, i, now));
}

int
metrics_render(struct metrics *m, struct evbuffer *o)
{
    time_t loaded;
    struct gen *g = metrics_gen(m, &loaded);

    if (g == NULL)
        return -1;
    pthread_mutex_lock(&m->lock);       /* the names; workers never take it */
    listener_family(o, m, "tlsterm_connections_open", "gauge",
                    "Client connections open now.", 0);
    listener_family(o, m, "tlsterm_connections_accepted_total", "counter",
                    "Client connections accepted.", offsetof(struct metrics_listener, accepted));
    refusals(o, m);
    handshakes(o, m);
    hs_histograms(o, m);
    listener_family(o, m, "tlsterm_received_bytes_total", "counter",
                    "Decrypted bytes received from clients.",
                    offsetof(struct metrics_listener, rx));
    listener_family(o, m, "tlsterm_sent_bytes_total", "counter",
                    "Bytes sent to clients, before encryption.",
                    offsetof(struct metrics_listener, tx));
    listener_family(o, m, "tlsterm_http_requests_total", "counter",
                    "HTTP requests seen on listeners whose backend has forwarded_headers.",
                    offsetof(struct metrics_listener, http_requests));
    server_families(o, m);
    pthread_mutex_unlock(&m->lock);
    servers_up(o, g);
    certificates(o, g);
    process_families(o, m, g, loaded);
    gen_unref(g);
    return 0;
}
