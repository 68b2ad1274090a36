/* SPDX-License-Identifier: BSD-2-Clause */
#include "autoconf.h"
/* config_core.c - what every section of the config parser stands on: the
 * error collector ("FILE:LINE:COL: message"), the node accessors, the
 * table-driven walk of a mapping (unknown, repeated, missing keys and
 * wrong node types checked in one place, with "did you mean" hints), and
 * the generic value handlers (counts, durations, sizes, booleans, words
 * from a list, addresses, paths).  Everything here is prefixed cfg_ and
 * declared in config_int.h; the sections (config.c's top level, the
 * listener, backend, limits and admin sections) call into it, never the
 * other way round. */

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

#include "config.h"
#include "config_int.h"

#define CONFIG_EDIT_MAX 64
#define DIGITS "0123456789"

__attribute__((format(printf, 4, 0)))
static void
errors_vadd(struct config_errors *errs, const char *file, struct config_pos pos,
            const char *fmt, va_list ap)
{
    char *msg, *line;
    char **msgs;

    if (vasprintf(&msg, fmt, ap) < 0)
        return;
    /* Problems with no place in the file (it cannot be opened, a file it
     * names is bad) are "FILE: message", not a made-up "FILE:0:0:". */
    if ((pos.line > 0 ? asprintf(&line, "%s:%d:%d: %s", file, pos.line, pos.col, msg)
                      : asprintf(&line, "%s: %s", file, msg)) < 0)
        line = NULL;
    free(msg);
    if (line == NULL)
        return;
    msgs = realloc(errs->msgs, (errs->n + 1) * sizeof(*msgs));
    if (msgs == NULL) {
        free(line);
        return;
    }
    msgs[errs->n++] = line;
    errs->msgs = msgs;
}

void
config_errors_add(struct config_errors *errs, const char *file,
                  struct config_pos pos, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    errors_vadd(errs, file, pos, fmt, ap);
    va_end(ap);
}

void
config_errors_free(struct config_errors *errs)
{
    for (size_t i = 0; i < errs->n; i++)
        free(errs->msgs[i]);
    free(errs->msgs);
    errs->msgs = NULL;
    errs->n = 0;
}

struct config_pos
cfg_node_pos(const yaml_node_t *n)
{
    struct config_pos pos = { (int)n->start_mark.line + 1,
                              (int)n->start_mark.column + 1 };
    return pos;
}

/* Counts even when the message cannot be stored, so a load never
 * succeeds after a problem. */
__attribute__((format(printf, 3, 4)))
void
cfg_err_at(struct ctx *c, struct config_pos pos, const char *fmt, ...)
{
    va_list ap;

    c->n_errors++;
    va_start(ap, fmt);
    errors_vadd(c->errs, c->path, pos, fmt, ap);
    va_end(ap);
}

__attribute__((format(printf, 3, 4)))
void
cfg_err(struct ctx *c, const yaml_node_t *n, const char *fmt, ...)
{
    va_list ap;

    c->n_errors++;
    va_start(ap, fmt);
    errors_vadd(c->errs, c->path, cfg_node_pos(n), fmt, ap);
    va_end(ap);
}

void
cfg_oom(struct ctx *c, const yaml_node_t *n)
{
    cfg_err(c, n, "out of memory");
}

yaml_node_t *
cfg_node(struct ctx *c, int id)
{
    yaml_node_t *n = yaml_document_get_node(c->doc, id);

    if (n == NULL || c->visits >= CONFIG_MAX_NODE_VISITS)
        return NULL;
    if (++c->visits == CONFIG_MAX_NODE_VISITS) {
        cfg_err(c, n, "config too large: more than %d YAML nodes once aliases are expanded",
             CONFIG_MAX_NODE_VISITS);
        return NULL;
    }
    return n;
}

const char *
cfg_node_text(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

static bool
node_is_null(const yaml_node_t *n)
{
    static const char *const nulls[] = { "", "~", "null", "Null", "NULL" };

    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++) {
        if (strcmp(cfg_node_text(n), nulls[i]) == 0)
            return true;
    }
    return false;
}

static bool
node_has_nul(const yaml_node_t *n)
{
    return strlen(cfg_node_text(n)) != n->data.scalar.length;
}

/* The text of the value of key, or NULL after saying why there is none. */
const char *
cfg_want_text(struct ctx *c, const char *key, const yaml_node_t *v, const char *noun)
{
    if (v->type != YAML_SCALAR_NODE) {
        cfg_err(c, v, "\"%s\" must be %s", key, noun);
        return NULL;
    }
    if (node_is_null(v)) {
        cfg_err(c, v, "\"%s\" needs a value", key);
        return NULL;
    }
    if (node_has_nul(v)) {
        cfg_err(c, v, "\"%s\" must not contain NUL characters", key);
        return NULL;
    }
    return cfg_node_text(v);
}

/* The same for one entry of the sequence under key. */
const char *
cfg_want_item_text(struct ctx *c, const char *key, const yaml_node_t *v)
{
    if (v->type != YAML_SCALAR_NODE || node_has_nul(v)) {
        cfg_err(c, v, "each entry of \"%s\" must be a string", key);
        return NULL;
    }
    if (node_is_null(v)) {
        cfg_err(c, v, "empty entry in \"%s\"", key);
        return NULL;
    }
    return cfg_node_text(v);
}

/* Number of entries of a non-empty sequence, or 0 after an error. */
size_t
cfg_want_seq(struct ctx *c, const char *key, const yaml_node_t *v)
{
    size_t n;

    if (v->type == YAML_SCALAR_NODE && strpbrk(cfg_node_text(v), "+:!") != NULL) {
        cfg_err(c, v, "\"%s\" must be a sequence of names, not an OpenSSL-style string: "
             "%s: [NAME, NAME, ...] (see tlsterm.yaml(5))", key, key);
        return 0;
    }
    if (v->type != YAML_SEQUENCE_NODE) {
        cfg_err(c, v, "\"%s\" must be a sequence", key);
        return 0;
    }
    n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (n == 0)
        cfg_err(c, v, "\"%s\" must not be empty", key);
    return n;
}

yaml_node_t *
cfg_seq_item(struct ctx *c, const yaml_node_t *seq, size_t i)
{
    return cfg_node(c, seq->data.sequence.items.start[i]);
}

char *
cfg_strdup(struct ctx *c, const yaml_node_t *n, const char *s)
{
    char *p = strdup(s);

    if (p == NULL)
        cfg_oom(c, n);
    return p;
}

/* [A-Za-z0-9_.-]+: safe in log lines and metric labels. */
bool
cfg_str_in(const char *s, const char *const *list)
{
    for (; list != NULL && *list != NULL; list++)
        if (strcmp(s, *list) == 0)
            return true;
    return false;
}

bool
cfg_name_ok(const char *s)
{
    static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                             DIGITS "_.-";

    return *s != '\0' && s[strspn(s, ok)] == '\0';
}

/* Appends s to a ", "-separated list in buf (size > 8), ending it with
 * ", ..." once full. */
void
cfg_list_append(char *buf, size_t size, bool *full, const char *s)
{
    size_t len = strlen(buf);
    const char *sep = len > 0 ? ", " : "";

    if (*full)
        return;
    if (len + strlen(sep) + strlen(s) + sizeof(", ...") > size) {
        snprintf(buf + len, size - len, "%s...", sep);
        *full = true;
        return;
    }
    snprintf(buf + len, size - len, "%s%s", sep, s);
}

/* Optimal string alignment distance, ignoring case: "time_outs" is one
 * edit from "timeouts", and so is a swapped pair of letters. */
static size_t
edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t rows[3][CONFIG_EDIT_MAX + 1];

    if (la > CONFIG_EDIT_MAX || lb > CONFIG_EDIT_MAX)
        return SIZE_MAX;
    for (size_t j = 0; j <= lb; j++)
        rows[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t *cur = rows[i % 3], *up = rows[(i - 1) % 3], *up2 = rows[(i + 1) % 3];
        int ca = tolower((unsigned char)a[i - 1]);
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            int cb = tolower((unsigned char)b[j - 1]);
            size_t v = up[j - 1] + (ca != cb);
            if (up[j] + 1 < v)
                v = up[j] + 1;
            if (cur[j - 1] + 1 < v)
                v = cur[j - 1] + 1;
            if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
                tolower((unsigned char)a[i - 2]) == cb && up2[j - 2] + 1 < v)
                v = up2[j - 2] + 1;
            cur[j] = v;
        }
    }
    return rows[la % 3][lb];
}

/* The known key an unknown one was probably meant to be, or NULL. */
static const struct key_spec *
key_hint(const char *s, const struct key_spec *keys)
{
    const struct key_spec *best = NULL;
    size_t best_d = SIZE_MAX;

    for (const struct key_spec *k = keys; k->name != NULL; k++) {
        size_t d = edit_distance(s, k->name);
        /* Short keys need a closer match: "foo" is not a typo of "log". */
        if (d < best_d && (d == 0 || (d <= 2 && d * 3 <= strlen(k->name)))) {
            best = k;
            best_d = d;
        }
    }
    return best;
}

/* Reports an unknown key; returns the key it is probably a typo of. */
static const struct key_spec *
key_unknown(struct ctx *c, const yaml_node_t *kn, const struct key_spec *keys)
{
    const struct key_spec *hint = key_hint(cfg_node_text(kn), keys);
    char list[256] = "";
    bool full = false;

    if (hint != NULL) {
        cfg_err(c, kn, "unknown key \"%s\" (did you mean \"%s\"?)", cfg_node_text(kn), hint->name);
        return hint;
    }
    for (const struct key_spec *k = keys; k->name != NULL; k++)
        cfg_list_append(list, sizeof(list), &full, k->name);
    cfg_err(c, kn, "unknown key \"%s\" (valid keys: %s)", cfg_node_text(kn), list);
    return NULL;
}

/* The key node of a pair, or NULL after reporting a non-string or a
 * repeated key (the first occurrence wins). */
yaml_node_t *
cfg_map_key(struct ctx *c, const yaml_node_t *map, const yaml_node_pair_t *pair)
{
    yaml_node_t *kn = cfg_node(c, pair->key);

    if (kn == NULL)
        return NULL;
    if (kn->type != YAML_SCALAR_NODE || node_has_nul(kn)) {
        cfg_err(c, kn, "keys must be strings");
        return NULL;
    }
    for (const yaml_node_pair_t *p = map->data.mapping.pairs.start; p < pair; p++) {
        const yaml_node_t *prev = yaml_document_get_node(c->doc, p->key);
        if (prev != NULL && prev->type == YAML_SCALAR_NODE &&
            strcmp(cfg_node_text(prev), cfg_node_text(kn)) == 0) {
            cfg_err(c, kn, "duplicate key \"%s\" (first at line %d)", cfg_node_text(kn),
                 cfg_node_pos(prev).line);
            return NULL;
        }
    }
    return kn;
}

static const struct key_spec *
key_find(const struct key_spec *keys, const char *name)
{
    for (const struct key_spec *k = keys; k->name != NULL; k++) {
        if (strcmp(k->name, name) == 0)
            return k;
    }
    return NULL;
}

/* Dispatches each key of map to its handler; what names the mapping in
 * "... is missing required key" messages.  At most 32 keys per table. */
void
cfg_walk_map(struct ctx *c, yaml_node_t *map, const struct key_spec *keys,
         const char *what, void *obj)
{
    uint32_t seen = 0;

    for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
         p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = cfg_map_key(c, map, p), *vn;
        const struct key_spec *k;

        if (kn == NULL || (map == yaml_document_get_root_node(c->doc) &&
                           strncmp(cfg_node_text(kn), "x-", 2) == 0))
            continue;               /* "x-...": a place for anchors, ignored */
        k = key_find(keys, cfg_node_text(kn));
        if (k == NULL) {
            /* A misspelt required key is one mistake: no "missing" too. */
            k = key_unknown(c, kn, keys);
            if (k != NULL)
                seen |= 1u << (k - keys);
            continue;
        }
        seen |= 1u << (k - keys);
        vn = cfg_node(c, p->value);
        if (vn != NULL)
            k->fn(c, k, vn, obj);
    }
    if (c->visits >= CONFIG_MAX_NODE_VISITS)
        return;
    for (const struct key_spec *k = keys; k->name != NULL; k++) {
        if (k->required && !(seen & (1u << (k - keys))))
            cfg_err(c, map, "%s is missing required key \"%s\"", what, k->name);
    }
}

void
cfg_on_submap(struct ctx *c, const struct key_spec *k, yaml_node_t *v, void *obj)
{
    if (v->type != YAML_MAPPING_NODE) {
        cfg_err(c, v, "\"%s\" must be a mapping", k->name);
        return;
    }
    cfg_walk_map(c, v, k->arg, k->name, obj);
}

void
cfg_on_count(struct ctx *c, const struct key_spec *k, yaml_node_t *v, void *obj)
{
    const struct count_kind *kind = k->arg;
    const char *s = cfg_want_text(c, k->name, v, "a number");
    uint64_t n = 0;
    unsigned u;

    if (s == NULL)
        return;
    if (!(kind->auto_ok && strcmp(s, "auto") == 0) &&
        (config_parse_uint(s, &n) != 0 || n < kind->min || n > kind->max)) {
        cfg_err(c, v, "invalid %s \"%s\": expected %san integer from %u to %u", k->name, s,
             kind->auto_ok ? "\"auto\" or " : "", kind->min, kind->max);
        return;
    }
    u = (unsigned)n;
    memcpy((char *)obj + k->off, &u, sizeof(u));
}

void
cfg_on_timeout(struct ctx *c, const struct key_spec *k, yaml_node_t *v, void *obj)
{
    const char *s = cfg_want_text(c, k->name, v, "a duration");
    const char *why = NULL;
    uint64_t ms;

    if (s == NULL)
        return;
    if (config_parse_duration(s, &ms, &why) == 0) {
        if (ms == 0 && k->arg == NULL)     /* arg: 0 turns it off */
            why = "must be greater than 0";
        else if (ms > CONFIG_TIMEOUT_MAX_MS)
            why = "must be at most 30d";
        else
            memcpy((char *)obj + k->off, &ms, sizeof(ms));
    }
    if (why != NULL)
        cfg_err(c, v, "invalid %s \"%s\": %s", k->name, s, why);
}

void
cfg_on_size(struct ctx *c, const struct key_spec *k, yaml_node_t *v, void *obj)
{
    const struct size_kind *kind = k->arg;
    const char *s = cfg_want_text(c, k->name, v, "a size");
    const char *why = NULL;
    uint64_t n;

    if (s == NULL)
        return;
    if (config_parse_size(s, &n, &why) == 0) {
        if (n < kind->min || n > kind->max) {
            why = kind->range;
        } else {
            size_t z = (size_t)n;
            memcpy((char *)obj + k->off, &z, sizeof(z));
        }
    }
    if (why != NULL)
        cfg_err(c, v, "invalid %s \"%s\": %s", k->name, s, why);
}

void
cfg_on_bool(struct ctx *c, const struct key_spec *k, yaml_node_t *v, void *obj)
{
    static const char *const yes[] = { "true", "yes", "on", NULL };
    static const char *const no[] = { "false", "no", "off", NULL };
    const char *s = cfg_want_text(c, k->name, v, "true or false");
    bool b;

    if (s == NULL)
        return;
    if (cfg_str_in(s, yes))
        b = true;
    else if (cfg_str_in(s, no))
        b = false;
    else {
        cfg_err(c, v, "invalid %s \"%s\": expected true or false", k->name, s);
        return;
    }
    memcpy((char *)obj + k->off, &b, sizeof(b));
}

void
cfg_on_enum(struct ctx *c, const struct key_spec *k, yaml_node_t *v, void *obj)
{
    const struct enum_kind *kind = k->arg;
    const char *s = cfg_want_text(c, k->name, v, kind->expected);

    if (s == NULL)
        return;
    for (int i = 0; kind->names[i] != NULL; i++) {
        if (strcmp(s, kind->names[i]) == 0) {
            int value = kind->first + i;
            memcpy((char *)obj + k->off, &value, sizeof(value));
            return;
        }
    }
    cfg_err(c, v, "invalid %s \"%s\": expected %s", k->name, s, kind->expected);
}

/* ALPN protocol names: 1 to 255 bytes each (RFC 7301), no repeats. */
void
cfg_on_alpn(struct ctx *c, const struct key_spec *k, yaml_node_t *v, void *obj)
{
    struct config_listener *l = obj;
    size_t n = cfg_want_seq(c, k->name, v), count = 0;

    if (n == 0)
        return;
    l->alpn = calloc(n + 1, sizeof(*l->alpn));
    if (l->alpn == NULL) {
        cfg_oom(c, v);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *it = cfg_seq_item(c, v, i);
        const char *s = it != NULL ? cfg_want_item_text(c, k->name, it) : NULL;
        if (s == NULL)
            continue;
        if (*s == '\0' || strlen(s) > 255) {
            cfg_err(c, it, "invalid alpn protocol \"%s\": must be 1 to 255 bytes", s);
            continue;
        }
        if (cfg_str_in(s, (const char *const *)l->alpn)) {
            cfg_err(c, it, "duplicate alpn protocol \"%s\"", s);
            continue;
        }
        l->alpn[count++] = cfg_strdup(c, it, s);
    }
}

int
cfg_addr_item(struct ctx *c, const struct key_spec *k, const yaml_node_t *it,
          struct config_addr *a)
{
    const struct addr_kind *kind = k->arg;
    const char *s = cfg_want_item_text(c, k->name, it), *why;

    if (s == NULL)
        return -1;
    if (config_parse_addr(s, kind->resolve, a, &why) != 0) {
        cfg_err(c, it, "invalid %s \"%s\": %s", kind->noun, s, why);
        return -1;
    }
    a->pos = cfg_node_pos(it);
    return 0;
}

void
cfg_on_addrs(struct ctx *c, const struct key_spec *k, yaml_node_t *v, void *obj)
{
    const struct addr_kind *kind = k->arg;
    bool one = v->type == YAML_SCALAR_NODE;
    size_t n, count = 0;
    struct config_addr *list;

    if (v->type == YAML_MAPPING_NODE) {
        cfg_err(c, v, "\"%s\" must be an address or a sequence of addresses", k->name);
        return;
    }
    n = one ? 1 : cfg_want_seq(c, k->name, v);
    if (n == 0)
        return;
    list = calloc(n, sizeof(*list));
    if (list == NULL) {
        cfg_oom(c, v);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *it = one ? v : cfg_seq_item(c, v, i);
        if (it != NULL && cfg_addr_item(c, k, it, &list[count]) == 0)
            count++;
    }
    memcpy((char *)obj + kind->off_list, &list, sizeof(list));
    memcpy((char *)obj + kind->off_count, &count, sizeof(count));
}

/* Made absolute against the config file's directory; never opened here. */
void
cfg_on_path(struct ctx *c, const struct key_spec *k, yaml_node_t *v, void *obj)
{
    const char *s = cfg_want_text(c, k->name, v, "a file name");
    char *path;

    if (s == NULL)
        return;
    if (*s == '\0') {
        cfg_err(c, v, "\"%s\" must not be empty", k->name);
        return;
    }
    if (s[0] == '/')
        path = strdup(s);
    else if (asprintf(&path, "%s/%s", c->dir, s) < 0)
        path = NULL;
    if (path == NULL)
        cfg_oom(c, v);
    memcpy((char *)obj + k->off, &path, sizeof(path));
}

void
cfg_cidr_list(struct ctx *c, const struct key_spec *k, yaml_node_t *v,
          struct config_cidr **out, size_t *n, const char *noun)
{
    size_t want = cfg_want_seq(c, k->name, v);

    if (want == 0)
        return;
    *out = calloc(want, sizeof(**out));
    if (*out == NULL) {
        cfg_oom(c, v);
        return;
    }
    for (size_t i = 0; i < want; i++) {
        yaml_node_t *it = cfg_seq_item(c, v, i);
        const char *s = it != NULL ? cfg_want_item_text(c, k->name, it) : NULL;
        const char *why = NULL;
        if (s == NULL)
            continue;
        if (config_parse_cidr(s, &(*out)[*n], &why) != 0)
            cfg_err(c, it, "invalid %s address \"%s\": %s", noun, s, why);
        else
            (*n)++;
    }
}
