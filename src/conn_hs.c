/* SPDX-License-Identifier: BSD-2-Clause */
/* conn_hs.c - the handshake thread of a worker (see conn_hs.h). */
#include "autoconf.h"

#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <event2/event.h>

#include "conn_hs.h"
#include "conn_int.h"
#include "log.h"
#include "tls.h"
#include "worker.h"

/* SCHED_IDLE: a relaying thread that wakes up preempts a handshake step at
 * once, and handshakes still get every cycle nothing else wants.  A build
 * knob (CFLAGS=-DHS_THREAD_SCHED_IDLE=0: nice 19 instead) for comparing
 * the two: tests/bench/results/flood-vs-nice19.md. */
#ifndef HS_THREAD_SCHED_IDLE
#define HS_THREAD_SCHED_IDLE 1
#endif

struct hs_thread {
    struct worker *w;
    pthread_t thread;
    bool started, stop;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct conn *todo, **todo_tail;     /* worker -> handshake thread */
    struct conn *done, **done_tail;     /* and back */
    struct event *done_ev;
};

static void
hs_push(struct conn ***tail, struct conn *c)
{
    c->hs_next = NULL;
    **tail = c;
    *tail = &c->hs_next;
}

static void
hs_lower_priority(unsigned id)
{
    int rc;
#if HS_THREAD_SCHED_IDLE
    struct sched_param sp = { 0 };

    rc = pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp);
#else
    rc = setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19) == 0 ? 0 : -1;
#endif
    if (rc != 0)
        log_warn("worker=%u: cannot lower the handshake thread's priority; handshakes "
                 "compete with established connections for the CPU", id);
}

static void *
hs_main(void *arg)
{
    struct hs_thread *t = arg;

    hs_lower_priority(t->w->id);
    pthread_mutex_lock(&t->lock);
    for (;;) {
        struct conn *c;
        while (!t->stop && t->todo == NULL)
            pthread_cond_wait(&t->wake, &t->lock);
        if (t->stop)
            break;
        c = t->todo;
        if ((t->todo = c->hs_next) == NULL)
            t->todo_tail = &t->todo;
        pthread_mutex_unlock(&t->lock);
        c->hs_result = tls_handshake(c->tls, false);
        pthread_mutex_lock(&t->lock);
        hs_push(&t->done_tail, c);
        event_active(t->done_ev, 0, 0);
    }
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

/* Worker thread: the steps that ended, back into their connections. */
static void
hs_done_cb(evutil_socket_t fd, short what, void *arg)
{
    struct hs_thread *t = arg;
    struct conn *c, *next;

    (void)fd;
    (void)what;
    pthread_mutex_lock(&t->lock);
    c = t->done;
    t->done = NULL;
    t->done_tail = &t->done;
    pthread_mutex_unlock(&t->lock);
    for (; c != NULL; c = next) {
        next = c->hs_next;
        c->hs_busy = false;
        conn_handshake_result(c, c->hs_result);
        conn_finish(c);
    }
}

bool
conn_hs_offload(struct conn *c)
{
    struct hs_thread *t = c->w->hs;

    if (t == NULL || !t->started)
        return false;
    c->hs_busy = true;              /* conn_wanted(): no events while away */
    event_del(&c->cev_r);
    event_del(&c->cev_w);
    c->active &= ~(unsigned)(WAIT_CREAD | WAIT_CWRITE);
    pthread_mutex_lock(&t->lock);
    hs_push(&t->todo_tail, c);
    pthread_cond_signal(&t->wake);
    pthread_mutex_unlock(&t->lock);
    return true;
}

struct hs_thread *
hs_thread_new(struct worker *w)
{
    struct hs_thread *t = calloc(1, sizeof(*t));

    if (t == NULL)
        return NULL;
    t->w = w;
    t->todo_tail = &t->todo;
    t->done_tail = &t->done;
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->wake, NULL);
    t->done_ev = event_new(w->base, -1, 0, hs_done_cb, t);
    if (t->done_ev == NULL) {
        hs_thread_free(t);
        return NULL;
    }
    event_priority_set(t->done_ev, PRIO_HANDSHAKE);
    return t;
}

int
hs_thread_start(struct hs_thread *t)
{
    if (pthread_create(&t->thread, NULL, hs_main, t) != 0)
        return -1;
    t->started = true;
    return 0;
}

void
hs_thread_stop(struct hs_thread *t)
{
    if (t == NULL || !t->started)
        return;
    pthread_mutex_lock(&t->lock);
    t->stop = true;
    pthread_cond_signal(&t->wake);
    pthread_mutex_unlock(&t->lock);
    pthread_join(t->thread, NULL);
    t->started = false;
    /* what is left belongs to the worker again: its close path frees it */
    for (struct conn *c = t->todo; c != NULL; c = c->hs_next)
        c->hs_busy = false;
    for (struct conn *c = t->done; c != NULL; c = c->hs_next)
        c->hs_busy = false;
    t->todo = t->done = NULL;
    t->todo_tail = &t->todo;
    t->done_tail = &t->done;
    event_del(t->done_ev);
}

void
hs_thread_free(struct hs_thread *t)
{
    if (t == NULL)
        return;
    hs_thread_stop(t);
    if (t->done_ev != NULL)
        event_free(t->done_ev);
    pthread_mutex_destroy(&t->lock);
    pthread_cond_destroy(&t->wake);
    free(t);
}
