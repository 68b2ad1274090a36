/* SPDX-License-Identifier: BSD-2-Clause */
/* gen.h - a configuration generation: the config, its TLS contexts (one
 * per worker) and session state, built completely before it is used and
 * immutable afterwards.
 *
 * A reload builds a new generation beside the running one.  Each worker
 * holds a reference to the generation it accepts with, and each connection
 * to the one it started on, so in-flight connections finish with their own
 * certificates, routes and timeouts; the last reference frees it. */
#ifndef TLSTERM_GEN_H
#define TLSTERM_GEN_H

#include <stdatomic.h>

#include "config.h"
#include "pool.h"

struct tls_shared;
struct tls_ctx;

struct gen {
    atomic_uint refs;
    unsigned long id;               /* 1 at start-up, +1 per reload */
    struct config *cfg;
    struct tls_shared *tls;
    unsigned n_workers;
    struct tls_ctx **wtls;          /* [worker] */
    struct pool pool;               /* server choice and health */
    atomic_bool *h2_noted;          /* [listener]: "no header rewriting under h2" logged */
    unsigned *mslot_l;              /* [listener]: its metrics slot (metrics_bind) */
    unsigned *mslot_s;              /* [server, over all backends]: its metrics slot */
};

/* Loads the config at path and every file it names, with TLS contexts for
 * n_workers workers (0: as many as the config asks for).  prev (may be NULL)
 * lends its in-memory session state when compatible.  On failure returns
 * NULL with every problem in errs. */
struct gen *gen_load(const char *path, unsigned n_workers, const struct gen *prev,
                     struct config_errors *errs);
struct gen *gen_ref(struct gen *g);
/* The workers cfg asks for: its number, or one per CPU for "auto". */
unsigned gen_worker_count(const struct config *cfg);
/* Thread-safe; the last reference frees everything. */
void gen_unref(struct gen *g);


#endif
