/* SPDX-License-Identifier: BSD-2-Clause */
/* watch.h - reload when a certificate, key, CRL or ticket-key file the
 * configuration names changes on disk (inotify, debounced).  Main thread
 * only. */
#ifndef TLSTERM_WATCH_H
#define TLSTERM_WATCH_H

#include "config.h"

struct event_base;
struct watch;

typedef void watch_reload_fn(void *arg);

/* NULL when cfg->watch.enabled is false (or without memory). */
struct watch *watch_new(struct event_base *base, const struct config *cfg,
                        watch_reload_fn *reload, void *arg);
/* Before any reload (SIGHUP or a change): the files' identities now, so a
 * change made while the new generation loads is seen afterwards. */
void watch_before_reload(struct watch *w);
/* After a reload succeeded: watch the new generation's files. */
void watch_update(struct watch *w, const struct config *cfg);
void watch_free(struct watch *w);

#endif
