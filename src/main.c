/* SPDX-License-Identifier: BSD-2-Clause */
/* main.c - command line and start-up order: load and check everything,
 * bind, drop privileges, then hand over to control_run(). */
#include "autoconf.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <yaml.h>

#include "config.h"
#include "admin.h"
#include "control.h"
#include "gen.h"
#include "log.h"
#include "notify.h"
#include "privs.h"
#include "privsep.h"
#include "server.h"
#include "ticket_rotate.h"
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
            "usage: tlsterm [-c FILE] [-t] [-V] [-h] | -k KEYFILE\n"
            "  -c FILE  configuration file (default " DEFAULT_CONFIG ")\n"
            "  -t       check the configuration, certificates and keys, then exit\n"
            "  -k KEYFILE  create or rotate a shared session-ticket key file, then exit\n"
            "  -V       print the version of tlsterm and its libraries\n"
            "  -h       this help\n"
            "tlsterm runs in the foreground.  SIGHUP reloads the configuration,\n"
            "SIGTERM/SIGINT drain and stop (twice: stop now), SIGUSR1 reopens the log.\n");
}

static void
print_version(void)
{
    printf("tlsterm %s\nmbedTLS %s; protocols: %s\nlibevent %s\nlibyaml %s\n",
           PACKAGE_VERSION, tls_library_version(), tls_library_protocols(),
           event_get_version(), yaml_get_version_string());
}

/* Returns -1 to continue, or an exit status. */
static int
parse_args(int argc, char **argv, struct options *o)
{
    int ch;

    o->config_path = DEFAULT_CONFIG;
    while ((ch = getopt(argc, argv, "c:tVhk:")) != -1) {
        switch (ch) {
        case 'c': o->config_path = optarg; break;
        case 'k': return ticket_rotate(optarg);
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
print_errors(const char *path, const struct config_errors *errs)
{
    for (size_t i = 0; i < errs->n; i++)
        fprintf(stderr, "%s\n", errs->msgs[i]);
    fprintf(stderr, "%s: configuration has %zu error%s\n", path, errs->n,
            errs->n == 1 ? "" : "s");
}

/* Loads and fully checks the config, including certificates, keys and
 * ticket keys. */
static struct gen *
load_checked(const char *path, unsigned n_workers)
{
    struct config_errors errs = { 0 };
    struct gen *g = gen_load(path, n_workers, NULL, &errs);

    if (g == NULL)
        print_errors(path, &errs);
    config_errors_free(&errs);
    return g;
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

/* Sockets systemd passed for addresses the config does not name are
 * closed, with a word, rather than left to queue connections forever. */
static void
close_unused_inherited(struct server *srv)
{
    for (size_t i = 0; i < srv->n_inherited; i++) {
        if (srv->inherited[i].used)
            continue;
        log_warn("socket activation: %s is not in %s; closing it",
                 srv->inherited[i].text, srv->config_path);
        close(srv->inherited[i].fd);
        srv->inherited[i].fd = -1;
        srv->inherited[i].text[0] = '\0';
    }
}

static int
workers_create(struct server *srv)
{
    srv->workers = calloc(srv->n_workers, sizeof(*srv->workers));
    if (srv->workers == NULL)
        return -1;
    for (unsigned i = 0; i < srv->n_workers; i++)
        if (worker_init(&srv->workers[i], i, srv, srv->gen) != 0)
            return -1;
    return 0;
}

static void
workers_destroy(struct server *srv)
{
    if (srv->workers == NULL)
        return;
    for (unsigned i = 0; i < srv->n_workers; i++)
        worker_stop(&srv->workers[i], "shutdown");
    for (unsigned i = 0; i < srv->n_workers; i++)
        worker_join(&srv->workers[i]);
    for (unsigned i = 0; i < srv->n_workers; i++)
        worker_free(&srv->workers[i]);
    free(srv->workers);
    srv->workers = NULL;
}

static void
server_free(struct server *srv)
{
    admin_free(srv->admin);         /* it reads the workers' counters */
    srv->admin = NULL;
    workers_destroy(srv);
    metrics_free(&srv->metrics);
    for (size_t i = 0; i < srv->n_inherited; i++)
        if (srv->inherited[i].fd >= 0)
            close(srv->inherited[i].fd);
    free(srv->inherited);
    gen_unref(srv->gen);
    pthread_mutex_destroy(&srv->lock);
    pthread_cond_destroy(&srv->swapped);
    addr_limit_free(&srv->addrs);
}

/* Sized for the addresses one host can meet in a flood; pages untouched
 * while per_address is off cost no memory. */
static int
server_addr_table(struct server *srv)
{
    uint8_t seed[16];

    if (getrandom(seed, sizeof(seed), 0) != sizeof(seed))
        return -1;
    return addr_limit_init(&srv->addrs, SERVER_ADDR_TABLE, seed);
}

static int
start_logging(const struct config *cfg)
{
    char err[256];

    log_set_level(cfg->log_level);
    if (log_set_target(cfg->log_target, cfg->log_file, err, sizeof(err)) != 0) {
        fprintf(stderr, "tlsterm: %s\n", err);
        return -1;
    }
    return 0;
}

/* In the privileged reader's child: it needs none of what the daemon
 * loaded, and keys are better zeroized than kept in a second process. */
static void
reader_cleanup(void *arg)
{
    struct server *srv = arg;

    gen_unref(srv->gen);
    srv->gen = NULL;
}

/* Forked before any thread exists, so the child is a plain copy. */
static int
start_reader(struct server *srv)
{
    if (!privsep_needed(srv->gen->cfg))
        return 0;
    return privsep_start(srv->config_path, srv->gen->cfg->run_as.uid,
                         srv->gen->cfg->run_as.gid, reader_cleanup, srv);
}

static int
serve(struct server *srv)
{
    const struct config *cfg = srv->gen->cfg;

    if (start_logging(cfg) != 0)
        return 1;
    raise_fd_limit(cfg);
    evthread_use_pthreads();
    if (metrics_init(&srv->metrics, srv->n_workers) != 0 ||
        metrics_bind(&srv->metrics, srv->gen) != 0) {
        log_error("out of memory for the metrics");
        return 1;
    }
    metrics_set_gen(&srv->metrics, srv->gen);
    if (notify_listen_fds(srv) != 0 || workers_probe(srv, cfg, "") != 0 ||
        workers_create(srv) != 0)
        return 1;
    /* bound before privileges go: a port below 1024, a socket in /run */
    if ((srv->admin = admin_open(srv)) == NULL && errno != 0)
        return 1;
    close_unused_inherited(srv);
    if (privs_drop(cfg) != 0)
        return 1;
    return control_run(srv) == 0 ? 0 : 1;
}

int
main(int argc, char **argv)
{
    struct options opt = { 0 };
    struct server srv = { 0 };
    int rc = parse_args(argc, argv, &opt);

    if (rc >= 0)
        return rc;
    /* A reload or log-reopen request during start-up must not kill the
     * process; the event loop takes both over once it runs. */
    signal(SIGHUP, SIG_IGN);
    signal(SIGUSR1, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    /* unused signals whose default would kill the process without a word
     * (control.c logs them once it runs) */
    signal(SIGUSR2, SIG_IGN);
    signal(SIGQUIT, SIG_IGN);
    signal(SIGALRM, SIG_IGN);
    srv.config_path = opt.config_path;
    if (tls_global_init() != 0) {
        fprintf(stderr, "tlsterm: cannot initialise mbedTLS's PSA crypto\n");
        return 1;
    }
    srv.gen = load_checked(opt.config_path, opt.test_only ? 1 : 0);
    if (srv.gen == NULL) {
        tls_global_free();
        return 1;
    }
    if (opt.test_only) {
        printf("%s: configuration OK\n", opt.config_path);
        gen_unref(srv.gen);
        tls_global_free();
        return 0;
    }
    if (start_reader(&srv) != 0) {
        gen_unref(srv.gen);
        tls_global_free();
        return 1;
    }
    srv.n_workers = srv.gen->n_workers;
    if (getrandom(srv.instance_id, sizeof(srv.instance_id), 0) != sizeof(srv.instance_id))
        memset(srv.instance_id, 0, sizeof(srv.instance_id));
    pthread_mutex_init(&srv.lock, NULL);
    pthread_cond_init(&srv.swapped, NULL);
    if (server_addr_table(&srv) != 0) {
        log_error("out of memory for the per-address table");
        return 1;
    }
    rc = serve(&srv);
    server_free(&srv);
    privsep_stop();
    log_info("stopped: %lu connection(s) served, %lu refused at max_connections, "
             "%lu refused by per_address limits, %lu full and %lu resumed handshake(s)",
             atomic_load(&srv.n_accepted), atomic_load(&srv.n_rejected),
             atomic_load(&srv.n_refused_addr_conns) + atomic_load(&srv.n_refused_addr_rate),
             atomic_load(&srv.n_full_handshakes), atomic_load(&srv.n_resumed_handshakes));
    tls_global_free();
    libevent_global_shutdown();
    return rc;
}
