/* SPDX-License-Identifier: BSD-2-Clause */
/* control.c - signals, reload, drain and watchdog on the main thread.
 *
 * Signal map (tlsterm.8): SIGHUP reload; SIGTERM/SIGINT drain, then stop
 * (a second one stops at once); SIGUSR1 reopen the log file; SIGUSR2,
 * SIGQUIT and SIGALRM ignored with a warning. */
#include "autoconf.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "admin.h"
#include "control.h"
#include "gen.h"
#include "health.h"
#include "log.h"
#include "notify.h"
#include "watch.h"
#include "tls.h"
#include "worker.h"

#define CONTROL_EXPIRY_CHECK_MS (24ULL * 3600 * 1000)
#define CONTROL_STATUS_MS 5000

struct control {
    struct event_base *base;
    struct server *srv;
    const char *stop_reason;        /* for connections still open at the end */
    struct event *drain_timer;
    struct event *notice_timer;     /* timeouts.drain_notice: accept on, /healthz 503 */
    struct event *watchdog;
    struct event *expiry;           /* the daily certificate expiry check */
    struct event *status;           /* systemd STATUS= every CONTROL_STATUS_MS */
    struct watch *watch;            /* reload on certificate/key file changes */
    unsigned long *pongs_seen;      /* per worker, at the last watchdog tick */
    int stopping;                   /* stop signals received */
};

static void
print_errors(const struct config_errors *errs)
{
    for (size_t i = 0; i < errs->n; i++)
        log_error("reload: %s", errs->msgs[i]);
}

static int
prepare_all(struct server *srv, struct gen *g)
{
    for (unsigned i = 0; i < srv->n_workers; i++) {
        if (worker_prepare(&srv->workers[i], g) != 0) {
            while (i-- > 0)
                worker_unprepare(&srv->workers[i]);
            return -1;
        }
    }
    return 0;
}

static void
apply_log_settings(const struct config *cfg)
{
    char err[256];

    log_set_level(cfg->log_level);
    log_set_format(cfg->log_format);
    if (log_set_target(cfg->log_target, cfg->log_file, err, sizeof(err)) != 0)
        log_error("reload: %s; logging stays where it was", err);
}

static bool
str_changed(const char *a, const char *b)
{
    return (a == NULL) != (b == NULL) || (a != NULL && strcmp(a, b) != 0);
}

/* Settings a running process cannot take over; said once per reload. */
static void
warn_restart_only(const struct config *old, const struct config *cfg, unsigned running)
{
    if (old->admin.enabled != cfg->admin.enabled ||
        strcmp(old->admin.listen.text, cfg->admin.listen.text) != 0)
        log_warn("reload: admin takes effect at the next restart (running: %s)",
                 old->admin.enabled ? old->admin.listen.text : "none");
    if (gen_worker_count(cfg) != running)
        log_warn("reload: workers (%u) takes effect at the next restart (running %u)",
                 gen_worker_count(cfg), running);
    if (str_changed(old->run_as.user, cfg->run_as.user) ||
        str_changed(old->run_as.group, cfg->run_as.group))
        log_warn("reload: user/group take effect at the next restart");
    if (cfg->limits.max_connections > old->limits.max_connections)
        log_warn("reload: a higher max_connections may need a higher open-file limit, "
                 "which is raised at start-up only");
}

int
control_reload(struct server *srv)
{
    struct config_errors errs = { 0 };
    struct gen *old = srv->gen, *g;

    g = gen_load(srv->config_path, srv->n_workers, old, &errs);
    if (g != NULL && metrics_bind(&srv->metrics, g) != 0) {
        config_errors_add(&errs, srv->config_path, (struct config_pos){ 0, 0 },
                          "out of memory for the metrics");
        gen_unref(g);
        g = NULL;
    }
    if (g == NULL) {
        metrics_add(&srv->metrics.reloads_failed, 1);
        print_errors(&errs);
        log_error("reload: %s has %zu error(s); still serving generation %lu",
                  srv->config_path, errs.n, old->id);
        config_errors_free(&errs);
        return -1;
    }
    warn_restart_only(old->cfg, g->cfg, srv->n_workers);
    if (workers_probe(srv, g->cfg, "reload: ") != 0 || prepare_all(srv, g) != 0) {
        log_error("reload: cannot open the new listeners; still serving generation %lu",
                  old->id);
        metrics_add(&srv->metrics.reloads_failed, 1);
        gen_unref(g);
        return -1;
    }
    apply_log_settings(g->cfg);
    for (unsigned i = 0; i < srv->n_workers; i++)
        worker_swap(&srv->workers[i]);
    srv->gen = g;
    metrics_set_gen(&srv->metrics, g);
    metrics_add(&srv->metrics.reloads_ok, 1);
    health_stop(srv->health);
    srv->health = srv->base != NULL ? health_start(g, srv->base) : NULL;
    log_info("reloaded %s: generation %lu, %zu listener(s); generation %lu finishes "
             "its %u open connection(s) on the old settings",
             srv->config_path, g->id, g->cfg->n_listeners, old->id,
             atomic_load(&srv->n_open));
    gen_unref(old);
    return 0;
}

/* Their default action would end the process with no drain and no log
 * line; an operator used to another daemon's signals learns what we do. */
static void
on_unused(evutil_socket_t sig, short what, void *arg)
{
    const char *name = sig == SIGUSR2 ? "SIGUSR2" : sig == SIGQUIT ? "SIGQUIT" : "SIGALRM";

    (void)what;
    (void)arg;
    log_warn("%s: not used by tlsterm, ignored (SIGHUP reloads, SIGTERM drains and stops, "
             "SIGUSR1 reopens the log file)", name);
}

/* What `systemctl status` shows under the unit's name. */
static void
on_status(evutil_socket_t fd, short what, void *arg)
{
    struct control *ct = arg;
    struct metrics_sums s = { 0 };
    char line[256];

    (void)fd;
    (void)what;
    metrics_sum_all(&ct->srv->metrics, &s);
    snprintf(line, sizeof(line), "STATUS=%s: %u open connections, %" PRIu64 " accepted, %"
             PRIu64 " HTTP requests", ct->stopping ? "draining" : "serving",
             atomic_load(&ct->srv->n_open), s.accepted, s.http_requests);
    notify(line);
}

/* SIGHUP and a watched file's change take the same path. */
static void
reload(struct control *ct)
{
    notify("RELOADING=1");
    watch_before_reload(ct->watch);
    if (control_reload(ct->srv) == 0)
        watch_update(ct->watch, ct->srv->gen->cfg);
    notify("READY=1");
    on_status(-1, 0, ct);
}

static void
on_hup(evutil_socket_t sig, short what, void *arg)
{
    struct control *ct = arg;

    (void)sig;
    (void)what;
    if (ct->stopping) {
        log_warn("SIGHUP: ignored while stopping");
        return;
    }
    log_info("SIGHUP: reloading %s", ct->srv->config_path);
    reload(ct);
}

static void
on_file_change(void *arg)
{
    struct control *ct = arg;

    if (!ct->stopping)
        reload(ct);
}

static void
on_usr1(evutil_socket_t sig, short what, void *arg)
{
    char err[256];

    (void)sig;
    (void)what;
    (void)arg;
    int rc = log_reopen(err, sizeof(err));

    if (rc < 0)
        log_error("SIGUSR1: %s; still writing to the old file", err);
    else if (rc > 0)
        log_info("SIGUSR1: log file reopened");
    else
        log_info("SIGUSR1: no log file to reopen (log.target is not file)");
}

static void
stop_now(struct control *ct, const char *why)
{
    log_info("%s; closing %u connection(s)", why, atomic_load(&ct->srv->n_open));
    ct->stop_reason = why;
    event_base_loopbreak(ct->base);
}

static struct timeval
ms_tv(uint64_t ms)
{
    struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };

    return tv;
}

static void
start_drain(struct control *ct, const char *why)
{
    struct server *srv = ct->srv;
    uint64_t ms = srv->gen->cfg->timeouts.drain_ms;
    struct timeval tv = ms_tv(ms);

    log_info("%s, stopping; %u connection(s) open, draining for up to %llu ms", why,
             atomic_load(&srv->n_open), (unsigned long long)ms);
    evtimer_add(ct->drain_timer, &tv);
    for (unsigned i = 0; i < srv->n_workers; i++)
        worker_drain(&srv->workers[i]);
}

static void
on_notice_over(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    start_drain(arg, "drain notice over");
}

/* With timeouts.drain_notice, /healthz fails first while the listeners
 * still accept, so a load balancer stops sending before they close. */
static void
on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
    struct control *ct = arg;
    struct server *srv = ct->srv;
    uint64_t notice = srv->gen->cfg->timeouts.drain_notice_ms;
    struct timeval tv = ms_tv(notice);
    char why[64];

    (void)what;
    if (ct->stopping++) {
        stop_now(ct, "second stop signal");
        return;
    }
    atomic_store(&srv->metrics.draining, true);
    notify("STOPPING=1");
    snprintf(why, sizeof(why), "received %s", strsignal((int)sig));
    if (notice == 0) {
        start_drain(ct, why);
        return;
    }
    log_info("%s: /healthz answers 503 for %llu ms (timeouts.drain_notice) while still "
             "accepting, then the drain starts", why, (unsigned long long)notice);
    evtimer_add(ct->notice_timer, &tv);
}

static void
on_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    stop_now(arg, "drain timeout");
}

/* A draining worker ran out of connections; when all have, we are done. */
static void
on_drained(evutil_socket_t fd, short what, void *arg)
{
    struct control *ct = arg;

    (void)fd;
    (void)what;
    if (ct->stopping && atomic_load(&ct->srv->n_open) == 0) {
        log_info("all connections finished");
        event_base_loopbreak(ct->base);
    }
}

/* WATCHDOG=1 only when every worker answered the previous tick's ping:
 * a worker stuck in a loop lets systemd restart us, as it should. */
static void
on_watchdog(evutil_socket_t fd, short what, void *arg)
{
    struct control *ct = arg;
    struct server *srv = ct->srv;
    bool alive = true;

    (void)fd;
    (void)what;
    for (unsigned i = 0; i < srv->n_workers; i++) {
        unsigned long p = atomic_load(&srv->workers[i].pongs);
        if (p == ct->pongs_seen[i]) {
            log_error("watchdog: worker %u did not answer for half a WatchdogSec", i);
            alive = false;
        }
        ct->pongs_seen[i] = p;
        worker_ping(&srv->workers[i]);
    }
    if (alive)
        notify("WATCHDOG=1");
}

/* Workers must not take process signals: block them before threads start,
 * and let the main loop receive them through libevent. */
static int
start_workers(struct server *srv)
{
    sigset_t all, saved;
    int rc = 0;

    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &saved);
    for (unsigned i = 0; i < srv->n_workers && rc == 0; i++)
        rc = worker_start(&srv->workers[i]);
    if (rc == 0)
        rc = admin_start(srv->admin);
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    return rc;
}

static void
start_watchdog(struct control *ct)
{
    uint64_t usec = notify_watchdog_usec();
    struct timeval tv;

    if (usec == 0)
        return;
    if (usec < 2000)
        usec = 2000;        /* a 0 ms persistent timer would spin */
    usec /= 2;              /* systemd's advice: ping at half the interval */
    tv.tv_sec = (time_t)(usec / 1000000);
    tv.tv_usec = (suseconds_t)(usec % 1000000);
    ct->pongs_seen = calloc(ct->srv->n_workers, sizeof(*ct->pongs_seen));
    ct->watchdog = event_new(ct->base, -1, EV_PERSIST, on_watchdog, ct);
    if (ct->watchdog == NULL || ct->pongs_seen == NULL)
        return;
    /* The first tick must not blame workers that were never asked. */
    for (unsigned i = 0; i < ct->srv->n_workers; i++) {
        ct->pongs_seen[i] = (unsigned long)-1;
        worker_ping(&ct->srv->workers[i]);
    }
    event_add(ct->watchdog, &tv);
}

/* Only under systemd: elsewhere nobody reads it, and summing the
 * counters every 5 s would be work for nothing. */
static void
start_status(struct control *ct)
{
    struct timeval tv = { CONTROL_STATUS_MS / 1000, (CONTROL_STATUS_MS % 1000) * 1000 };

    if (getenv("NOTIFY_SOCKET") == NULL)
        return;
    ct->status = event_new(ct->base, -1, EV_PERSIST, on_status, ct);
    if (ct->status != NULL)
        event_add(ct->status, &tv);
    on_status(-1, 0, ct);
}

/* Start-up and each reload warn about certificates near their end; a
 * process that runs for months must say it again as the day comes.  The
 * generation's certificates are the same in every worker: worker 0's. */
static void
on_expiry_check(evutil_socket_t fd, short what, void *arg)
{
    struct control *ct = arg;

    (void)fd;
    (void)what;
    tls_ctx_warn_expiry(ct->srv->gen->wtls[0]);
}

/* Daily; TLSTERM_EXPIRY_CHECK_MS (a testing hook, tlsterm.8) shortens it. */
static void
start_expiry_check(struct control *ct)
{
    const char *env = getenv("TLSTERM_EXPIRY_CHECK_MS");
    unsigned long long ms = CONTROL_EXPIRY_CHECK_MS;
    struct timeval tv;
    char *end;

    if (env != NULL && *env != '\0') {
        unsigned long long v = strtoull(env, &end, 10);
        if (*end == '\0' && v >= 10)
            ms = v;
        else
            log_warn("TLSTERM_EXPIRY_CHECK_MS=%s is not a number of milliseconds (10 or "
                     "more); checking certificate expiry daily", env);
    }
    tv.tv_sec = (time_t)(ms / 1000);
    tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
    ct->expiry = event_new(ct->base, -1, EV_PERSIST, on_expiry_check, ct);
    if (ct->expiry != NULL)
        event_add(ct->expiry, &tv);
}

int
control_run(struct server *srv)
{
    static const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGQUIT, SIGALRM };
    static void (*const cbs[])(evutil_socket_t, short, void *) = {
        on_stop_signal, on_stop_signal, on_hup, on_usr1, on_unused, on_unused, on_unused };
    enum { N_SIGS = sizeof(sigs) / sizeof(sigs[0]) };
    struct control ct = { .base = event_base_new(), .srv = srv, .stop_reason = "shutdown" };
    struct event *ev[N_SIGS] = { NULL };
    int rc;

    if (ct.base == NULL)
        return -1;
    for (int i = 0; i < N_SIGS; i++) {
        ev[i] = evsignal_new(ct.base, sigs[i], cbs[i], &ct);
        event_add(ev[i], NULL);
    }
    ct.drain_timer = evtimer_new(ct.base, on_drain_timeout, &ct);
    ct.notice_timer = evtimer_new(ct.base, on_notice_over, &ct);
    srv->drained_ev = event_new(ct.base, -1, 0, on_drained, &ct);
    rc = start_workers(srv);
    if (rc == 0) {
        srv->base = ct.base;
        srv->health = health_start(srv->gen, ct.base);
        start_watchdog(&ct);
        start_expiry_check(&ct);
        /* before "ready": a change from then on is seen */
        ct.watch = watch_new(ct.base, srv->gen->cfg, on_file_change, &ct);
        log_info("tlsterm %s ready: %u worker(s), %zu listener(s), max_connections=%u",
                 PACKAGE_VERSION, srv->n_workers, srv->gen->cfg->n_listeners,
                 srv->gen->cfg->limits.max_connections);
        notify("READY=1");
        start_status(&ct);
        event_base_dispatch(ct.base);
    }
    health_stop(srv->health);
    srv->health = NULL;
    srv->base = NULL;
    for (unsigned i = 0; i < srv->n_workers; i++)
        worker_stop(&srv->workers[i], ct.stop_reason);
    for (unsigned i = 0; i < srv->n_workers; i++)
        worker_join(&srv->workers[i]);
    for (int i = 0; i < N_SIGS; i++)
        event_free(ev[i]);
    if (ct.watchdog)
        event_free(ct.watchdog);
    if (ct.expiry)
        event_free(ct.expiry);
    if (ct.status)
        event_free(ct.status);
    watch_free(ct.watch);
    free(ct.pongs_seen);
    event_free(ct.drain_timer);
    event_free(ct.notice_timer);
    event_free(srv->drained_ev);
    srv->drained_ev = NULL;
    event_base_free(ct.base);
    return rc;
}
