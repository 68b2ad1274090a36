/* SPDX-License-Identifier: BSD-2-Clause */
/* config_listener.c - the listeners section of the config: addresses,
 * certificates, routes, client_auth, PROXY protocol in and redirect
 * listeners.  Split from config.c, which keeps the walk and generic
 * value handlers (config_int.h). */
#include "autoconf.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "config.h"
#include "config_int.h"
#include "tls_names.h"

#define DIGITS "0123456789"

static const struct enum_kind auth_mode_kind = {
    (const char *const[]){ "none", "optional", "required", NULL },
    "none, optional or required", CLIENT_AUTH_NONE
};
static const struct addr_kind listen_kind = {
    "listen address", false,
    offsetof(struct config_listener, listen), offsetof(struct config_listener, n_listen)
};

static const struct key_spec cert_keys[] = {
    { "cert", on_path, offsetof(struct config_cert, cert_file), NULL, true },
    { "key", on_path, offsetof(struct config_cert, key_file), NULL, true },
    { "key_passphrase_file", on_path, offsetof(struct config_cert, key_passphrase_file),
      NULL, false },
    { "allow_expired", on_bool, offsetof(struct config_cert, allow_expired), NULL, false },
    { NULL, NULL, 0, NULL, false },
};

static void
on_certificates(struct ctx *c, const struct key_spec *k, yaml_node_t *v, void *obj)
{
    struct config_listener *l = obj;
    size_t n = want_seq(c, k->name, v);

    if (n == 0)
        return;
    l->certs = calloc(n, sizeof(*l->certs));
    if (l->certs == NULL) {
        oom(c, v);
        return;
    }
    l->n_certs = n;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *it = seq_item(c, v, i);
        if (it == NULL)
            continue;
        l->certs[i].pos = node_pos(it);
        if (it->type != YAML_MAPPING_NODE)
            cerr(c, it, "each entry of \"%s\" must be a mapping with \"cert\" and \"key\"",
                 k->name);
        else
            walk_map(c, it, cert_keys, "certificate entry", &l->certs[i]);
    }
}

static void
on_listener_name(struct ctx *c, const struct key_spec *k, yaml_node_t *v, void *obj)
{
    struct config_listener *l = obj;
    const char *s = want_text(c, k->name, v, "a string");

    if (s == NULL)
        return;
    if (!name_ok(s)) {
        cerr(c, v, "invalid listener name \"%s\": use only letters, digits, "
             "\"_\", \".\" and \"-\"", s);
        return;
    }
    for (const struct config_listener *prev = c->cfg->listeners; prev < l; prev++) {
        if (prev->name != NULL && strcmp(prev->name, s) == 0) {
            cerr(c, v, "duplicate listener name \"%s\" (first used at line %d)", s,
                 prev->pos.line);
            return;
        }
    }
    l->name = ctx_strdup(c, v, s);
}

static void
on_backend_ref(struct ctx *c, const struct key_spec *k, yaml_node_t *v, void *obj)
{
    struct config_listener *l = obj;
    const char *s = want_text(c, k->name, v, "a backend name");

    if (s == NULL)
        return;
    l->backend_name = ctx_strdup(c, v, s);
    c->backend_ref[l - c->cfg->listeners] = node_pos(v);
}

/* A host name as SNI carries it, or "*." and a suffix of at least two
 * labels; stored lower case so lookups can compare bytes. */
static char *
sni_pattern(struct ctx *c, const yaml_node_t *v, const char *s)
{
    const char *name = strncmp(s, "*.", 2) == 0 ? s + 2 : s;
    char *out;

    if (*name == '\0' || strlen(s) > 253 ||
        name[strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" DIGITS "_.-")] ||
        name[0] == '.' || name[strlen(name) - 1] == '.' || strstr(name, "..") != NULL ||
        (name != s && strchr(name, '.') == NULL)) {
        cerr(c, v, "invalid sni \"%s\": expected a host name or \"*.\" and a domain", s);
        return NULL;
    }
    out = ctx_strdup(c, v, s);
    for (char *p = out; p != NULL && *p != '\0'; p++)
        *p = (char)tolower((unsigned char)*p);
    return out;
}

static void
on_route_sni(struct ctx *c, const struct key_spec *k, yaml_node_t *v, void *obj)
{
    struct config_route *r = obj;
    const char *s = want_text(c, k->name, v, "a host name");

    if (s != NULL)
        r->sni = sni_pattern(c, v, s);
}

static void
on_route_backend(struct ctx *c, const struct key_spec *k, yaml_node_t *v, void *obj)
{
    struct config_route *r = obj;
    const char *s = want_text(c, k->name, v, "a backend name");

    if (s == NULL)
        return;
    r->backend_name = ctx_strdup(c, v, s);
    r->pos = node_pos(v);
}

static const struct key_spec route_keys[] = {
    { "sni", on_route_sni, 0, NULL, true },
    { "backend", on_route_backend, 0, NULL, true },
    { NULL, NULL, 0, NULL, false },
};

static void
on_routes(struct ctx *c, const struct key_spec *k, yaml_node_t *v, void *obj)
{
    struct config_listener *l = obj;
    size_t n = want_seq(c, k->name, v);

    if (n == 0)
        return;
    l->routes = calloc(n, sizeof(*l->routes));
    if (l->routes == NULL) {
        oom(c, v);
        return;
    }
    l->n_routes = n;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *it = seq_item(c, v, i);
        if (it == NULL)
            continue;
        l->routes[i].pos = node_pos(it);
        if (it->type != YAML_MAPPING_NODE)
            cerr(c, it, "each entry of \"%s\" must be a mapping with \"sni\" and \"backend\"",
                 k->name);
        else
            walk_map(c, it, route_keys, "route", &l->routes[i]);
    }
}

static const struct count_kind depth_kind = { 1, 20, false };

static const struct key_spec client_auth_keys[] = {
    { "mode", on_enum, offsetof(struct config_listener, client_auth.mode), &auth_mode_kind,
      false },
    { "ca", on_path, offsetof(struct config_listener, client_auth.ca_file), NULL, false },
    { "crl", on_path, offsetof(struct config_listener, client_auth.crl_file), NULL, false },
    { "verify_depth", on_count, offsetof(struct config_listener, client_auth.verify_depth),
      &depth_kind, false },
    { NULL, NULL, 0, NULL, false },
};

static void
on_trusted(struct ctx *c, const struct key_spec *k, yaml_node_t *v, void *obj)
{
    struct config_listener *l = obj;

    cidr_list(c, k, v, &l->trusted, &l->n_trusted, "trusted");
}

static const struct count_kind port_kind = { 1, 65535, false };

/* A port-80 companion: plain HTTP, every request answered with a 308 to
 * https.  It has no certificates and no backend, so it has its own keys. */
static const struct key_spec redirect_keys[] = {
    { "name", on_listener_name, 0, NULL, true },
    { "listen", on_addrs, 0, &listen_kind, true },
    { "redirect_to_https", on_bool, offsetof(struct config_listener, redirect_to_https),
      NULL, true },
    { "https_port", on_count, offsetof(struct config_listener, https_port), &port_kind, false },
    { "proxy_protocol_in", on_bool, offsetof(struct config_listener, proxy_protocol_in),
      NULL, false },
    { "trusted", on_trusted, 0, NULL, false },
    { NULL, NULL, 0, NULL, false },
};

/* "redirect_to_https: true" in the mapping, before walking it, picks the
 * key table (and so which keys are required).  It reads the key nodes
 * itself: map_key() reports problems, and the walk reports them once. */
static bool
is_redirect(struct ctx *c, yaml_node_t *map)
{
    static const char *const yes[] = { "true", "yes", "on", NULL };

    for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
         p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = node_get(c, p->key), *vn = node_get(c, p->value);
        if (kn != NULL && kn->type == YAML_SCALAR_NODE && vn != NULL &&
            vn->type == YAML_SCALAR_NODE &&
            strcmp(node_text(kn), "redirect_to_https") == 0)
            return str_in(node_text(vn), yes);
    }
    return false;
}

static const struct key_spec listener_keys[] = {
    { "name", on_listener_name, 0, NULL, true },
    { "listen", on_addrs, 0, &listen_kind, true },
    { "certificates", on_certificates, 0, NULL, true },
    { "backend", on_backend_ref, 0, NULL, true },
    { "alpn", on_alpn, 0, NULL, false },
    { "sni_strict", on_bool, offsetof(struct config_listener, sni_strict), NULL, false },
    { "client_auth", on_submap, 0, client_auth_keys, false },
    { "routes", on_routes, 0, NULL, false },
    { "redirect_to_https", on_bool, offsetof(struct config_listener, redirect_to_https),
      NULL, false },
    { "proxy_protocol_in", on_bool, offsetof(struct config_listener, proxy_protocol_in),
      NULL, false },
    { "trusted", on_trusted, 0, NULL, false },
    { NULL, NULL, 0, NULL, false },
};

void
on_listeners(struct ctx *c, const struct key_spec *k, yaml_node_t *v, void *obj)
{
    struct config *cfg = obj;
    size_t n = want_seq(c, k->name, v);

    if (n == 0)
        return;
    cfg->listeners = calloc(n, sizeof(*cfg->listeners));
    c->backend_ref = calloc(n, sizeof(*c->backend_ref));
    if (cfg->listeners == NULL || c->backend_ref == NULL) {
        oom(c, v);
        return;
    }
    cfg->n_listeners = n;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *it = seq_item(c, v, i);
        if (it == NULL)
            continue;
        cfg->listeners[i].pos = node_pos(it);
        cfg->listeners[i].client_auth.verify_depth = 5;
        cfg->listeners[i].https_port = 443;
        if (it->type != YAML_MAPPING_NODE)
            cerr(c, it, "each entry of \"%s\" must be a mapping", k->name);
        else if (is_redirect(c, it))
            walk_map(c, it, redirect_keys, "redirect listener", &cfg->listeners[i]);
        else
            walk_map(c, it, listener_keys, "listener", &cfg->listeners[i]);
        if (cfg->listeners[i].client_auth.mode != CLIENT_AUTH_NONE &&
            cfg->listeners[i].client_auth.ca_file == NULL)
            cerr(c, it, "client_auth needs \"ca\" (the CA certificates that sign "
                 "client certificates) unless its mode is none");
    }
}

void
config_listener_free(struct config_listener *l)
{
    free(l->name);
    free(l->listen);
    for (size_t i = 0; i < l->n_certs; i++) {
        free(l->certs[i].cert_file);
        free(l->certs[i].key_file);
        free(l->certs[i].key_passphrase_file);
    }
    free(l->certs);
    free(l->backend_name);
    for (char **p = l->alpn; p != NULL && *p != NULL; p++)
        free(*p);
    free(l->alpn);
    free(l->client_auth.ca_file);
    free(l->client_auth.crl_file);
    for (size_t i = 0; i < l->n_routes; i++) {
        free(l->routes[i].sni);
        free(l->routes[i].backend_name);
    }
    free(l->routes);
    free(l->trusted);
}
