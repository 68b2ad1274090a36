/* main.c - command line, start-up order, signals. */
#include "autoconf.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <yaml.h>

#include "config.h"
#include "listener.h"
#include "log.h"
#include "server.h"
#include "tls.h"
#include "worker.h"

#define DEFAULT_CONFIG SYSCONFDIR "/tlsterm/tlsterm.yaml"

struct options {
    const char *config_path;
    int test_only;
};

static void
usage(FILE *out)
{
    fprintf(out,
            "usage: tlsterm [-c FILE] [-t] [-V] [-h]\n"
            "  -c FILE  configuration file (default " DEFAULT_CONFIG ")\n"
            "  -t       check the configuration, certificates and keys, then exit\n"
            "  -V       print the version of tlsterm and its libraries\n"
            "  -h       this help\n"
            "tlsterm runs in the foreground; stop it with SIGTERM or SIGINT.\n");
}

static void
print_version(void)
{
    printf("tlsterm %s\nmbedTLS %s\nlibevent %s\nlibyaml %s\n",
           PACKAGE_VERSION, tls_library_version(), event_get_version(),
           yaml_get_version_string());
}

/* Returns -1 to continue, or an exit status. */
static int
parse_args(int argc, char **argv, struct options *o)
{
    int ch;

    o->config_path = DEFAULT_CONFIG;
    while ((ch = getopt(argc, argv, "c:tVh")) != -1) {
        switch (ch) {
        case 'c': o->config_path = optarg; break;
        case 't': o->test_only = 1; break;
        case 'V': print_version(); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "tlsterm: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    return -1;
}

static void
print_errors(const struct config_errors *errs)
{
    for (size_t i = 0; i < errs->n; i++)
        fprintf(stderr, "%s\n", errs->msgs[i]);
}

/* Loads and fully checks the config, including certificates, keys and
 * ticket keys. */
static struct config *
load_checked(const char *path, struct tls_shared **sh, struct tls_ctx **tls)
{
    struct config_errors errs = { 0 };
    struct config *cfg = config_load(path, &errs);

    if (cfg != NULL && (*sh = tls_shared_new(cfg, &errs)) != NULL)
        *tls = tls_ctx_new(cfg, *sh, &errs);
    if (cfg != NULL && (*sh == NULL || *tls == NULL)) {
        tls_shared_free(*sh);
        *sh = NULL;
        config_free(cfg);
        cfg = NULL;
    }
    if (cfg == NULL) {
        print_errors(&errs);
        fprintf(stderr, "%s: configuration has %zu error%s\n", path, errs.n,
                errs.n == 1 ? "" : "s");
    }
    config_errors_free(&errs);
    return cfg;
}

/* Each connection needs two fds; ask for what max_connections implies, up
 * to the hard limit, and say so when the hard limit is too low. */
static void
raise_fd_limit(const struct config *cfg)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)cfg->limits.max_connections * 2 + 64;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < want) {
        rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur < want)
        log_warn("open-file limit %llu is below the %llu that max_connections=%u "
                 "needs; raise LimitNOFILE / ulimit -n",
                 (unsigned long long)rl.rlim_cur, (unsigned long long)want,
                 cfg->limits.max_connections);
}

static unsigned
worker_count(const struct config *cfg)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    if (cfg->workers > 0)
        return cfg->workers;
    return n > 0 ? (unsigned)n : 1;
}

/* Refuses to start beside another process already on one of our ports:
 * SO_REUSEPORT would otherwise let both share it silently. */
static int
probe_addresses(const struct config *cfg)
{
    char err[256];

    for (size_t i = 0; i < cfg->n_listeners; i++) {
        const struct config_listener *lc = &cfg->listeners[i];
        for (size_t j = 0; j < lc->n_listen; j++) {
            if (listener_probe(&lc->listen[j], err, sizeof(err)) != 0) {
                log_error("listener=%s: %s", lc->name, err);
                return -1;
            }
        }
    }
    return 0;
}

static int
workers_create(struct server *srv, struct tls_ctx *first)
{
    struct config_errors errs = { 0 };

    srv->workers = calloc(srv->n_workers, sizeof(*srv->workers));
    if (srv->workers == NULL)
        return -1;
    for (unsigned i = 0; i < srv->n_workers; i++) {
        struct tls_ctx *tls = i == 0 ? first : tls_ctx_new(srv->cfg, srv->tls, &errs);
        if (tls == NULL) {
            print_errors(&errs);
            config_errors_free(&errs);
            return -1;
        }
        if (worker_init(&srv->workers[i], i, srv, tls) != 0)
            return -1;
    }
    return 0;
}

static void
workers_destroy(struct server *srv)
{
    if (srv->workers == NULL)
        return;
    for (unsigned i = 0; i < srv->n_workers; i++)
        worker_stop(&srv->workers[i]);
    for (unsigned i = 0; i < srv->n_workers; i++)
        worker_join(&srv->workers[i]);
    for (unsigned i = 0; i < srv->n_workers; i++)
        worker_free(&srv->workers[i]);
    free(srv->workers);
    srv->workers = NULL;
}

struct main_loop {
    struct event_base *base;
    struct server *srv;
};

static void
on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
    struct main_loop *m = arg;

    (void)what;
    log_info("received %s, stopping; %u connection(s) open",
             strsignal((int)sig), atomic_load(&m->srv->n_open));
    event_base_loopbreak(m->base);
}

static void
on_hup(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    (void)arg;
    log_warn("SIGHUP: reload is not implemented yet; configuration unchanged");
}

/* Workers must not take process signals: block them before threads start,
 * and let the main loop receive them through libevent. */
static void
block_signals_in_threads(sigset_t *saved)
{
    sigset_t all;

    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, saved);
}

static int
run(struct server *srv)
{
    struct event_base *base = event_base_new();
    struct main_loop m = { base, srv };
    struct event *ev[3];
    sigset_t saved;
    int rc = 0;

    block_signals_in_threads(&saved);
    for (unsigned i = 0; i < srv->n_workers && rc == 0; i++)
        rc = worker_start(&srv->workers[i]);
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    ev[0] = evsignal_new(base, SIGTERM, on_stop_signal, &m);
    ev[1] = evsignal_new(base, SIGINT, on_stop_signal, &m);
    ev[2] = evsignal_new(base, SIGHUP, on_hup, base);
    for (int i = 0; i < 3; i++)
        event_add(ev[i], NULL);
    if (rc == 0) {
        log_info("tlsterm %s ready: %u worker(s), %zu listener(s), max_connections=%u",
                 PACKAGE_VERSION, srv->n_workers, srv->cfg->n_listeners,
                 srv->cfg->limits.max_connections);
        event_base_dispatch(base);
    }
    for (int i = 0; i < 3; i++)
        event_free(ev[i]);
    workers_destroy(srv);
    event_base_free(base);
    return rc;
}

int
main(int argc, char **argv)
{
    struct options opt = { 0 };
    struct server srv = { 0 };
    struct tls_shared *sh = NULL;
    struct tls_ctx *tls = NULL;
    struct config *cfg;
    int rc = parse_args(argc, argv, &opt);

    if (rc >= 0)
        return rc;
    /* A reload request during start-up must not kill the process; the
     * event loop takes SIGHUP over once it runs. */
    signal(SIGHUP, SIG_IGN);
    cfg = load_checked(opt.config_path, &sh, &tls);
    if (cfg == NULL)
        return 1;
    if (opt.test_only) {
        printf("%s: configuration OK\n", opt.config_path);
        tls_ctx_free(tls);
        tls_shared_free(sh);
        config_free(cfg);
        return 0;
    }
    log_set_level(cfg->log_level);
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit(cfg);
    evthread_use_pthreads();
    srv.cfg = cfg;
    srv.tls = sh;
    srv.n_workers = worker_count(cfg);
    rc = probe_addresses(cfg) == 0 && workers_create(&srv, tls) == 0 ? 0 : 1;
    if (rc == 0)
        rc = run(&srv) == 0 ? 0 : 1;
    else if (srv.workers == NULL)
        tls_ctx_free(tls);
    workers_destroy(&srv);
    log_info("stopped: %lu connection(s) served, %lu refused at max_connections, "
             "%lu full and %lu resumed handshake(s)",
             atomic_load(&srv.n_accepted), atomic_load(&srv.n_rejected),
             atomic_load(&srv.n_full_handshakes), atomic_load(&srv.n_resumed_handshakes));
    tls_shared_free(sh);
    config_free(cfg);
    libevent_global_shutdown();
    return rc;
}
