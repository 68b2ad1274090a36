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


static void
on_exempt(struct ctx *c, const struct key_spec *k, yaml_node_t *v, void *obj)
{
    struct config *cfg = obj;

    cfg_cidr_list(c, k, v, &cfg->limits.per_address.exempt, &cfg->limits.per_address.n_exempt,
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
    { "connections", cfg_on_count, offsetof(struct config, limits.per_address.connections),
      &limit_kind, false },
    { "handshakes_per_second", cfg_on_count,
      offsetof(struct config, limits.per_address.handshakes_per_second), &rate_kind, false },
    { "handshake_burst", cfg_on_count, offsetof(struct config, limits.per_address.handshake_burst),
      &rate_kind, false },
    { "exempt", on_exempt, 0, NULL, false },
    { NULL, NULL, 0, NULL, false },
};

const struct key_spec config_limit_keys[] = {
    { "max_connections", cfg_on_count, offsetof(struct config, limits.max_connections),
      &max_conn_kind, false },
    { "buffer_size", cfg_on_size, offsetof(struct config, limits.buffer_size),
      &buffer_kind, false },
    { "max_handshakes", cfg_on_count, offsetof(struct config, limits.max_handshakes),
      &limit_kind, false },
    { "worker_max_handshakes", cfg_on_count, offsetof(struct config, limits.worker_max_handshakes),
      &limit_kind, false },
    { "per_address", cfg_on_submap, 0, per_address_keys, false },
    { NULL, NULL, 0, NULL, false },
};
