/* SPDX-License-Identifier: BSD-2-Clause */
/* config_limits.c - the limits section: connections, handshakes in
 * progress, buffers, and what one client address may take. */
#include "autoconf.h"

#include <stddef.h>
#include <stdlib.h>

#include <yaml.h>

#include "config.h"
#include "config_int.h"

#define CONFIG_BUFFER_MIN 1024
#define CONFIG_BUFFER_MAX (1024 * 1024)
#define CONFIG_RATE_MAX 1000000

void
cidr_list(struct ctx *c, const struct key_spec *k, yaml_node_t *v,
          struct config_cidr **out, size_t *n, const char *noun)
{
    size_t want = want_seq(c, k->name, v);

    if (want == 0)
        return;
    *out = calloc(want, sizeof(**out));
    if (*out == NULL) {
        oom(c, v);
        return;
    }
    for (size_t i = 0; i < want; i++) {
        yaml_node_t *it = seq_item(c, v, i);
        const char *s = it != NULL ? want_item_text(c, k->name, it) : NULL;
        const char *why = NULL;
        if (s == NULL)
            continue;
        if (config_parse_cidr(s, &(*out)[*n], &why) != 0)
            cerr(c, it, "invalid %s address \"%s\": %s", noun, s, why);
        else
            (*n)++;
    }
}

static void
on_exempt(struct ctx *c, const struct key_spec *k, yaml_node_t *v, void *obj)
{
    struct config *cfg = obj;

    cidr_list(c, k, v, &cfg->limits.per_address.exempt, &cfg->limits.per_address.n_exempt,
              "exempt");
}

static const struct count_kind max_conn_kind = { 1, CONFIG_MAX_CONNECTIONS_MAX, false };
/* 0 turns a limit off */
static const struct count_kind limit_kind = { 0, CONFIG_MAX_CONNECTIONS_MAX, false };
static const struct count_kind rate_kind = { 0, CONFIG_RATE_MAX, false };
static const struct size_kind buffer_kind = {
    CONFIG_BUFFER_MIN, CONFIG_BUFFER_MAX, "must be between 1k and 1m"
};

static const struct key_spec per_address_keys[] = {
    { "connections", on_count, offsetof(struct config, limits.per_address.connections),
      &limit_kind, false },
    { "handshakes_per_second", on_count,
      offsetof(struct config, limits.per_address.handshakes_per_second), &rate_kind, false },
    { "handshake_burst", on_count, offsetof(struct config, limits.per_address.handshake_burst),
      &rate_kind, false },
    { "exempt", on_exempt, 0, NULL, false },
    { NULL, NULL, 0, NULL, false },
};

const struct key_spec config_limit_keys[] = {
    { "max_connections", on_count, offsetof(struct config, limits.max_connections),
      &max_conn_kind, false },
    { "buffer_size", on_size, offsetof(struct config, limits.buffer_size), &buffer_kind, false },
    { "max_handshakes", on_count, offsetof(struct config, limits.max_handshakes),
      &limit_kind, false },
    { "worker_max_handshakes", on_count, offsetof(struct config, limits.worker_max_handshakes),
      &limit_kind, false },
    { "per_address", on_submap, 0, per_address_keys, false },
    { NULL, NULL, 0, NULL, false },
};
