/* SPDX-License-Identifier: BSD-2-Clause */
#include "autoconf.h"
/* config.c - the YAML config file as plain, validated data.
 *
 * libyaml loads the file into a node tree that keeps every node's position;
 * a small table of known keys per mapping drives the walk, so unknown keys,
 * repeated keys, missing keys and wrong node types are checked in one place.
 * Every problem is collected as "FILE:LINE:COL: message" and the walk goes
 * on, so one run shows them all.  Cross-references (listener -> backend,
 * listen addresses used twice) are checked once the whole tree is read.
 * The backends section lives in config_backend.c; what the two share is
 * in config_int.h. */

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbedtls/version.h>
#include <yaml.h>

#include "config.h"
#include "config_int.h"
#include "files.h"
#include "tls_names.h"

#define CONFIG_WORKERS_MAX 1024
#define DIGITS "0123456789"



/* ---- errors ------------------------------------------------------------ */








/* ---- tree access -------------------------------------------------------- */













/* ---- mappings and keys -------------------------------------------------- */








/* ---- scalar settings ---------------------------------------------------- */


static const struct count_kind workers_kind = { 1, CONFIG_WORKERS_MAX, true };


static void
on_level(struct ctx *c, const struct key_spec *k, yaml_node_t *v, void *obj)
{
    struct config *cfg = obj;
    const char *s = cfg_want_text(c, k->name, v, "a string");

    if (s != NULL && log_level_from_name(s, &cfg->log_level) != 0)
        cfg_err(c, v, "invalid level \"%s\": expected error, warn, info or debug", s);
}




/* "1.2" or "1.3" as a TLS minor number (3, 4); 0 with an error said. */
static int
tls_version_minor(struct ctx *c, const struct key_spec *k, yaml_node_t *v)
{
    const char *s = cfg_want_text(c, k->name, v, "a string such as \"1.2\"");

    if (s == NULL)
        return 0;
    if (strcmp(s, "1.2") == 0)
        return 3;
    if (strcmp(s, "1.3") == 0 && tls_max_minor() >= 4)
        return 4;
    if (strcmp(s, "1") == 0 || strcmp(s, "1.0") == 0 || strcmp(s, "1.1") == 0)
        cfg_err(c, v, "invalid %s \"%s\": TLS 1.0 and 1.1 are insecure; the minimum is "
             "\"1.2\"", k->name, s);
    else if (strcmp(s, "1.3") == 0)
        cfg_err(c, v, "invalid %s \"%s\": TLS 1.3 needs tlsterm built against mbedTLS 3.6 "
             "(this build uses mbedTLS %s, which has TLS 1.2 only)", k->name, s,
             MBEDTLS_VERSION_STRING);
    else
        cfg_err(c, v, "invalid %s \"%s\": expected %s", k->name, s,
             tls_max_minor() >= 4 ? "\"1.2\" or \"1.3\"" : "\"1.2\"");
    return 0;
}

static void
on_tls_version(struct ctx *c, const struct key_spec *k, yaml_node_t *v, void *obj)
{
    int minor = tls_version_minor(c, k, v);

    if (minor != 0)
        memcpy((char *)obj + k->off, &minor, sizeof(minor));
}




_Static_assert(sizeof(enum config_client_auth) == sizeof(int) &&
               sizeof(enum log_target) == sizeof(int) &&
               sizeof(enum log_format) == sizeof(int) &&
               sizeof(enum config_balance) == sizeof(int) &&
               sizeof(enum config_health_type) == sizeof(int), "on_enum stores an int");

static const struct enum_kind log_target_kind = {
    (const char *const[]){ "stderr", "syslog", "file", NULL },
    "stderr, syslog or file", LOG_TARGET_STDERR
};

static const struct enum_kind log_format_kind = {
    (const char *const[]){ "text", "json", NULL }, "text or json", LOG_FORMAT_TEXT
};


/* ciphers and curves: names looked up in tls_names.c. */
struct id_kind {
    const char *noun;
    int (*lookup)(const char *name);
    const char *(*name)(int id);
    const char *(*valid)(void);
};

static const struct id_kind cipher_kind = {
    "cipher", tls_cipher_id, tls_cipher_name, tls_cipher_valid_names
};
static const struct id_kind curve_kind = {
    "curve", tls_curve_id, tls_curve_name, tls_curve_valid_names
};
static const struct id_kind suite13_kind = {
    "TLS 1.3 ciphersuite", tls_suite13_id, tls_suite13_name, tls_suite13_valid_names
};

/* An OpenSSL name of a real TLS 1.2 suite without AEAD ("...-SHA",
 * "...-SHA256", "...-SHA384" and no GCM, CCM or CHACHA20). */
static bool
cipher_is_cbc(const char *s)
{
    size_t n = strlen(s);

    if (strstr(s, "GCM") || strstr(s, "CCM") || strstr(s, "CHACHA20") ||
        !(strstr(s, "AES") || strstr(s, "CAMELLIA") || strstr(s, "ARIA") || strstr(s, "DES")))
        return false;
    return (n > 4 && strcmp(s + n - 4, "-SHA") == 0) ||
           (n > 7 && (strcmp(s + n - 7, "-SHA256") == 0 || strcmp(s + n - 7, "-SHA384") == 0));
}

static int
id_item(struct ctx *c, const char *key, const struct id_kind *kind,
        const yaml_node_t *it, const int *ids, size_t n)
{
    const char *s = cfg_want_item_text(c, key, it);
    int id;

    if (s == NULL)
        return 0;
    id = kind->lookup(s);
    if (id == 0 && kind == &cipher_kind && cipher_is_cbc(s)) {
        cfg_err(c, it, "cipher \"%s\" is a CBC suite, which tlsterm does not offer (only AEAD "
             "suites: AES-GCM and ChaCha20-Poly1305; valid: %s)", s, kind->valid());
        return 0;
    }
    if (id == 0) {
        cfg_err(c, it, "unknown %s \"%s\" (valid: %s)", kind->noun, s, kind->valid());
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (ids[i] == id) {
            cfg_err(c, it, "duplicate %s \"%s\" (%s is already listed)", kind->noun, s,
                 kind->name(id));
            return 0;
        }
    }
    return id;
}

static void
on_id_list(struct ctx *c, const struct key_spec *k, yaml_node_t *v, void *obj)
{
    size_t n = cfg_want_seq(c, k->name, v), count = 0, errors = c->n_errors;
    int *ids, *old;

    if (n == 0)
        return;
    ids = calloc(n + 1, sizeof(*ids));
    if (ids == NULL) {
        cfg_oom(c, v);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *it = cfg_seq_item(c, v, i);
        int id = it != NULL ? id_item(c, k->name, k->arg, it, ids, count) : 0;
        if (id != 0)
            ids[count++] = id;
    }
    if (c->n_errors != errors) {
        free(ids);
        return;
    }
    memcpy(&old, (char *)obj + k->off, sizeof(old));
    free(old);
    memcpy((char *)obj + k->off, &ids, sizeof(ids));
}

/* ---- addresses, listeners, backends ------------------------------------- */






/* Names are looked up now, so "tlsterm -t" reports an unknown user. */
static void
on_user(struct ctx *c, const struct key_spec *k, yaml_node_t *v, void *obj)
{
    struct config *cfg = obj;
    const char *s = cfg_want_text(c, k->name, v, "a user name");
    struct passwd *pw;

    if (s == NULL)
        return;
    pw = getpwnam(s);
    if (pw == NULL) {
        cfg_err(c, v, "unknown user \"%s\"", s);
        return;
    }
    cfg->run_as.user = strdup(s);
    cfg->run_as.uid = pw->pw_uid;
    if (cfg->run_as.group == NULL)
        cfg->run_as.gid = pw->pw_gid;
    if (cfg->run_as.user == NULL)
        cfg_oom(c, v);
}

static void
on_group(struct ctx *c, const struct key_spec *k, yaml_node_t *v, void *obj)
{
    struct config *cfg = obj;
    const char *s = cfg_want_text(c, k->name, v, "a group name");
    struct group *gr;

    if (s == NULL)
        return;
    gr = getgrnam(s);
    if (gr == NULL) {
        cfg_err(c, v, "unknown group \"%s\"", s);
        return;
    }
    cfg->run_as.group = strdup(s);
    cfg->run_as.gid = gr->gr_gid;
    if (cfg->run_as.group == NULL)
        cfg_oom(c, v);
}



static const struct key_spec log_keys[] = {
    { "level", on_level, 0, NULL, false },
    { "target", cfg_on_enum, offsetof(struct config, log_target), &log_target_kind, false },
    { "file", cfg_on_path, offsetof(struct config, log_file), NULL, false },
    { "access", cfg_on_bool, offsetof(struct config, log_access), NULL, false },
    { "format", cfg_on_enum, offsetof(struct config, log_format), &log_format_kind, false },
    { NULL, NULL, 0, NULL, false },
};

/* Tickets carry whole seconds: 1ms would have become 0 s, every ticket
 * expired at once. */
static void
on_ticket_lifetime(struct ctx *c, const struct key_spec *k, yaml_node_t *v, void *obj)
{
    uint64_t *ms = (uint64_t *)((char *)obj + k->off), before = *ms;

    cfg_on_timeout(c, k, v, obj);
    if (*ms != before && *ms < 1000) {
        cfg_err(c, v, "invalid lifetime \"%s\": must be at least 1s (tickets count whole "
             "seconds)", cfg_node_text(v));
        *ms = before;
    }
}

static const struct key_spec watch_keys[] = {
    { "enabled", cfg_on_bool, offsetof(struct config, watch.enabled), NULL, false },
    { "debounce", cfg_on_timeout, offsetof(struct config, watch.debounce_ms), NULL, false },
    { NULL, NULL, 0, NULL, false },
};

static const struct key_spec timeout_keys[] = {
    { "handshake", cfg_on_timeout, offsetof(struct config, timeouts.handshake_ms), NULL, false },
    { "idle", cfg_on_timeout, offsetof(struct config, timeouts.idle_ms), NULL, false },
    { "connect", cfg_on_timeout, offsetof(struct config, timeouts.connect_ms), NULL, false },
    { "drain", cfg_on_timeout, offsetof(struct config, timeouts.drain_ms), NULL, false },
    { "drain_notice", cfg_on_timeout, offsetof(struct config, timeouts.drain_notice_ms),
      "0 is off",
      false },
    { NULL, NULL, 0, NULL, false },
};


static const struct count_kind cache_size_kind = { 0, 10000000, false };

static const struct key_spec ticket_keys[] = {
    { "enabled", cfg_on_bool, offsetof(struct config, tls.tickets.enabled), NULL, false },
    { "key_file", cfg_on_path, offsetof(struct config, tls.tickets.key_file), NULL, false },
    { "rotate", cfg_on_timeout, offsetof(struct config, tls.tickets.rotate_ms), NULL, false },
    { "lifetime", on_ticket_lifetime, offsetof(struct config, tls.tickets.lifetime_ms), NULL,
      false },
    { NULL, NULL, 0, NULL, false },
};

static const struct key_spec session_cache_keys[] = {
    { "size", cfg_on_count, offsetof(struct config, tls.session_cache.size),
      &cache_size_kind, false },
    { "timeout", cfg_on_timeout, offsetof(struct config, tls.session_cache.timeout_ms),
      NULL, false },
    { NULL, NULL, 0, NULL, false },
};

static const struct key_spec tls_keys[] = {
    { "min_version", on_tls_version, offsetof(struct config, tls.min_version), NULL, false },
    { "max_version", on_tls_version, offsetof(struct config, tls.max_version), NULL, false },
    { "ciphers", on_id_list, offsetof(struct config, tls.ciphersuites), &cipher_kind, false },
    { "ciphersuites", on_id_list, offsetof(struct config, tls.suites13), &suite13_kind,
      false },
    { "curves", on_id_list, offsetof(struct config, tls.curves), &curve_kind, false },
    { "tickets", cfg_on_submap, 0, ticket_keys, false },
    { "session_cache", cfg_on_submap, 0, session_cache_keys, false },
    { NULL, NULL, 0, NULL, false },
};

static const struct key_spec top_keys[] = {
    { "workers", cfg_on_count, offsetof(struct config, workers), &workers_kind, false },
    { "user", on_user, 0, NULL, false },
    { "group", on_group, 0, NULL, false },
    { "log", cfg_on_submap, 0, log_keys, false },
    { "timeouts", cfg_on_submap, 0, timeout_keys, false },
    { "limits", cfg_on_submap, 0, config_limit_keys, false },
    { "admin", cfg_on_submap, 0, config_admin_keys, false },
    { "watch", cfg_on_submap, 0, watch_keys, false },
    { "tls", cfg_on_submap, 0, tls_keys, false },
    { "listeners", on_listeners, 0, NULL, true },
    { "backends", on_backends, 0, NULL, true },
    { NULL, NULL, 0, NULL, false },
};

/* ---- cross-checks ------------------------------------------------------- */

static const struct config_backend *
backend_find(const struct config *cfg, const char *name)
{
    for (size_t j = 0; j < cfg->n_backends; j++)
        if (strcmp(cfg->backends[j].name, name) == 0)
            return &cfg->backends[j];
    return NULL;
}

static void
route_resolve(struct ctx *c, struct config_route *r, const char *names)
{
    if (r->backend_name == NULL)
        return;
    r->backend = backend_find(c->cfg, r->backend_name);
    if (r->backend == NULL)
        cfg_err_at(c, r->pos, "unknown backend \"%s\" (defined backends: %s)",
                r->backend_name, names);
}

static void
check_backend_refs(struct ctx *c)
{
    struct config *cfg = c->cfg;
    char names[256] = "";
    bool full = false;

    if (cfg->n_backends == 0)
        return;         /* already reported; one message is enough */
    for (size_t i = 0; i < cfg->n_backends; i++)
        cfg_list_append(names, sizeof(names), &full, cfg->backends[i].name);
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        struct config_listener *l = &cfg->listeners[i];
        if (l->backend_name == NULL)
            continue;
        l->backend = backend_find(cfg, l->backend_name);
        if (l->backend == NULL)
            cfg_err_at(c, c->backend_ref[i], "unknown backend \"%s\" (defined backends: %s)",
                    l->backend_name, names);
        for (size_t r = 0; r < l->n_routes; r++)
            route_resolve(c, &l->routes[r], names);
    }
}

struct addr_ref {
    const struct config_addr *a;
    const struct config_listener *l;
    const struct addr_ref *first;   /* set when a is a repeat of first->a */
    size_t seq;
};

static int
addr_cmp(const struct config_addr *x, const struct config_addr *y)
{
    if (x->ss.ss_family != y->ss.ss_family)
        return x->ss.ss_family < y->ss.ss_family ? -1 : 1;
    if (x->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&x->ss;
        const struct sockaddr_in6 *b = (const struct sockaddr_in6 *)&y->ss;
        int d = memcmp(&a->sin6_addr, &b->sin6_addr, sizeof(a->sin6_addr));
        return d != 0 ? d : memcmp(&a->sin6_port, &b->sin6_port, sizeof(a->sin6_port));
    } else {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&x->ss;
        const struct sockaddr_in *b = (const struct sockaddr_in *)&y->ss;
        int d = memcmp(&a->sin_addr, &b->sin_addr, sizeof(a->sin_addr));
        return d != 0 ? d : memcmp(&a->sin_port, &b->sin_port, sizeof(a->sin_port));
    }
}

/* By address, then by order in the file. */
static int
addr_ref_cmp(const void *x, const void *y)
{
    const struct addr_ref *a = *(const struct addr_ref *const *)x;
    const struct addr_ref *b = *(const struct addr_ref *const *)y;
    int d = addr_cmp(a->a, b->a);

    if (d != 0)
        return d;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static size_t
addr_refs_fill(const struct config *cfg, struct addr_ref *refs)
{
    size_t n = 0;

    for (size_t i = 0; i < cfg->n_listeners; i++) {
        const struct config_listener *l = &cfg->listeners[i];
        for (size_t j = 0; j < l->n_listen; j++, n++) {
            refs[n].a = &l->listen[j];
            refs[n].l = l;
            refs[n].first = NULL;
            refs[n].seq = n;
        }
    }
    return n;
}

/* Points each repeated address at its first occurrence. */
static void
addr_refs_mark(struct addr_ref *refs, struct addr_ref **sorted, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sorted[i] = &refs[i];
    qsort(sorted, n, sizeof(*sorted), addr_ref_cmp);
    for (size_t i = 1, f = 0; i < n; i++) {
        if (addr_cmp(sorted[i]->a, sorted[f]->a) == 0)
            sorted[i]->first = sorted[f];
        else
            f = i;
    }
}

/* Each listen address may appear once across all listeners.  Sorting keeps
 * this O(n log n); the messages still come out in file order. */
static void
check_listen_dups(struct ctx *c)
{
    size_t total = 0, n;
    struct addr_ref *refs, **sorted;

    for (size_t i = 0; i < c->cfg->n_listeners; i++)
        total += c->cfg->listeners[i].n_listen;
    if (total < 2)
        return;
    refs = calloc(total, sizeof(*refs));
    sorted = calloc(total, sizeof(*sorted));
    if (refs == NULL || sorted == NULL) {
        cfg_err_at(c, (struct config_pos){ 0, 0 }, "out of memory");
    } else {
        n = addr_refs_fill(c->cfg, refs);
        addr_refs_mark(refs, sorted, n);
        for (size_t i = 0; i < n; i++) {
            const struct addr_ref *f = refs[i].first;
            if (f != NULL)
                cfg_err_at(c, refs[i].a->pos, "duplicate listen address \"%s\" (already used "
                        "by listener \"%s\" at line %d, column %d)", refs[i].a->text,
                        f->l->name != NULL ? f->l->name : "?", f->a->pos.line, f->a->pos.col);
        }
    }
    free(refs);
    free(sorted);
}

/* ---- loading ------------------------------------------------------------ */

/* The whole file, through files_read(): after the privilege drop a
 * reload gets it from the privileged reader. */
static int
config_read(struct ctx *c)
{
    struct config_pos none = { 0, 0 };
    int rc = files_read(c->path, &c->text);

    if (rc != 0)
        cfg_err_at(c, none, "cannot open: %s", files_strerror(-rc));
    return rc;
}

/* The source line of a syntax error, to tell the usual mistakes apart. */
static void
yaml_line(const struct ctx *c, size_t line, char *buf, size_t size)
{
    const char *p = (const char *)c->text.data, *end;
    size_t n;

    buf[0] = '\0';
    for (size_t i = 0; p != NULL && i < line; i++) {
        p = strchr(p, '\n');
        p = p != NULL ? p + 1 : NULL;
    }
    if (p == NULL)
        return;
    end = strchr(p, '\n');
    n = end != NULL ? (size_t)(end - p) : strlen(p);
    n = n < size - 1 ? n : size - 1;
    memcpy(buf, p, n);
    buf[n] = '\0';
}

/* What libyaml's wording means for the three mistakes operators make. */
static const char *
yaml_hint(const struct ctx *c, const yaml_parser_t *p)
{
    char line[512];
    size_t col = p->problem_mark.column;

    yaml_line(c, p->problem_mark.line, line, sizeof(line));
    if (col < strlen(line) && line[col] == '\t')
        return "; tabs cannot indent YAML: use spaces";
    if (p->context != NULL && strstr(p->context, "alias") != NULL)
        return "; a value that starts with \"*\" (\"*:443\", \"*.example.com\") must be in quotes";
    if (strstr(line, "[:") != NULL || strstr(line, "]:") != NULL)
        return "; an IPv6 address with a port (\"[::1]:443\") must be in quotes";
    return "";
}

static void
yaml_error(struct ctx *c, const yaml_parser_t *p)
{
    struct config_pos pos = { (int)p->problem_mark.line + 1,
                              (int)p->problem_mark.column + 1 };
    const char *problem = p->problem != NULL ? p->problem : "unknown error";
    const char *hint = p->error == YAML_READER_ERROR ? "" : yaml_hint(c, p);

    if (p->error == YAML_MEMORY_ERROR)
        cfg_err_at(c, (struct config_pos){ 0, 0 }, "out of memory");
    else if (p->error == YAML_READER_ERROR)
        cfg_err_at(c, (struct config_pos){ 0, 0 }, "YAML syntax error: %s (at byte %zu)",
                problem, p->problem_offset);
    else if (p->context != NULL && (p->context_mark.line != p->problem_mark.line ||
                                    p->context_mark.column != p->problem_mark.column))
        cfg_err_at(c, pos, "YAML syntax error: %s (%s at line %d, column %d)%s", problem,
                p->context, (int)p->context_mark.line + 1, (int)p->context_mark.column + 1,
                hint);
    else
        cfg_err_at(c, pos, "YAML syntax error: %s%s", problem, hint);
}

/* A second "---" document would be silently ignored: refuse it. */
static int
doc_check_single(struct ctx *c, yaml_parser_t *parser)
{
    yaml_document_t extra;
    yaml_node_t *root;

    if (!yaml_parser_load(parser, &extra)) {
        yaml_error(c, parser);
        return -1;
    }
    root = yaml_document_get_root_node(&extra);
    if (root != NULL)
        cfg_err(c, root, "only one YAML document is allowed in a config file");
    yaml_document_delete(&extra);
    return 0;
}

/* 0 with doc loaded (the caller deletes it), or -1 after an error. */
static int
doc_load(struct ctx *c, yaml_document_t *doc)
{
    yaml_parser_t parser;
    int ok;

    if (config_read(c) != 0)
        return -1;
    if (!yaml_parser_initialize(&parser)) {
        cfg_err_at(c, (struct config_pos){ 0, 0 }, "out of memory");
        return -1;
    }
    yaml_parser_set_input_string(&parser, c->text.data, c->text.len);
    ok = yaml_parser_load(&parser, doc);
    if (!ok)
        yaml_error(c, &parser);     /* libyaml already freed doc */
    else if (doc_check_single(c, &parser) != 0) {
        yaml_document_delete(doc);
        ok = 0;
    }
    yaml_parser_delete(&parser);
    return ok ? 0 : -1;
}

/* Absolute directory of the config file, without a trailing '/' ("" for
 * the root directory). */
static char *
config_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t len = slash != NULL ? (size_t)(slash - path) : 0;
    char cwd[4096], *dir;

    if (path[0] == '/')
        return strndup(path, len);
    if (getcwd(cwd, sizeof(cwd)) == NULL)
        return NULL;
    if (strcmp(cwd, "/") == 0)
        cwd[0] = '\0';
    if (len == 0 || (len == 1 && path[0] == '.'))
        return strdup(cwd);
    if (asprintf(&dir, "%s/%.*s", cwd, (int)len, path) < 0)
        return NULL;
    return dir;
}

static int *
ids_dup(const int *ids)
{
    size_t n = 0;
    int *copy;

    while (ids[n] != 0)
        n++;
    copy = calloc(n + 1, sizeof(*copy));
    if (copy != NULL)
        memcpy(copy, ids, n * sizeof(*copy));
    return copy;
}

/* A PROXY header is believed only from the load balancers. */
static void
check_proxy_in(struct ctx *c)
{
    for (size_t i = 0; i < c->cfg->n_listeners; i++) {
        const struct config_listener *l = &c->cfg->listeners[i];
        if (l->proxy_protocol_in && l->n_trusted == 0)
            cfg_err_at(c, l->pos, "listener %s: proxy_protocol_in needs \"trusted: [CIDR, ...]\", "
                    "the addresses of the load balancers allowed to send the header",
                    l->name != NULL ? l->name : "?");
    }
}

/* log.file goes with log.target: file, and only with it. */
static void
check_log_target(struct ctx *c, yaml_node_t *root)
{
    struct config *cfg = c->cfg;

    if (cfg->log_target == LOG_TARGET_FILE && cfg->log_file == NULL)
        cfg_err(c, root, "log: target \"file\" needs \"file: PATH\"");
    else if (cfg->log_target != LOG_TARGET_FILE && cfg->log_file != NULL)
        cfg_err(c, root, "log: \"file\" is only used with \"target: file\"");
}

static void
check_run_as(struct ctx *c, yaml_node_t *root)
{
    if (c->cfg->run_as.group != NULL && c->cfg->run_as.user == NULL)
        cfg_err(c, root, "\"group\" needs \"user\": tlsterm changes both or neither");
}

static void
check_tls_versions(struct ctx *c, yaml_node_t *root)
{
    if (c->cfg->tls.min_version > c->cfg->tls.max_version)
        cfg_err(c, root, "tls: min_version \"1.%d\" is above max_version \"1.%d\"",
             c->cfg->tls.min_version - 1, c->cfg->tls.max_version - 1);
}

static struct config *
config_new(const char *path)
{
    struct config *cfg = calloc(1, sizeof(*cfg));

    if (cfg == NULL)
        return NULL;
    cfg->path = strdup(path);
    cfg->workers = 0;
    cfg->log_level = LOG_LVL_INFO;
    cfg->timeouts.handshake_ms = 10 * 1000;
    cfg->timeouts.idle_ms = 300 * 1000;
    cfg->timeouts.connect_ms = 5 * 1000;
    cfg->timeouts.drain_ms = 30 * 1000;
    cfg->watch.enabled = true;
    cfg->watch.debounce_ms = 1000;
    cfg->log_access = true;
    cfg->limits.max_connections = 100000;
    cfg->limits.buffer_size = 16 * 1024;
    cfg->limits.max_handshakes = 2048;
    cfg->tls.min_version = 3;
    cfg->tls.max_version = tls_max_minor();
    cfg->tls.ciphersuites = ids_dup(tls_cipher_defaults());
    cfg->tls.suites13 = ids_dup(tls_suite13_defaults());
    cfg->tls.curves = ids_dup(tls_curve_defaults());
    cfg->tls.tickets.enabled = true;
    cfg->tls.tickets.rotate_ms = 12ULL * 3600 * 1000;
    cfg->tls.session_cache.size = 20000;
    cfg->tls.session_cache.timeout_ms = 10ULL * 60 * 1000;
    if (cfg->path == NULL || cfg->tls.ciphersuites == NULL || cfg->tls.curves == NULL ||
        cfg->tls.suites13 == NULL) {
        config_free(cfg);
        return NULL;
    }
    return cfg;
}

static void
config_walk(struct ctx *c, yaml_node_t *root)
{
    if (root == NULL) {
        cfg_err_at(c, (struct config_pos){ 1, 1 }, "config is empty (expected a mapping "
                "with at least \"listeners\" and \"backends\")");
        return;
    }
    if (root->type != YAML_MAPPING_NODE) {
        cfg_err(c, root, "top level must be a mapping");
        return;
    }
    c->cfg = config_new(c->path);
    c->dir = config_dir(c->path);
    if (c->cfg == NULL || c->dir == NULL) {
        cfg_err(c, root, "%s", c->cfg == NULL ? "out of memory"
                                           : "cannot find the current directory");
        return;
    }
    cfg_walk_map(c, root, top_keys, "config", c->cfg);
    if (c->cfg->tls.tickets.lifetime_ms == 0)
        c->cfg->tls.tickets.lifetime_ms = c->cfg->tls.tickets.rotate_ms;
    check_backend_refs(c);
    check_listen_dups(c);
    check_proxy_in(c);
    check_log_target(c, root);
    check_run_as(c, root);
    check_tls_versions(c, root);
    config_admin_check(c);
}

struct config *
config_load(const char *path, struct config_errors *errs)
{
    struct ctx c = { .path = path, .errs = errs };
    yaml_document_t doc;

    if (doc_load(&c, &doc) != 0) {
        files_free(&c.text);
        return NULL;
    }
    files_free(&c.text);
    c.doc = &doc;
    config_merge_keys(&c);
    if (c.n_errors == 0)
        config_walk(&c, yaml_document_get_root_node(&doc));
    yaml_document_delete(&doc);
    free(c.dir);
    free(c.backend_ref);
    if (c.n_errors > 0) {
        config_free(c.cfg);
        return NULL;
    }
    return c.cfg;
}

void
config_free(struct config *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < cfg->n_listeners; i++)
        config_listener_free(&cfg->listeners[i]);
    free(cfg->listeners);
    for (size_t i = 0; i < cfg->n_backends; i++)
        config_backend_free(&cfg->backends[i]);
    free(cfg->backends);
    free(cfg->tls.ciphersuites);
    free(cfg->tls.suites13);
    free(cfg->tls.curves);
    free(cfg->tls.tickets.key_file);
    free(cfg->log_file);
    free(cfg->run_as.user);
    free(cfg->run_as.group);
    free(cfg->limits.per_address.exempt);
    free(cfg->path);
    free(cfg);
}
