/* SPDX-License-Identifier: BSD-2-Clause */
/* gen.c - configuration generations (see gen.h). */
#include "autoconf.h"

#include <stdlib.h>
#include <unistd.h>

#include "gen.h"
#include "log.h"
#include "tls.h"

static void
gen_free(struct gen *g)
{
    if (g->cfg != NULL && g->wtls != NULL)
        log_debug("generation %lu freed", g->id);
    for (unsigned i = 0; g->wtls != NULL && i < g->n_workers; i++)
        tls_ctx_free(g->wtls[i]);
    free(g->wtls);
    free(g->h2_noted);
    free(g->mslot_l);
    free(g->mslot_s);
    pool_free(&g->pool);
    tls_shared_free(g->tls);
    config_free(g->cfg);
    free(g);
}

static struct tls_shared *
gen_shared(const struct config *cfg, const struct gen *prev, struct config_errors *errs)
{
    if (prev != NULL && tls_shared_reusable(prev->cfg, cfg))
        return tls_shared_ref(prev->tls);
    return tls_shared_new(cfg, prev != NULL ? prev->tls : NULL, errs);
}

unsigned
gen_worker_count(const struct config *cfg)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    if (cfg->workers > 0)
        return cfg->workers;
    return n > 0 ? (unsigned)n : 1;
}

struct gen *
gen_load(const char *path, unsigned n_workers, const struct gen *prev,
         struct config_errors *errs)
{
    struct gen *g = calloc(1, sizeof(*g));

    if (g == NULL)
        return NULL;
    atomic_init(&g->refs, 1);
    g->id = prev != NULL ? prev->id + 1 : 1;
    g->cfg = config_load(path, errs);
    /* The first generation's format holds from the first line on, the
     * certificate warnings of this load included; a reload's is applied
     * by control.c once it succeeded. */
    if (prev == NULL && g->cfg != NULL)
        log_set_format(g->cfg->log_format);
    if (g->cfg == NULL || (g->tls = gen_shared(g->cfg, prev, errs)) == NULL)
        goto fail;
    g->n_workers = n_workers = n_workers ? n_workers : gen_worker_count(g->cfg);
    g->wtls = calloc(n_workers, sizeof(*g->wtls));
    g->h2_noted = calloc(g->cfg->n_listeners + 1, sizeof(*g->h2_noted));
    if (g->wtls == NULL || g->h2_noted == NULL || pool_init(&g->pool, g->cfg, n_workers) != 0)
        goto fail;
    for (unsigned i = 0; i < n_workers; i++) {
        g->wtls[i] = tls_ctx_new(g->cfg, g->tls, errs, i == 0);
        if (g->wtls[i] == NULL)
            goto fail;
    }
    return g;
fail:
    gen_free(g);
    return NULL;
}

struct gen *
gen_ref(struct gen *g)
{
    atomic_fetch_add_explicit(&g->refs, 1, memory_order_relaxed);
    return g;
}

void
gen_unref(struct gen *g)
{
    if (g != NULL && atomic_fetch_sub_explicit(&g->refs, 1, memory_order_acq_rel) == 1)
        gen_free(g);
}
