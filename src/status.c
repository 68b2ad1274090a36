/* SPDX-License-Identifier: BSD-2-Clause */
/* status.c - /status: what an operator looks at first (listeners, servers
 * and their health, certificates and their expiry, the generation, the
 * connection counts), as one JSON document and as a small server-rendered
 * HTML page without JavaScript, readable on a phone. */
#include "autoconf.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "admin.h"
#include "gen.h"
#include "tls.h"

/* Everything both renderings show, gathered once. */
struct status {
    struct server *srv;
    struct gen *g;
    time_t loaded, now;
    uint64_t now_ms;
    struct metrics_sums all;
    struct tls_cert_info *certs;
    size_t n_certs;
};

static void
utc(char *out, size_t len, time_t t)
{
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int
status_gather(struct server *srv, struct status *st)
{
    struct timespec ts;

    memset(st, 0, sizeof(*st));
    st->srv = srv;
    st->g = metrics_gen(&srv->metrics, &st->loaded);
    if (st->g == NULL)
        return -1;
    st->now = time(NULL);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    st->now_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    metrics_sum_all(&srv->metrics, &st->all);
    st->n_certs = tls_ctx_certs(st->g->wtls[0], NULL, 0);
    st->certs = st->n_certs > 0 ? calloc(st->n_certs, sizeof(*st->certs)) : NULL;
    st->n_certs = st->certs != NULL ? tls_ctx_certs(st->g->wtls[0], st->certs, st->n_certs) : 0;
    return 0;
}

static void
status_release(struct status *st)
{
    free(st->certs);
    gen_unref(st->g);
}

/* ---- JSON ---------------------------------------------------------- */

static void
jstr(struct evbuffer *o, const char *s)
{
    evbuffer_add(o, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            evbuffer_add_printf(o, "\\%c", *p);
        else if (*p < 0x20)
            evbuffer_add_printf(o, "\\u%04x", *p);
        else
            evbuffer_add(o, p, 1);
    }
    evbuffer_add(o, "\"", 1);
}

static void
json_listeners(struct evbuffer *o, const struct status *st)
{
    const struct config *cfg = st->g->cfg;

    evbuffer_add_printf(o, ",\"listeners\":[");
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        const struct config_listener *lc = &cfg->listeners[i];
        struct metrics_sums s = { 0 };
        metrics_sum_listener(&st->srv->metrics, st->g->mslot_l[i], &s);
        evbuffer_add_printf(o, "%s{\"name\":", i ? "," : "");
        jstr(o, lc->name);
        evbuffer_add_printf(o, ",\"addresses\":[");
        for (size_t j = 0; j < lc->n_listen; j++) {
            evbuffer_add_printf(o, "%s", j ? "," : "");
            jstr(o, lc->listen[j].text);
        }
        evbuffer_add_printf(o, "],\"backend\":");
        jstr(o, lc->redirect_to_https ? "" : lc->backend_name);
        evbuffer_add_printf(o, ",\"open\":%" PRIu64 ",\"accepted\":%" PRIu64 ",\"handshakes\":%"
                            PRIu64 ",\"handshake_failures\":%" PRIu64 ",\"received_bytes\":%"
                            PRIu64 ",\"sent_bytes\":%" PRIu64 "}", s.accepted - s.closed,
                            s.accepted, s.hs_ok, s.hs_failed, s.rx, s.tx);
    }
    evbuffer_add_printf(o, "]");
}

static void
json_backends(struct evbuffer *o, const struct status *st)
{
    const struct config *cfg = st->g->cfg;

    evbuffer_add_printf(o, ",\"backends\":[");
    for (size_t b = 0; b < cfg->n_backends; b++) {
        const struct config_backend *be = &cfg->backends[b];
        evbuffer_add_printf(o, "%s{\"name\":", b ? "," : "");
        jstr(o, be->name);
        evbuffer_add_printf(o, ",\"servers\":[");
        for (size_t i = 0; i < be->n_servers; i++) {
            uint64_t con, fail;
            metrics_sum_server(&st->srv->metrics, st->g->mslot_s[be->first + i], &con, &fail);
            evbuffer_add_printf(o, "%s{\"address\":", i ? "," : "");
            jstr(o, be->servers[i].text);
            evbuffer_add_printf(o, ",\"up\":%s,\"active\":%u,\"connects\":%" PRIu64
                                ",\"connect_failures\":%" PRIu64 "}",
                                pool_server_up(&st->g->pool, be, i, st->now_ms) ? "true" : "false",
                                atomic_load(&st->g->pool.servers[be->first + i].active), con,
                                fail);
        }
        evbuffer_add_printf(o, "]}");
    }
    evbuffer_add_printf(o, "]");
}

static void
json_certs(struct evbuffer *o, const struct status *st)
{
    evbuffer_add_printf(o, ",\"certificates\":[");
    for (size_t i = 0; i < st->n_certs; i++) {
        const struct tls_cert_info *ci = &st->certs[i];
        char when[32], *names = strdup(ci->names), *save = NULL;
        utc(when, sizeof(when), ci->not_after);
        evbuffer_add_printf(o, "%s{\"listener\":", i ? "," : "");
        jstr(o, st->g->cfg->listeners[ci->lidx].name);
        evbuffer_add_printf(o, ",\"file\":");
        jstr(o, ci->file);
        evbuffer_add_printf(o, ",\"names\":[");
        for (char *n = names ? strtok_r(names, ",", &save) : NULL, *sep = ""; n != NULL;
             n = strtok_r(NULL, ",", &save), sep = ",") {
            evbuffer_add_printf(o, "%s", sep);
            jstr(o, n);
        }
        free(names);
        evbuffer_add_printf(o, "],\"serial\":");
        jstr(o, ci->serial);
        evbuffer_add_printf(o, ",\"not_after\":\"%s\",\"days_left\":%.1f}", when,
                            difftime(ci->not_after, st->now) / 86400.0);
    }
    evbuffer_add_printf(o, "]");
}

void
status_json(struct server *srv, struct evbuffer *o)
{
    struct status st;
    char started[32], loaded[32];

    if (status_gather(srv, &st) != 0) {
        evbuffer_add_printf(o, "{\"error\":\"starting\"}\n");
        return;
    }
    utc(started, sizeof(started), srv->metrics.started);
    utc(loaded, sizeof(loaded), st.loaded);
    evbuffer_add_printf(o, "{\"version\":\"%s\",\"mbedtls\":\"%s\",\"pid\":%ld,"
                        "\"start_time\":\"%s\",\"uptime_seconds\":%lld,\"generation\":%lu,"
                        "\"generation_loaded\":\"%s\",\"draining\":%s,", PACKAGE_VERSION,
                        tls_library_number(), (long)getpid(), started,
                        (long long)(st.now - srv->metrics.started), st.g->id, loaded,
                        atomic_load(&srv->metrics.draining) ? "true" : "false");
    evbuffer_add_printf(o, "\"connections\":{\"open\":%" PRIu64 ",\"accepted\":%" PRIu64
                        ",\"handshaking\":%u,\"http_requests\":%" PRIu64 "}",
                        st.all.accepted - st.all.closed, st.all.accepted,
                        atomic_load(&srv->n_handshaking), st.all.http_requests);
    json_listeners(o, &st);
    json_backends(o, &st);
    json_certs(o, &st);
    evbuffer_add_printf(o, ",\"workers\":[");
    for (unsigned i = 0; i < srv->metrics.n_workers; i++)
        evbuffer_add_printf(o, "%s{\"id\":%u,\"up\":%s}", i ? "," : "", i,
                            metrics_worker_up(&srv->metrics, i, st.now_ms) ? "true" : "false");
    evbuffer_add_printf(o, "]}\n");
    status_release(&st);
}

/* ---- HTML ---------------------------------------------------------- */

static void
hstr(struct evbuffer *o, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': evbuffer_add(o, "&lt;", 4); break;
        case '>': evbuffer_add(o, "&gt;", 4); break;
        case '&': evbuffer_add(o, "&amp;", 5); break;
        case '"': evbuffer_add(o, "&quot;", 6); break;
        default: evbuffer_add(o, s, 1);
        }
    }
}

/* On a phone each row becomes a card of "label value" lines (the labels
 * come from data-label), so nothing needs scrolling sideways. */
static const char page_head[] =
    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<title>tlsterm status</title>\n<style>\n"
    "body{font-family:system-ui,sans-serif;margin:1em;color:#222}\n"
    "table{border-collapse:collapse;margin-bottom:1.5em;width:100%}\n"
    "th,td{border:1px solid #ccc;padding:.3em .5em;text-align:left;font-size:.9em;"
    "overflow-wrap:anywhere}\n"
    "th{background:#eee}td.n{text-align:right}\n"
    ".up{background:#cfc}.down{background:#fcc}.warn{background:#ffc}\n"
    "@media (max-width:600px){table,tbody,tr,td{display:block}tr.head{display:none}\n"
    "tr{border:1px solid #ccc;margin-bottom:.6em}td{border:none;padding:.2em .5em}\n"
    "td.n{text-align:left}td::before{content:attr(data-label) \": \";font-weight:bold}}\n"
    "</style></head><body>\n<h1>tlsterm</h1>\n";

static void
table_open(struct evbuffer *o, const char *title, const char *id, const char *const *cols)
{
    evbuffer_add_printf(o, "<h2>%s</h2><table id=\"%s\"><tr class=\"head\">", title, id);
    for (; *cols != NULL; cols++)
        evbuffer_add_printf(o, "<th>%s</th>", *cols);
    evbuffer_add_printf(o, "</tr>\n");
}

/* One cell: text escaped; cls may be NULL. */
static void
cell(struct evbuffer *o, const char *label, const char *cls, const char *text)
{
    evbuffer_add_printf(o, "<td data-label=\"%s\"%s%s%s>", label, cls ? " class=\"" : "",
                        cls ? cls : "", cls ? "\"" : "");
    hstr(o, text);
    evbuffer_add_printf(o, "</td>");
}

static void
cell_num(struct evbuffer *o, const char *label, uint64_t v)
{
    evbuffer_add_printf(o, "<td data-label=\"%s\" class=\"n\">%" PRIu64 "</td>", label, v);
}

static void
html_listeners(struct evbuffer *o, const struct status *st)
{
    static const char *const cols[] = { "name", "address", "backend", "open", "accepted",
                                        "handshakes", "failed", NULL };
    const struct config *cfg = st->g->cfg;

    table_open(o, "Listeners", "listeners", cols);
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        const struct config_listener *lc = &cfg->listeners[i];
        struct metrics_sums s = { 0 };
        char addrs[512] = "";
        size_t off = 0;
        metrics_sum_listener(&st->srv->metrics, st->g->mslot_l[i], &s);
        for (size_t j = 0; j < lc->n_listen && off < sizeof(addrs); j++)
            off += (size_t)snprintf(addrs + off, sizeof(addrs) - off, "%s%s", j ? " " : "",
                                    lc->listen[j].text);
        evbuffer_add_printf(o, "<tr>");
        cell(o, cols[0], NULL, lc->name);
        cell(o, cols[1], NULL, addrs);
        cell(o, cols[2], NULL, lc->redirect_to_https ? "(redirect to https)" : lc->backend_name);
        cell_num(o, cols[3], s.accepted - s.closed);
        cell_num(o, cols[4], s.accepted);
        cell_num(o, cols[5], s.hs_ok);
        cell_num(o, cols[6], s.hs_failed);
        evbuffer_add_printf(o, "</tr>\n");
    }
    evbuffer_add_printf(o, "</table>\n");
}

static void
html_servers(struct evbuffer *o, const struct status *st)
{
    static const char *const cols[] = { "backend", "server", "state", "active", "connects",
                                        "failed", NULL };
    const struct config *cfg = st->g->cfg;

    table_open(o, "Servers", "servers", cols);
    for (size_t b = 0; b < cfg->n_backends; b++) {
        const struct config_backend *be = &cfg->backends[b];
        for (size_t i = 0; i < be->n_servers; i++) {
            uint64_t con, fail;
            bool up = pool_server_up(&st->g->pool, be, i, st->now_ms);
            metrics_sum_server(&st->srv->metrics, st->g->mslot_s[be->first + i], &con, &fail);
            evbuffer_add_printf(o, "<tr>");
            cell(o, cols[0], NULL, be->name);
            cell(o, cols[1], NULL, be->servers[i].text);
            cell(o, cols[2], up ? "up" : "down", up ? "UP" : "DOWN");
            cell_num(o, cols[3], atomic_load(&st->g->pool.servers[be->first + i].active));
            cell_num(o, cols[4], con);
            cell_num(o, cols[5], fail);
            evbuffer_add_printf(o, "</tr>\n");
        }
    }
    evbuffer_add_printf(o, "</table>\n");
}

static void
html_certs(struct evbuffer *o, const struct status *st)
{
    static const char *const cols[] = { "listener", "names", "days left", "expires", "serial",
                                        NULL };

    table_open(o, "Certificates", "certificates", cols);
    for (size_t i = 0; i < st->n_certs; i++) {
        const struct tls_cert_info *ci = &st->certs[i];
        double days = difftime(ci->not_after, st->now) / 86400.0;
        char when[32], left[32], names[sizeof(ci->names) * 2];
        size_t k = 0;
        for (const char *p = ci->names; *p && k + 2 < sizeof(names); p++) {
            names[k++] = *p;
            if (*p == ',')
                names[k++] = ' ';       /* so a long list wraps */
        }
        names[k] = '\0';
        utc(when, sizeof(when), ci->not_after);
        snprintf(left, sizeof(left), "%.1f", days);
        evbuffer_add_printf(o, "<tr>");
        cell(o, cols[0], NULL, st->g->cfg->listeners[ci->lidx].name);
        cell(o, cols[1], NULL, names);
        cell(o, cols[2], days < 0 ? "n down" : days < 14 ? "n warn" : "n", left);
        cell(o, cols[3], NULL, when);
        cell(o, cols[4], NULL, ci->serial);
        evbuffer_add_printf(o, "</tr>\n");
    }
    evbuffer_add_printf(o, "</table>\n");
}

void
status_html(struct server *srv, struct evbuffer *o)
{
    struct status st;
    char loaded[32];

    evbuffer_add(o, page_head, sizeof(page_head) - 1);
    if (status_gather(srv, &st) != 0) {
        evbuffer_add_printf(o, "<p>starting</p></body></html>\n");
        return;
    }
    utc(loaded, sizeof(loaded), st.loaded);
    evbuffer_add_printf(o, "<p id=\"summary\">%s, pid %ld, up %lld s; generation %lu loaded %s;"
                        " %s; <b>%" PRIu64 "</b> open, %" PRIu64 " accepted, %u in handshake, %"
                        PRIu64 " HTTP requests.</p>\n", PACKAGE_STRING, (long)getpid(),
                        (long long)(st.now - srv->metrics.started), st.g->id, loaded,
                        atomic_load(&srv->metrics.draining) ? "<b>draining</b>" : "serving",
                        st.all.accepted - st.all.closed, st.all.accepted,
                        atomic_load(&srv->n_handshaking), st.all.http_requests);
    html_listeners(o, &st);
    html_servers(o, &st);
    html_certs(o, &st);
    evbuffer_add_printf(o, "<p><a href=\"/metrics\">metrics</a> · <a href=\"/status.json\">"
                        "JSON</a> · <a href=\"/healthz\">healthz</a></p>\n</body></html>\n");
    status_release(&st);
}
