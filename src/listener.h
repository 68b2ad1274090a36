/* SPDX-License-Identifier: BSD-2-Clause */
/* listener.h - listening sockets and accept with fd-exhaustion back-off. */
#ifndef TLSTERM_LISTENER_H
#define TLSTERM_LISTENER_H

#include <stddef.h>
#include <time.h>

#include "config.h"

struct worker;
struct event;

struct listener {
    struct worker *w;
    int fd;
    size_t lidx;                        /* index into cfg->listeners */
    const struct config_listener *lc;
    const struct config_addr *addr;
    struct event *ev;
    struct event *backoff;              /* re-enables accept after EMFILE */
    time_t pause_logged_at;             /* one EMFILE warning per second */
    time_t local_logged_at;             /* ... and one for backend sockets */
    struct event *reject_flush;         /* logs the rest of a second's refusals */
    time_t reject_logged_at;            /* one max_connections warning per second */
    unsigned long rejects_unlogged;
};

/* Fails when something else already listens on the address, so two
 * instances never silently share a port through SO_REUSEPORT. */
int listener_probe(const struct config_addr *a, char *err, size_t errlen);
/* socket + SO_REUSEPORT + bind + listen; returns the fd or -1 and err. */
int listener_bind(const struct config_addr *a, char *err, size_t errlen);
int listener_start(struct listener *l);
/* Accepts everything already queued (before closing for a drain). */
void listener_accept_pending(struct listener *l);
void listener_close(struct listener *l);
/* A local shortage (fds, memory) elsewhere than accept: every listener of
 * the worker rests for a moment, so the connections already open can
 * finish instead of new ones failing the same way. */
void listeners_back_off(struct worker *w, const char *what, int err);

#endif
