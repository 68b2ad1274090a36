/* SPDX-License-Identifier: BSD-2-Clause */
/* addr_limit.c - per-address connection counts and token buckets.
 *
 * A chained hash table over a fixed array of entries.  Entries are freed
 * by a small sweep that every admission runs: an entry goes once its
 * address has no connection open, its bucket has refilled (so leaving the
 * table never gives a client fresh tokens) and its last refusal line is
 * older than the log interval. */
#include "autoconf.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "addr_limit.h"
#include "hash.h"

#define SWEEP_STEP 2            /* entries looked at per admission */
#define SWEEP_FULL 64           /* ... when no entry is free */

struct addr_entry {
    uint8_t key[16];
    uint32_t next;              /* 1 + index: chain, or free list */
    uint32_t conns;
    uint64_t milli;             /* tokens x 1000 */
    uint64_t at_ms;             /* of the last refill */
    uint64_t logged_ms;
    unsigned long refused;      /* since the last line */
    bool used, logged;
};

static uint32_t
bucket_of(const struct addr_limit *t, const uint8_t key[16])
{
    uint64_t a, b;

    memcpy(&a, key, 8);
    memcpy(&b, key + 8, 8);
    return (uint32_t)(mix64(mix64(a ^ t->seed[0]) ^ b ^ t->seed[1]) & t->mask);
}

/* IPv4 as ::ffff:a.b.c.d, IPv6 by its /64; false for other families. */
static bool
key_of(const struct sockaddr *sa, uint8_t key[16])
{
    static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

    memset(key, 0, 16);
    if (sa->sa_family == AF_INET) {
        memcpy(key, v4mapped, 12);
        memcpy(key + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return true;
    }
    if (sa->sa_family != AF_INET6)
        return false;
    memcpy(key, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
    if (memcmp(key, v4mapped, 12) != 0)
        memset(key + 8, 0, 8);
    return true;
}

int
addr_limit_init(struct addr_limit *t, uint32_t cap, const uint8_t seed[16])
{
    uint32_t n = 16;

    memset(t, 0, sizeof(*t));
    while (n < cap && n < (1U << 24))
        n <<= 1;
    t->entries = calloc(n, sizeof(*t->entries));
    t->heads = calloc(n, sizeof(*t->heads));
    if (t->entries == NULL || t->heads == NULL) {
        addr_limit_free(t);
        return -1;
    }
    for (uint32_t i = 0; i < n; i++)
        t->entries[i].next = i + 2 <= n ? i + 2 : 0;
    t->free_head = 1;
    t->cap = n;
    t->mask = n - 1;
    memcpy(t->seed, seed, 16);
    pthread_mutex_init(&t->lock, NULL);
    return 0;
}

void
addr_limit_free(struct addr_limit *t)
{
    if (t->entries != NULL)
        pthread_mutex_destroy(&t->lock);
    free(t->entries);
    free(t->heads);
    memset(t, 0, sizeof(*t));
}

static uint64_t
burst_milli(const struct addr_rules *r)
{
    return (uint64_t)(r->burst ? r->burst : r->rate) * 1000;
}

static void
refill(struct addr_entry *e, const struct addr_rules *r, uint64_t now)
{
    uint64_t full = burst_milli(r);

    if (now > e->at_ms && e->milli < full) {
        uint64_t add = (now - e->at_ms) * r->rate;
        e->milli = add >= full - e->milli ? full : e->milli + add;
    }
    if (e->milli > full)
        e->milli = full;
    e->at_ms = now;
}

static uint32_t *
link_to(struct addr_limit *t, const uint8_t key[16], struct addr_entry **found)
{
    uint32_t *at = &t->heads[bucket_of(t, key)];

    while (*at != 0 && memcmp(t->entries[*at - 1].key, key, 16) != 0)
        at = &t->entries[*at - 1].next;
    *found = *at ? &t->entries[*at - 1] : NULL;
    return at;
}

static bool
idle(struct addr_entry *e, const struct addr_rules *r, uint64_t now)
{
    if (!e->used || e->conns != 0)
        return false;
    if (e->logged && now - e->logged_ms < ADDR_LIMIT_LOG_MS)
        return false;
    refill(e, r, now);
    return e->milli >= burst_milli(r);
}

static void
sweep(struct addr_limit *t, const struct addr_rules *r, uint64_t now, unsigned steps)
{
    for (unsigned i = 0; i < steps; i++) {
        uint32_t idx = t->sweep;
        struct addr_entry *e = &t->entries[idx], *same;
        t->sweep = (idx + 1) & t->mask;
        if (!idle(e, r, now))
            continue;
        uint32_t *at = link_to(t, e->key, &same);
        *at = e->next;
        memset(e, 0, sizeof(*e));
        e->next = t->free_head;
        t->free_head = idx + 1;
    }
}

static struct addr_entry *
entry_new(struct addr_limit *t, uint32_t *at, const uint8_t key[16],
          const struct addr_rules *r, uint64_t now)
{
    struct addr_entry *e;
    uint32_t idx = t->free_head;

    if (idx == 0)
        return NULL;
    e = &t->entries[idx - 1];
    t->free_head = e->next;
    memset(e, 0, sizeof(*e));
    memcpy(e->key, key, 16);
    e->used = true;
    e->milli = burst_milli(r);
    e->at_ms = now;
    *at = idx;                  /* at was the chain's empty end */
    return e;
}

static enum addr_verdict
refuse(struct addr_entry *e, enum addr_verdict v, uint64_t now, unsigned long *log_n)
{
    e->refused++;
    if (!e->logged || now - e->logged_ms >= ADDR_LIMIT_LOG_MS) {
        *log_n = e->refused;
        e->refused = 0;
        e->logged = true;
        e->logged_ms = now;
    }
    return v;
}

static enum addr_verdict
judge(struct addr_entry *e, const struct addr_rules *r, uint64_t now, unsigned long *log_n)
{
    if (r->connections && e->conns >= r->connections)
        return refuse(e, ADDR_TOO_MANY, now, log_n);
    if (r->rate) {
        refill(e, r, now);
        if (e->milli < 1000)
            return refuse(e, ADDR_TOO_FAST, now, log_n);
        e->milli -= 1000;
    }
    e->conns++;
    return ADDR_ADMIT;
}

enum addr_verdict
addr_limit_admit(struct addr_limit *t, const struct sockaddr *sa, const struct addr_rules *r,
                 uint64_t now_ms, unsigned long *log_n)
{
    struct addr_entry *e;
    enum addr_verdict v = ADDR_UNTRACKED;
    uint8_t key[16];
    uint32_t *at;

    *log_n = 0;
    if ((r->connections == 0 && r->rate == 0) || t->entries == NULL || !key_of(sa, key))
        return ADDR_UNTRACKED;
    pthread_mutex_lock(&t->lock);
    sweep(t, r, now_ms, SWEEP_STEP);
    at = link_to(t, key, &e);
    if (e == NULL && t->free_head == 0) {
        sweep(t, r, now_ms, SWEEP_FULL);
        at = link_to(t, key, &e);
    }
    if (e == NULL)
        e = entry_new(t, at, key, r, now_ms);
    if (e != NULL)
        v = judge(e, r, now_ms, log_n);
    pthread_mutex_unlock(&t->lock);
    return v;
}

void
addr_limit_release(struct addr_limit *t, const struct sockaddr *sa)
{
    struct addr_entry *e;
    uint8_t key[16];

    if (t->entries == NULL || !key_of(sa, key))
        return;
    pthread_mutex_lock(&t->lock);
    link_to(t, key, &e);
    if (e != NULL && e->conns > 0)
        e->conns--;
    pthread_mutex_unlock(&t->lock);
}

size_t
addr_limit_used(struct addr_limit *t)
{
    size_t n = 0;

    pthread_mutex_lock(&t->lock);
    for (uint32_t i = 0; i < t->cap; i++)
        n += t->entries[i].used;
    pthread_mutex_unlock(&t->lock);
    return n;
}
