/* SPDX-License-Identifier: BSD-2-Clause */
/* config_merge.c - YAML merge keys ("<<: *name"), expanded before the
 * config walk (config.c). */
#include "autoconf.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "config.h"
#include "config_int.h"

/* "<<: *defaults" is YAML 1.1's merge key, which libyaml leaves to the
 * application.  Before the walk, each mapping gets the pairs of the
 * mapping(s) it merges that it does not set itself, so every handler sees
 * one plain mapping and errors point at the lines the values come from. */
enum { MERGE_TODO, MERGE_BUSY, MERGE_DONE };

static bool
is_merge_key(yaml_document_t *doc, int key)
{
    const yaml_node_t *k = yaml_document_get_node(doc, key);

    return k != NULL && k->type == YAML_SCALAR_NODE && k->data.scalar.length == 2 &&
           k->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
           memcmp(k->data.scalar.value, "<<", 2) == 0;
}

static bool
map_has_key(yaml_document_t *doc, const yaml_node_t *map, int key)
{
    const yaml_node_t *k = yaml_document_get_node(doc, key);

    if (k == NULL || k->type != YAML_SCALAR_NODE)
        return false;
    for (const yaml_node_pair_t *p = map->data.mapping.pairs.start;
         p < map->data.mapping.pairs.top; p++) {
        const yaml_node_t *o = yaml_document_get_node(doc, p->key);
        if (o != NULL && o->type == YAML_SCALAR_NODE &&
            strcmp(cfg_node_text(o), cfg_node_text(k)) == 0)
            return true;
    }
    return false;
}

static int merge_map(struct ctx *c, int id, unsigned char *state);

/* Appends src's pairs that map (node id) lacks. */
static int
merge_one(struct ctx *c, int id, int src, const yaml_node_t *at, unsigned char *state)
{
    yaml_node_t *s = yaml_document_get_node(c->doc, src);

    if (s == NULL || s->type != YAML_MAPPING_NODE) {
        cfg_err(c, s != NULL ? s : at, "\"<<\" (a YAML merge key) takes a mapping or a list of "
             "mappings: \"<<: *name\" where \"&name\" marks a mapping");
        return -1;
    }
    if (state[src] == MERGE_BUSY || src == id) {
        cfg_err(c, at, "\"<<\" merges a mapping that contains this one");
        return -1;
    }
    if (state[src] == MERGE_TODO && merge_map(c, src, state) != 0)
        return -1;
    s = yaml_document_get_node(c->doc, src);
    for (size_t i = 0; i < (size_t)(s->data.mapping.pairs.top - s->data.mapping.pairs.start);
         i++) {
        yaml_node_pair_t p = s->data.mapping.pairs.start[i];
        if (map_has_key(c->doc, yaml_document_get_node(c->doc, id), p.key))
            continue;
        if (++c->visits >= CONFIG_MAX_NODE_VISITS ||
            !yaml_document_append_mapping_pair(c->doc, id, p.key, p.value)) {
            cfg_err(c, at, "config too large once merge keys are expanded");
            return -1;
        }
    }
    return 0;
}

/* Takes the "<<" pair out of mapping id and merges what it names. */
static int
merge_map(struct ctx *c, int id, unsigned char *state)
{
    yaml_node_t *m = yaml_document_get_node(c->doc, id), *v;
    yaml_node_pair_t *p = m->data.mapping.pairs.start;
    int rc = 0, value;

    state[id] = MERGE_BUSY;
    while (p < m->data.mapping.pairs.top && !is_merge_key(c->doc, p->key))
        p++;
    if (p == m->data.mapping.pairs.top) {
        state[id] = MERGE_DONE;
        return 0;
    }
    value = p->value;
    memmove(p, p + 1, (size_t)(m->data.mapping.pairs.top - p - 1) * sizeof(*p));
    m->data.mapping.pairs.top--;
    v = yaml_document_get_node(c->doc, value);
    if (v != NULL && v->type == YAML_SEQUENCE_NODE) {
        size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
        for (size_t i = 0; rc == 0 && i < n; i++)
            rc = merge_one(c, id, v->data.sequence.items.start[i], v, state);
    } else {
        rc = merge_one(c, id, value, m, state);
    }
    state[id] = MERGE_DONE;
    for (p = m->data.mapping.pairs.start; rc == 0 && p < m->data.mapping.pairs.top; p++)
        if (is_merge_key(c->doc, p->key)) {
            cfg_err(c, yaml_document_get_node(c->doc, p->key), "duplicate key \"<<\"");
            rc = -1;
        }
    return rc;
}

void
config_merge_keys(struct ctx *c)
{
    size_t n = (size_t)(c->doc->nodes.top - c->doc->nodes.start);
    unsigned char *state = calloc(n + 1, 1);

    if (state == NULL) {
        cfg_err_at(c, (struct config_pos){ 0, 0 }, "out of memory");
        return;
    }
    for (size_t id = 1; id <= n; id++) {
        const yaml_node_t *node = yaml_document_get_node(c->doc, (int)id);
        if (node->type == YAML_MAPPING_NODE && state[id] == MERGE_TODO &&
            merge_map(c, (int)id, state) != 0)
            break;
    }
    free(state);
}
