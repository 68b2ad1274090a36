/* SPDX-License-Identifier: BSD-2-Clause */
/* addr_limit.h - what one client address may take: connections open at
 * once and new connections per second (a token bucket).  One table for
 * the process, shared by the workers under a mutex that is taken once
 * when a connection starts and once when it ends, never while relaying.
 *
 * An IPv6 client is counted by its /64: one host may use any address of
 * its prefix.  The table has a fixed size; an address that finds it full
 * is let through untracked (and counted), so the table can never refuse
 * everybody. */
#ifndef TLSTERM_ADDR_LIMIT_H
#define TLSTERM_ADDR_LIMIT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* One refusal log line per address per interval. */
#define ADDR_LIMIT_LOG_MS 10000

struct addr_rules {
    unsigned connections;           /* 0: no limit */
    unsigned rate;                  /* new connections per second; 0: no limit */
    unsigned burst;                 /* bucket size; 0: rate */
};

enum addr_verdict {
    ADDR_ADMIT,                     /* counted: call addr_limit_release() at the end */
    ADDR_UNTRACKED,                 /* let through, not counted: no release */
    ADDR_TOO_MANY,                  /* rules.connections open already */
    ADDR_TOO_FAST,                  /* the bucket is empty */
};

struct addr_entry;

struct addr_limit {
    pthread_mutex_t lock;
    struct addr_entry *entries;
    uint32_t *heads;                /* per bucket: 1 + index of the first entry, 0: none */
    uint32_t cap, mask, free_head;  /* free_head: 1 + index, 0: table full */
    uint32_t sweep;                 /* next entry the incremental sweep looks at */
    uint64_t seed[2];
};

/* cap is rounded up to a power of two.  seed keys the hash, so a client
 * cannot choose addresses that share a bucket. */
int addr_limit_init(struct addr_limit *t, uint32_t cap, const uint8_t seed[16]);
void addr_limit_free(struct addr_limit *t);

/* A new connection from sa.  On a refusal *log_n is the number of
 * refusals of this address to report now (0: stay quiet, one line per
 * ADDR_LIMIT_LOG_MS was written already). */
enum addr_verdict addr_limit_admit(struct addr_limit *t, const struct sockaddr *sa,
                                   const struct addr_rules *r, uint64_t now_ms,
                                   unsigned long *log_n);
/* The end of a connection that was admitted as ADDR_ADMIT. */
void addr_limit_release(struct addr_limit *t, const struct sockaddr *sa);
/* Entries in use (tests). */
size_t addr_limit_used(struct addr_limit *t);

#endif
