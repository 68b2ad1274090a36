/* SPDX-License-Identifier: BSD-2-Clause */
/* config_backend.c - the "backends" section: servers and their options,
 * balancing, health checks, PROXY protocol and the HTTP options of
 * forwarded_headers (see tlsterm.yaml(5), BACKENDS). */
#include "autoconf.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_int.h"
#include "http_fwd.h"

static const struct enum_kind balance_kind = {
    (const char *const[]){ "round_robin", "least_conn", "source_hash", NULL },
    "round_robin, least_conn or source_hash", BALANCE_ROUND_ROBIN
};
static const struct enum_kind health_type_kind = {
    (const char *const[]){ "tcp", "http", NULL }, "tcp or http", HEALTH_TCP
};

static const struct addr_kind server_kind = {
    "server address", true,
    offsetof(struct config_backend, servers), offsetof(struct config_backend, n_servers)
};

/* One entry of "servers": an address, or a mapping with address and
 * options. */
struct server_item {
    struct config_addr addr;
    struct config_server_opts o;
    bool has_addr;
};

static const struct count_kind weight_kind = { 1, 1000, false };
static const struct count_kind server_max_kind = { 1, CONFIG_MAX_CONNECTIONS_MAX, false };

static void
on_server_address(struct ctx *c, const struct key_spec *k, yaml_node_t *v, void *obj)
{
    struct server_item *it = obj;
    const char *s = cfg_want_text(c, k->name, v, "an address"), *why;

    if (s == NULL)
        return;
    if (config_parse_addr(s, true, &it->addr, &why) != 0) {
        cfg_err(c, v, "invalid server address \"%s\": %s", s, why);
        return;
    }
    it->addr.pos = cfg_node_pos(v);
    it->has_addr = true;
}

static const struct key_spec server_keys[] = {
    { "address", on_server_address, 0, NULL, true },
    { "weight", cfg_on_count, offsetof(struct server_item, o.weight), &weight_kind, false },
    { "max_connections", cfg_on_count, offsetof(struct server_item, o.max_connections),
      &server_max_kind, false },
    { "backup", cfg_on_bool, offsetof(struct server_item, o.backup), NULL, false },
    { NULL, NULL, 0, NULL, false },
};

static int
server_item(struct ctx *c, yaml_node_t *node, struct server_item *it)
{
    it->o.weight = 1;
    if (node->type == YAML_MAPPING_NODE) {
        cfg_walk_map(c, node, server_keys, "server", it);
        return it->has_addr ? 0 : -1;
    }
    return cfg_addr_item(c, &(struct key_spec){ "servers", NULL, 0, &server_kind, true }, node,
                     &it->addr);
}

static void
on_servers(struct ctx *c, const struct key_spec *k, yaml_node_t *v, void *obj)
{
    struct config_backend *b = obj;
    bool one = v->type == YAML_SCALAR_NODE;
    size_t n = one ? 1 : cfg_want_seq(c, k->name, v);

    if (n == 0)
        return;
    if (n > CONFIG_SERVERS_MAX) {
        cfg_err(c, v, "%zu servers: a backend has at most %d", n, CONFIG_SERVERS_MAX);
        return;
    }
    b->servers = calloc(n, sizeof(*b->servers));
    b->opts = calloc(n, sizeof(*b->opts));
    if (b->servers == NULL || b->opts == NULL) {
        cfg_oom(c, v);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *node = one ? v : cfg_seq_item(c, v, i);
        struct server_item it = { 0 };
        if (node == NULL || server_item(c, node, &it) != 0)
            continue;
        b->servers[b->n_servers] = it.addr;
        b->opts[b->n_servers++] = it.o;
    }
}

static void
on_health_path(struct ctx *c, const struct key_spec *k, yaml_node_t *v, void *obj)
{
    struct config_health *hc = obj;
    const char *s = cfg_want_text(c, k->name, v, "a path such as /health");

    if (s == NULL)
        return;
    if (s[0] != '/' || s[strcspn(s, " \t\r\n")] != '\0') {
        cfg_err(c, v, "invalid path \"%s\": must start with / and contain no spaces", s);
        return;
    }
    free(hc->path);
    hc->path = cfg_strdup(c, v, s);
}

static const struct count_kind rise_fall_kind = { 1, 100, false };
static const struct count_kind status_kind = { 100, 599, false };

static const struct key_spec health_keys[] = {
    { "type", cfg_on_enum, offsetof(struct config_health, type), &health_type_kind, false },
    { "interval", cfg_on_timeout, offsetof(struct config_health, interval_ms), NULL, false },
    { "timeout", cfg_on_timeout, offsetof(struct config_health, timeout_ms), NULL, false },
    { "rise", cfg_on_count, offsetof(struct config_health, rise), &rise_fall_kind, false },
    { "fall", cfg_on_count, offsetof(struct config_health, fall), &rise_fall_kind, false },
    { "path", on_health_path, 0, NULL, false },
    { "expect_status", cfg_on_count, offsetof(struct config_health, expect_status), &status_kind,
      false },
    { NULL, NULL, 0, NULL, false },
};

/* "health: {...}" turns active checks on (type tcp unless given). */
static void
on_health(struct ctx *c, const struct key_spec *k, yaml_node_t *v, void *obj)
{
    struct config_backend *b = obj;
    struct config_health *hc = &b->health;

    if (v->type != YAML_MAPPING_NODE) {
        cfg_err(c, v, "\"%s\" must be a mapping", k->name);
        return;
    }
    hc->type = HEALTH_TCP;
    cfg_walk_map(c, v, health_keys, "health", hc);
    if (hc->type == HEALTH_TCP && (hc->path != NULL || hc->expect_status != 200))
        cfg_err(c, v, "health: path and expect_status need \"type: http\"");
}

static void
on_proxy_protocol(struct ctx *c, const struct key_spec *k, yaml_node_t *v, void *obj)
{
    struct config_backend *b = obj;
    const char *s = cfg_want_text(c, k->name, v, "v1 or v2");

    if (s == NULL)
        return;
    if (strcmp(s, "v1") == 0)
        b->proxy_protocol = 1;
    else if (strcmp(s, "v2") == 0)
        b->proxy_protocol = 2;
    else if (strcmp(s, "off") == 0 || strcmp(s, "false") == 0)
        b->proxy_protocol = 0;
    else
        cfg_err(c, v, "invalid proxy_protocol \"%s\": expected v1, v2 or off", s);
}

static void
on_hsts(struct ctx *c, const struct key_spec *k, yaml_node_t *v, void *obj)
{
    struct config_backend *b = obj;
    const char *s = cfg_want_text(c, k->name, v, "max-age=SECONDS[; includeSubDomains]");
    bool ok;

    if (s == NULL)
        return;
    ok = strncmp(s, "max-age=", 8) == 0 && isdigit((unsigned char)s[8]);
    for (const char *p = s; ok && *p; p++)
        ok = (unsigned char)*p >= 0x20 && *p != 0x7f;
    if (!ok) {
        cfg_err(c, v, "invalid hsts \"%s\": expected max-age=SECONDS, optionally followed by "
             "\"; includeSubDomains\" and \"; preload\"", s);
        return;
    }
    free(b->http.hsts);
    b->http.hsts = cfg_strdup(c, v, s);
}

static const struct size_kind head_kind = {
    1024, HTTP_FWD_HEAD_MAX, "must be between 1k and 80k (http-parser's own limit)"
};

static const struct key_spec backend_keys[] = {
    { "servers", on_servers, 0, NULL, true },
    { "balance", cfg_on_enum, offsetof(struct config_backend, balance), &balance_kind, false },
    { "fail_timeout", cfg_on_timeout, offsetof(struct config_backend, fail_timeout_ms),
      NULL, false },
    { "health", on_health, 0, NULL, false },
    { "proxy_protocol", on_proxy_protocol, 0, NULL, false },
    { "forwarded_headers", cfg_on_bool, offsetof(struct config_backend, http.enabled),
      NULL, false },
    { "forwarded_rfc7239", cfg_on_bool, offsetof(struct config_backend, http.rfc7239),
      NULL, false },
    { "client_cert_headers", cfg_on_bool, offsetof(struct config_backend, http.client_cert), NULL,
      false },
    { "hsts", on_hsts, 0, NULL, false },
    { "max_request_head", cfg_on_size, offsetof(struct config_backend, http.max_head), &head_kind,
      false },
    { "allow_connect", cfg_on_bool, offsetof(struct config_backend, http.allow_connect),
      NULL, false },
    { NULL, NULL, 0, NULL, false },
};

/* The HTTP options refine forwarded_headers and mean nothing without it. */
static void
check_backend_http(struct ctx *c, yaml_node_t *node, struct config_backend *b)
{
    const char *opt = b->http.rfc7239 ? "forwarded_rfc7239"
                    : b->http.client_cert ? "client_cert_headers"
                    : b->http.hsts ? "hsts" : b->http.max_head ? "max_request_head"
                    : b->http.allow_connect ? "allow_connect" : NULL;

    if (!b->http.enabled && opt != NULL)
        cfg_err(c, node, "backend \"%s\": %s needs \"forwarded_headers: true\"", b->name, opt);
    if (b->http.max_head == 0)
        b->http.max_head = 64 * 1024;
}

/* One "NAME: {servers: ...}" pair; 0 when b now holds the backend. */
static int
backend_one(struct ctx *c, const yaml_node_t *map, const yaml_node_pair_t *pair,
            struct config_backend *b)
{
    yaml_node_t *kn = cfg_map_key(c, map, pair), *vn;
    char what[128];

    if (kn == NULL)
        return -1;
    if (!cfg_name_ok(cfg_node_text(kn))) {
        cfg_err(c, kn, "invalid backend name \"%s\": use only letters, digits, "
             "\"_\", \".\" and \"-\"", cfg_node_text(kn));
        return -1;
    }
    vn = cfg_node(c, pair->value);
    b->name = cfg_strdup(c, kn, cfg_node_text(kn));
    if (vn == NULL || b->name == NULL)
        return b->name != NULL ? 0 : -1;
    b->pos = cfg_node_pos(kn);
    b->fail_timeout_ms = 10 * 1000;
    b->health = (struct config_health){ HEALTH_NONE, 2000, 1000, 2, 3, NULL, 200 };
    snprintf(what, sizeof(what), "backend \"%s\"", b->name);
    if (vn->type != YAML_MAPPING_NODE)
        cfg_err(c, vn, "%s must be a mapping with \"servers\"", what);
    else {
        cfg_walk_map(c, vn, backend_keys, what, b);
        check_backend_http(c, vn, b);
    }
    return 0;
}

void
on_backends(struct ctx *c, const struct key_spec *k, yaml_node_t *v, void *obj)
{
    struct config *cfg = obj;
    size_t n;

    if (v->type != YAML_MAPPING_NODE) {
        cfg_err(c, v, "\"%s\" must be a mapping", k->name);
        return;
    }
    n = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
    if (n == 0) {
        cfg_err(c, v, "\"%s\" must not be empty", k->name);
        return;
    }
    cfg->backends = calloc(n, sizeof(*cfg->backends));
    if (cfg->backends == NULL) {
        cfg_oom(c, v);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (backend_one(c, v, &v->data.mapping.pairs.start[i],
                        &cfg->backends[cfg->n_backends]) == 0)
            cfg->n_backends++;
    }
    for (size_t i = 0; i < cfg->n_backends; i++) {
        cfg->backends[i].first = cfg->n_servers_total;
        cfg->n_servers_total += cfg->backends[i].n_servers;
    }
}

void
config_backend_free(struct config_backend *b)
{
    free(b->name);
    free(b->servers);
    free(b->opts);
    free(b->health.path);
    free(b->http.hsts);
}
