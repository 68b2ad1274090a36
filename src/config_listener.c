/* SPDX-License-Identifier: BSD-2-Clause */
/* config_listener.c - the listeners section of the config: addresses,
 * certificates, routes, client_auth, PROXY protocol in and redirect
 * listeners.  Split from config.c, which keeps the walk and generic
 * value handlers (config_int.h). */
#include "autoconf.h"

#include <ctype.h>
#include <errno.h>
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
    { "cert", cfg_on_path, offsetof(struct config_cert, cert_file), NULL, true },
    { "key", cfg_on_path, offsetof(struct config_cert, key_file), NULL, true },
    { "key_passphrase_file", cfg_on_path, offsetof(struct config_cert, key_passphrase_file),
      NULL, false },
    { "allow_expired", cfg_on_bool, offsetof(struct config_cert, allow_expired), NULL, false },
    { NULL, NULL, 0, NULL, false },
};

/* ---- certificates: {dir: PATH} ------------------------------------------
 * Every key+certificate pair in a directory, as hitch's pem-dir and
 * HAProxy's "crt DIR": a file with both certificate(s) and a key, or
 * NAME.pem / NAME.crt / NAME.cer with NAME.key beside it.  Expanded here
 * into ordinary entries, so tls.c loads and checks them as it does files;
 * listed and read through files.c, so the privileged reader serves them. */

struct cert_list {
    struct config_cert *v;
    size_t n, cap;
};

static const char *const cert_exts[] = { ".pem", ".crt", ".cer", NULL };

static const struct key_spec dir_keys[] = {
    { "dir", cfg_on_path, offsetof(struct config_cert, cert_file), NULL, true },
    { "allow_expired", cfg_on_bool, offsetof(struct config_cert, allow_expired), NULL, false },
    { NULL, NULL, 0, NULL, false },
};

static struct config_cert *
cert_list_add(struct cert_list *l)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        struct config_cert *v = realloc(l->v, cap * sizeof(*v));

        if (v == NULL)
            return NULL;
        l->v = v;
        l->cap = cap;
    }
    memset(&l->v[l->n], 0, sizeof(l->v[l->n]));
    return &l->v[l->n++];
}

static int
name_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The names of a files_list() buffer, sorted; *n of them. */
static char **
dir_names(const struct file_buf *b, size_t *n)
{
    char **v;
    size_t i = 0;

    *n = 0;
    for (size_t off = 0; off < b->len; off += strlen((const char *)b->data + off) + 1)
        (*n)++;
    v = calloc(*n + 1, sizeof(*v));
    if (v == NULL)
        return NULL;
    for (size_t off = 0; off < b->len; off += strlen(v[i++]) + 1)
        v[i] = (char *)b->data + off;
    qsort(v, *n, sizeof(*v), name_cmp);
    return v;
}

static bool
dir_has(char **names, size_t n, const char *name)
{
    return bsearch(&name, names, n, sizeof(*names), name_cmp) != NULL;
}

/* The length of name without a certificate extension, or 0. */
static size_t
cert_stem(const char *name)
{
    size_t len = strlen(name);

    for (const char *const *e = cert_exts; *e != NULL; e++)
        if (len > 4 && strcmp(name + len - 4, *e) == 0)
            return len - 4;
    return 0;
}

/* NAME.key whose NAME.pem (.crt, .cer) is there: read with its certificate. */
static bool
is_partner_key(char **names, size_t n, const char *name)
{
    size_t len = strlen(name);
    char other[512];

    if (len < 5 || len > 400 || strcmp(name + len - 4, ".key") != 0)
        return false;
    for (const char *const *e = cert_exts; *e != NULL; e++) {
        snprintf(other, sizeof(other), "%.*s%s", (int)(len - 4), name, *e);
        if (dir_has(names, n, other))
            return true;
    }
    return false;
}

struct dir_walk {
    struct ctx *c;
    const yaml_node_t *node;    /* the "dir:" value, for messages */
    const struct config_cert *tmpl;
    const char *dir;
    char **names;
    size_t n;
    struct cert_list *out;
};

static int
dir_add(struct dir_walk *w, const char *cert, const char *key)
{
    struct config_cert *cc = cert_list_add(w->out);

    if (cc == NULL)
        return -1;
    cc->pos = cfg_node_pos(w->node);
    cc->allow_expired = w->tmpl->allow_expired;
    cc->cert_file = strdup(cert);
    cc->key_file = strdup(key);
    return cc->cert_file != NULL && cc->key_file != NULL ? 0 : -1;
}

/* A certificate file without a key in it: its NAME.key (1), or an error
 * reported (0); -1 when out of memory. */
static int
dir_cert_only(struct dir_walk *w, const char *name, const char *path)
{
    size_t stem = cert_stem(name);
    char key[512], *key_path = NULL;
    int rc;

    snprintf(key, sizeof(key), "%.*s.key", (int)(stem ? stem : strlen(name)), name);
    if (stem == 0 || !dir_has(w->names, w->n, key)) {
        cfg_err(w->c, w->node, "certificate %s has no private key: put the key in the same "
             "file or beside it as %s/%s", path, w->dir, key);
        return 0;
    }
    if (asprintf(&key_path, "%s/%s", w->dir, key) < 0)
        return -1;
    rc = dir_add(w, path, key_path);
    free(key_path);
    return rc == 0 ? 1 : -1;
}

/* One directory entry: 1 when it made a pair, 0 when skipped or
 * reported, -1 when out of memory. */
static int
dir_entry(struct dir_walk *w, const char *name, const char *path)
{
    struct file_buf b;
    bool crt, key;
    int rc;

    if (name[0] == '.' || is_partner_key(w->names, w->n, name)) {
        log_debug("certificates: %s: skipped (%s)", path,
                  name[0] == '.' ? "hidden" : "the key of a certificate beside it");
        return 0;
    }
    rc = files_read(path, &b);
    if (rc == -EISDIR) {
        log_debug("certificates: %s: skipped (a directory)", path);
        return 0;
    }
    if (rc != 0) {
        cfg_err(w->c, w->node, "cannot read %s: %s", path, files_strerror(-rc));
        return 0;
    }
    crt = strstr((const char *)b.data, "-----BEGIN CERTIFICATE-----") != NULL;
    key = strstr((const char *)b.data, "PRIVATE KEY-----") != NULL;
    files_free(&b);
    if (crt && key)
        return dir_add(w, path, path) == 0 ? 1 : -1;
    if (crt)
        return dir_cert_only(w, name, path);
    log_debug("certificates: %s: skipped (%s)", path,
              key ? "a private key without a certificate" : "no PEM certificate in it");
    return 0;
}

static void
dir_walk(struct dir_walk *w)
{
    size_t errors = w->c->n_errors, before = w->out->n;

    for (size_t i = 0; i < w->n; i++) {
        char *path = NULL;
        int rc = asprintf(&path, "%s/%s", w->dir, w->names[i]) < 0 ? -1
                 : dir_entry(w, w->names[i], path);

        free(path);
        if (rc < 0) {
            cfg_oom(w->c, w->node);
            return;
        }
    }
    if (w->out->n == before && w->c->n_errors == errors)
        cfg_err(w->c, w->node, "certificate directory %s holds no certificate and key "
             "(a file with both, or NAME.pem with NAME.key)", w->dir);
}

static void
cert_dir_expand(struct ctx *c, yaml_node_t *map, struct cert_list *out)
{
    struct config_cert tmpl = { 0 };
    struct dir_walk w = { .c = c, .node = map, .tmpl = &tmpl, .out = out };
    struct file_buf list = { 0 };
    size_t len;
    int rc;

    cfg_walk_map(c, map, dir_keys, "certificate directory", &tmpl);
    if (tmpl.cert_file == NULL)
        return;
    len = strlen(tmpl.cert_file);
    while (len > 1 && tmpl.cert_file[len - 1] == '/')
        tmpl.cert_file[--len] = '\0';       /* "dir/" names the same directory */
    w.dir = tmpl.cert_file;
    rc = files_list(w.dir, &list);
    if (rc != 0)
        cfg_err(c, map, "cannot read certificate directory %s: %s", w.dir,
             rc == -ENOTDIR ? "not a directory" : files_strerror(-rc));
    else if ((w.names = dir_names(&list, &w.n)) == NULL)
        cfg_oom(c, map);
    else
        dir_walk(&w);
    free(w.names);
    files_free(&list);
    free(tmpl.cert_file);
}

/* A mapping with "dir" is a directory of pairs; else one cert/key entry. */
static bool
is_cert_dir(struct ctx *c, yaml_node_t *map)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
         p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = cfg_node(c, p->key);
        if (kn != NULL && kn->type == YAML_SCALAR_NODE && strcmp(cfg_node_text(kn), "dir") == 0)
            return true;
    }
    return false;
}

static void
cert_item(struct ctx *c, const struct key_spec *k, yaml_node_t *it, struct cert_list *out)
{
    struct config_cert *cc;

    if (it->type != YAML_MAPPING_NODE) {
        cfg_err(c, it, "each entry of \"%s\" must be a mapping with \"cert\" and \"key\", "
             "or with \"dir\"", k->name);
        return;
    }
    if (is_cert_dir(c, it)) {
        cert_dir_expand(c, it, out);
        return;
    }
    if ((cc = cert_list_add(out)) == NULL) {
        cfg_oom(c, it);
        return;
    }
    cc->pos = cfg_node_pos(it);
    cfg_walk_map(c, it, cert_keys, "certificate entry", cc);
}

/* A sequence of entries (each {cert, key, ...} or {dir}), or one {dir}. */
static void
on_certificates(struct ctx *c, const struct key_spec *k, yaml_node_t *v, void *obj)
{
    struct config_listener *l = obj;
    struct cert_list out = { 0 };
    size_t n = 1;

    if (v->type == YAML_MAPPING_NODE && is_cert_dir(c, v))
        cert_dir_expand(c, v, &out);
    else if ((n = cfg_want_seq(c, k->name, v)) > 0)
        for (size_t i = 0; i < n; i++) {
            yaml_node_t *it = cfg_seq_item(c, v, i);
            if (it != NULL)
                cert_item(c, k, it, &out);
        }
    l->certs = out.v;
    l->n_certs = out.n;
}

static void
on_listener_name(struct ctx *c, const struct key_spec *k, yaml_node_t *v, void *obj)
{
    struct config_listener *l = obj;
    const char *s = cfg_want_text(c, k->name, v, "a string");

    if (s == NULL)
        return;
    if (!cfg_name_ok(s)) {
        cfg_err(c, v, "invalid listener name \"%s\": use only letters, digits, "
             "\"_\", \".\" and \"-\"", s);
        return;
    }
    for (const struct config_listener *prev = c->cfg->listeners; prev < l; prev++) {
        if (prev->name != NULL && strcmp(prev->name, s) == 0) {
            cfg_err(c, v, "duplicate listener name \"%s\" (first used at line %d)", s,
                 prev->pos.line);
            return;
        }
    }
    l->name = cfg_strdup(c, v, s);
}

static void
on_backend_ref(struct ctx *c, const struct key_spec *k, yaml_node_t *v, void *obj)
{
    struct config_listener *l = obj;
    const char *s = cfg_want_text(c, k->name, v, "a backend name");

    if (s == NULL)
        return;
    l->backend_name = cfg_strdup(c, v, s);
    c->backend_ref[l - c->cfg->listeners] = cfg_node_pos(v);
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
        cfg_err(c, v, "invalid sni \"%s\": expected a host name or \"*.\" and a domain", s);
        return NULL;
    }
    out = cfg_strdup(c, v, s);
    for (char *p = out; p != NULL && *p != '\0'; p++)
        *p = (char)tolower((unsigned char)*p);
    return out;
}

static void
on_route_sni(struct ctx *c, const struct key_spec *k, yaml_node_t *v, void *obj)
{
    struct config_route *r = obj;
    const char *s = cfg_want_text(c, k->name, v, "a host name");

    if (s != NULL)
        r->sni = sni_pattern(c, v, s);
}

static void
on_route_backend(struct ctx *c, const struct key_spec *k, yaml_node_t *v, void *obj)
{
    struct config_route *r = obj;
    const char *s = cfg_want_text(c, k->name, v, "a backend name");

    if (s == NULL)
        return;
    r->backend_name = cfg_strdup(c, v, s);
    r->pos = cfg_node_pos(v);
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
    size_t n = cfg_want_seq(c, k->name, v);

    if (n == 0)
        return;
    l->routes = calloc(n, sizeof(*l->routes));
    if (l->routes == NULL) {
        cfg_oom(c, v);
        return;
    }
    l->n_routes = n;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *it = cfg_seq_item(c, v, i);
        if (it == NULL)
            continue;
        l->routes[i].pos = cfg_node_pos(it);
        if (it->type != YAML_MAPPING_NODE)
            cfg_err(c, it, "each entry of \"%s\" must be a mapping with \"sni\" and \"backend\"",
                 k->name);
        else
            cfg_walk_map(c, it, route_keys, "route", &l->routes[i]);
    }
}

static const struct count_kind depth_kind = { 1, 20, false };

static const struct key_spec client_auth_keys[] = {
    { "mode", cfg_on_enum, offsetof(struct config_listener, client_auth.mode), &auth_mode_kind,
      false },
    { "ca", cfg_on_path, offsetof(struct config_listener, client_auth.ca_file), NULL, false },
    { "crl", cfg_on_path, offsetof(struct config_listener, client_auth.crl_file), NULL, false },
    { "verify_depth", cfg_on_count, offsetof(struct config_listener, client_auth.verify_depth),
      &depth_kind, false },
    { NULL, NULL, 0, NULL, false },
};

static void
on_trusted(struct ctx *c, const struct key_spec *k, yaml_node_t *v, void *obj)
{
    struct config_listener *l = obj;

    cfg_cidr_list(c, k, v, &l->trusted, &l->n_trusted, "trusted");
}

static const struct count_kind port_kind = { 1, 65535, false };

/* A port-80 companion: plain HTTP, every request answered with a 308 to
 * https.  It has no certificates and no backend, so it has its own keys. */
static const struct key_spec redirect_keys[] = {
    { "name", on_listener_name, 0, NULL, true },
    { "listen", cfg_on_addrs, 0, &listen_kind, true },
    { "redirect_to_https", cfg_on_bool, offsetof(struct config_listener, redirect_to_https),
      NULL, true },
    { "https_port", cfg_on_count, offsetof(struct config_listener, https_port),
      &port_kind, false },
    { "proxy_protocol_in", cfg_on_bool, offsetof(struct config_listener, proxy_protocol_in),
      NULL, false },
    { "trusted", on_trusted, 0, NULL, false },
    { NULL, NULL, 0, NULL, false },
};

/* "redirect_to_https: true" in the mapping, before walking it, picks the
 * key table (and so which keys are required).  It reads the key nodes
 * itself: cfg_map_key() reports problems, and the walk reports them once. */
static bool
is_redirect(struct ctx *c, yaml_node_t *map)
{
    static const char *const yes[] = { "true", "yes", "on", NULL };

    for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
         p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = cfg_node(c, p->key), *vn = cfg_node(c, p->value);
        if (kn != NULL && kn->type == YAML_SCALAR_NODE && vn != NULL &&
            vn->type == YAML_SCALAR_NODE &&
            strcmp(cfg_node_text(kn), "redirect_to_https") == 0)
            return cfg_str_in(cfg_node_text(vn), yes);
    }
    return false;
}

static const struct key_spec listener_keys[] = {
    { "name", on_listener_name, 0, NULL, true },
    { "listen", cfg_on_addrs, 0, &listen_kind, true },
    { "certificates", on_certificates, 0, NULL, true },
    { "backend", on_backend_ref, 0, NULL, true },
    { "alpn", cfg_on_alpn, 0, NULL, false },
    { "sni_strict", cfg_on_bool, offsetof(struct config_listener, sni_strict), NULL, false },
    { "client_auth", cfg_on_submap, 0, client_auth_keys, false },
    { "routes", on_routes, 0, NULL, false },
    { "redirect_to_https", cfg_on_bool, offsetof(struct config_listener, redirect_to_https),
      NULL, false },
    { "proxy_protocol_in", cfg_on_bool, offsetof(struct config_listener, proxy_protocol_in),
      NULL, false },
    { "trusted", on_trusted, 0, NULL, false },
    { NULL, NULL, 0, NULL, false },
};

void
on_listeners(struct ctx *c, const struct key_spec *k, yaml_node_t *v, void *obj)
{
    struct config *cfg = obj;
    size_t n = cfg_want_seq(c, k->name, v);

    if (n == 0)
        return;
    cfg->listeners = calloc(n, sizeof(*cfg->listeners));
    c->backend_ref = calloc(n, sizeof(*c->backend_ref));
    if (cfg->listeners == NULL || c->backend_ref == NULL) {
        cfg_oom(c, v);
        return;
    }
    cfg->n_listeners = n;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *it = cfg_seq_item(c, v, i);
        if (it == NULL)
            continue;
        cfg->listeners[i].pos = cfg_node_pos(it);
        cfg->listeners[i].client_auth.verify_depth = 5;
        cfg->listeners[i].https_port = 443;
        if (it->type != YAML_MAPPING_NODE)
            cfg_err(c, it, "each entry of \"%s\" must be a mapping", k->name);
        else if (is_redirect(c, it))
            cfg_walk_map(c, it, redirect_keys, "redirect listener", &cfg->listeners[i]);
        else
            cfg_walk_map(c, it, listener_keys, "listener", &cfg->listeners[i]);
        if (cfg->listeners[i].client_auth.mode != CLIENT_AUTH_NONE &&
            cfg->listeners[i].client_auth.ca_file == NULL)
            cfg_err(c, it, "client_auth needs \"ca\" (the CA certificates that sign "
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
