/* SPDX-License-Identifier: BSD-2-Clause */
/* config_int.h - what the parts of the config parser share: the walk's
 * context, key tables and the generic value handlers (config.c), used by
 * the backend section (config_backend.c).  Not for other modules. */
#ifndef TLSTERM_CONFIG_INT_H
#define TLSTERM_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <yaml.h>

#include "config.h"
#include "files.h"

#define CONFIG_MAX_CONNECTIONS_MAX 10000000
#define CONFIG_TIMEOUT_MAX_MS (30ULL * 24 * 3600 * 1000)

/* Aliases can make one node reachable along many paths; this bounds the
 * work a small file can ask for. */
#define CONFIG_MAX_NODE_VISITS 100000

struct ctx {
    const char *path;               /* as given, for messages */
    char *dir;                      /* absolute directory of the file */
    yaml_document_t *doc;
    struct config *cfg;
    struct config_errors *errs;
    struct config_pos *backend_ref; /* per listener: where "backend" is */
    size_t n_errors;
    size_t visits;
    struct file_buf text;           /* the file; yaml_hint() re-reads lines */
};

struct key_spec;
typedef void key_fn(struct ctx *c, const struct key_spec *k, yaml_node_t *v,
                    void *obj);

/* One known key of a mapping.  obj is the struct the mapping fills; off
 * and arg let one handler serve several keys. */
struct key_spec {
    const char *name;
    key_fn *fn;
    size_t off;
    const void *arg;
    bool required;
};

/* workers and max_connections: a decimal count within [min, max]. */
struct count_kind {
    unsigned min, max;
    bool auto_ok;               /* "auto" is allowed and stored as 0 */
};

/* A word from a fixed list, stored as first + its index (an enum). */
struct enum_kind {
    const char *const *names;   /* NULL-terminated */
    const char *expected;       /* "a, b or c", for the messages */
    int first;
};

/* "listen" of a listener and "servers" of a backend: one address or a
 * sequence of them. */
struct addr_kind {
    const char *noun;
    bool resolve;
    size_t off_list;
    size_t off_count;
};

/* A size ("16k") within [min, max], stored as a size_t. */
struct size_kind {
    uint64_t min, max;
    const char *range;          /* the message when outside */
};

int cfg_addr_item(struct ctx *c, const struct key_spec *k, const yaml_node_t *it,
              struct config_addr *a);
void cfg_err(struct ctx *c, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void cfg_err_at(struct ctx *c, struct config_pos pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Expands YAML merge keys in c->doc (config_merge.c). */
void config_merge_keys(struct ctx *c);
char *cfg_strdup(struct ctx *c, const yaml_node_t *n, const char *s);
yaml_node_t *cfg_map_key(struct ctx *c, const yaml_node_t *map, const yaml_node_pair_t *pair);
bool cfg_name_ok(const char *s);
yaml_node_t *cfg_node(struct ctx *c, int id);
struct config_pos cfg_node_pos(const yaml_node_t *n);
const char *cfg_node_text(const yaml_node_t *n);
void cfg_oom(struct ctx *c, const yaml_node_t *n);
yaml_node_t *cfg_seq_item(struct ctx *c, const yaml_node_t *seq, size_t i);
/* Dispatches each key of map to its handler (see config.c). */
void cfg_walk_map(struct ctx *c, yaml_node_t *map, const struct key_spec *keys, const char *what,
              void *obj);
size_t cfg_want_seq(struct ctx *c, const char *key, const yaml_node_t *v);
const char *cfg_want_text(struct ctx *c, const char *key, const yaml_node_t *v, const char *noun);
void cfg_on_count(struct ctx *c, const struct key_spec *k, yaml_node_t *v, void *obj);
void cfg_on_bool(struct ctx *c, const struct key_spec *k, yaml_node_t *v, void *obj);
void cfg_on_timeout(struct ctx *c, const struct key_spec *k, yaml_node_t *v, void *obj);
void cfg_on_enum(struct ctx *c, const struct key_spec *k, yaml_node_t *v, void *obj);
void cfg_on_size(struct ctx *c, const struct key_spec *k, yaml_node_t *v, void *obj);
void cfg_on_path(struct ctx *c, const struct key_spec *k, yaml_node_t *v, void *obj);
void cfg_on_addrs(struct ctx *c, const struct key_spec *k, yaml_node_t *v, void *obj);
void cfg_on_alpn(struct ctx *c, const struct key_spec *k, yaml_node_t *v, void *obj);
void cfg_on_submap(struct ctx *c, const struct key_spec *k, yaml_node_t *v, void *obj);
bool cfg_str_in(const char *s, const char *const *list);
/* Appends s to a ", "-separated list in buf (size > 8), ending it with
 * ", ..." once full. */
void cfg_list_append(char *buf, size_t size, bool *full, const char *s);

/* A sequence of CIDR blocks ("10.0.0.0/8", one address); noun names
 * them in the messages. */
void cfg_cidr_list(struct ctx *c, const struct key_spec *k, yaml_node_t *v,
               struct config_cidr **out, size_t *n, const char *noun);
const char *cfg_want_item_text(struct ctx *c, const char *key, const yaml_node_t *v);

/* config_admin.c */
extern const struct key_spec config_admin_keys[];
void config_admin_check(struct ctx *c);

/* config_limits.c */
extern const struct key_spec config_limit_keys[];

/* config_listener.c */
void on_listeners(struct ctx *c, const struct key_spec *k, yaml_node_t *v, void *obj);
void config_listener_free(struct config_listener *l);

/* config_backend.c */
void on_backends(struct ctx *c, const struct key_spec *k, yaml_node_t *v, void *obj);
void config_backend_free(struct config_backend *b);

#endif
