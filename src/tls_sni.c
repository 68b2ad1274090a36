/* SPDX-License-Identifier: BSD-2-Clause */
/* tls_sni.c - open-addressing hash tables of server names. */
#include "autoconf.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tls_sni.h"

#define SNI_NAME_MAX 255

struct sni_hash {
    struct sni_entry *slots;
    size_t cap;                 /* power of two */
    size_t used;
};

struct sni_table {
    struct sni_hash exact;
    struct sni_hash wild;       /* keyed by the suffix after "*." */
};

static uint64_t
sni_hash(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ULL;       /* FNV-1a */

    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static struct sni_entry *
hash_slot(const struct sni_hash *h, const char *key, size_t len)
{
    size_t mask = h->cap - 1;

    for (size_t i = sni_hash(key, len) & mask;; i = (i + 1) & mask) {
        struct sni_entry *e = &h->slots[i];
        if (e->key == NULL || (strlen(e->key) == len && memcmp(e->key, key, len) == 0))
            return e;
    }
}

static int
hash_grow(struct sni_hash *h)
{
    struct sni_hash bigger = { calloc(h->cap * 2, sizeof(struct sni_entry)), h->cap * 2,
                               h->used };

    if (bigger.slots == NULL)
        return -1;
    for (size_t i = 0; i < h->cap; i++)
        if (h->slots[i].key != NULL)
            *hash_slot(&bigger, h->slots[i].key, strlen(h->slots[i].key)) = h->slots[i];
    free(h->slots);
    *h = bigger;
    return 0;
}

static int
hash_init(struct sni_hash *h)
{
    h->cap = 16;
    h->used = 0;
    h->slots = calloc(h->cap, sizeof(*h->slots));
    return h->slots != NULL ? 0 : -1;
}

static void
hash_free(struct sni_hash *h)
{
    for (size_t i = 0; i < h->cap; i++)
        free(h->slots[i].key);
    free(h->slots);
}

struct sni_table *
sni_table_new(void)
{
    struct sni_table *t = calloc(1, sizeof(*t));

    if (t == NULL || hash_init(&t->exact) != 0 || hash_init(&t->wild) != 0) {
        sni_table_free(t);
        return NULL;
    }
    return t;
}

void
sni_table_free(struct sni_table *t)
{
    if (t == NULL)
        return;
    if (t->exact.slots)
        hash_free(&t->exact);
    if (t->wild.slots)
        hash_free(&t->wild);
    free(t);
}

static size_t
sni_lower(char *out, const char *in, size_t len)
{
    if (len > SNI_NAME_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        out[i] = (char)tolower((unsigned char)in[i]);
    out[len] = '\0';
    return len;
}

int
sni_table_add(struct sni_table *t, const char *name, unsigned idx)
{
    bool wild = strncmp(name, "*.", 2) == 0;
    struct sni_hash *h = wild ? &t->wild : &t->exact;
    char key[SNI_NAME_MAX + 1];
    size_t len = sni_lower(key, wild ? name + 2 : name, strlen(wild ? name + 2 : name));
    struct sni_entry *e;

    if (len == 0)               /* sni_lower() said empty or too long */
        return SNI_ADD_BAD_NAME;
    if ((h->used + 1) * 4 > h->cap * 3 && hash_grow(h) != 0)
        return SNI_ADD_NOMEM;
    e = hash_slot(h, key, len);
    if (e->key == NULL) {
        if ((e->key = strdup(key)) == NULL)
            return SNI_ADD_NOMEM;
        h->used++;
    }
    for (unsigned i = 0; i < e->n; i++)
        if (e->idx[i] == idx)
            return 0;           /* a certificate listing a name twice */
    if (e->n == SNI_MAX_CERTS_PER_NAME)
        return SNI_ADD_FULL;
    e->idx[e->n++] = idx;
    return 0;
}

const struct sni_entry *
sni_table_find(const struct sni_table *t, const char *name, size_t len)
{
    char key[SNI_NAME_MAX + 1];
    const struct sni_entry *e;
    const char *dot;

    if (sni_lower(key, name, len) == 0)
        return NULL;
    e = hash_slot(&t->exact, key, len);
    if (e->key != NULL)
        return e;
    dot = memchr(key, '.', len);
    if (dot == NULL || dot == key || dot[1] == '\0')
        return NULL;
    e = hash_slot(&t->wild, dot + 1, len - (size_t)(dot + 1 - key));
    return e->key != NULL ? e : NULL;
}

size_t
sni_table_size(const struct sni_table *t)
{
    return t->exact.used + t->wild.used;
}

bool
sni_match(const char *pattern, const char *name)
{
    const char *dot;

    if (strncmp(pattern, "*.", 2) != 0)
        return strcasecmp(pattern, name) == 0;
    dot = strchr(name, '.');
    return dot != NULL && dot != name && strcasecmp(pattern + 2, dot + 1) == 0;
}
