/* SPDX-License-Identifier: BSD-2-Clause */
/* health.c - active health checks (see health.h). */
#include "autoconf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "backend.h"
#include "gen.h"
#include "health.h"
#include "log.h"

struct hcheck {
    struct health *h;
    const struct config_backend *be;
    int idx;
    int fd;                     /* -1 between checks */
    struct event *tick;         /* every interval */
    struct event *io;           /* the check in progress, with its timeout */
    char buf[64];               /* start of the HTTP response */
    size_t have;
    bool sent;
    unsigned oks, fails;
    bool down;
};

struct health {
    struct gen *g;
    struct event_base *base;
    struct hcheck *checks;
    size_t n;
};

static struct timeval
ms_timeval(uint64_t ms)
{
    return (struct timeval){ (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
}

static const struct config_health *
hc_of(const struct hcheck *c)
{
    return &c->be->health;
}

static void
check_end(struct hcheck *c)
{
    if (c->io != NULL) {
        event_free(c->io);
        c->io = NULL;
    }
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
}

static void
check_result(struct hcheck *c, bool ok, const char *why)
{
    const struct config_health *hc = hc_of(c);
    const char *addr = c->be->servers[c->idx].text;

    check_end(c);
    if (ok) {
        c->fails = 0;
        if (c->down && ++c->oks >= hc->rise) {
            c->down = false;
            pool_set_healthy(&c->h->g->pool, c->be, c->idx, true);
            log_info("backend=%s server=%s is UP (health check passed %u time(s))",
                     c->be->name, addr, c->oks);
        }
        return;
    }
    c->oks = 0;
    if (!c->down && ++c->fails >= hc->fall) {
        c->down = true;
        pool_set_healthy(&c->h->g->pool, c->be, c->idx, false);
        log_warn("backend=%s server=%s is DOWN (health check failed %u time(s): %s)",
                 c->be->name, addr, c->fails, why);
    }
}

static void
wait_io(struct hcheck *c, short what, void (*cb)(evutil_socket_t, short, void *))
{
    struct timeval tv = ms_timeval(hc_of(c)->timeout_ms);

    if (c->io != NULL)
        event_free(c->io);
    c->io = event_new(c->h->base, c->fd, what, cb, c);
    if (c->io == NULL || event_add(c->io, &tv) != 0)
        check_result(c, false, "out of memory");
}

/* "HTTP/1.1 200 OK": the status must be the expected one. */
static void
http_verdict(struct hcheck *c)
{
    unsigned status = 0;
    char why[64];

    c->buf[c->have] = '\0';
    if (sscanf(c->buf, "HTTP/1.%*[01] %3u", &status) != 1) {
        check_result(c, false, "no HTTP status line");
        return;
    }
    snprintf(why, sizeof(why), "status %u, expected %u", status, hc_of(c)->expect_status);
    check_result(c, status == hc_of(c)->expect_status, why);
}

static void
on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct hcheck *c = arg;
    ssize_t n;

    if (what & EV_TIMEOUT) {
        check_result(c, false, "timeout");
        return;
    }
    n = recv(fd, c->buf + c->have, sizeof(c->buf) - 1 - c->have, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        wait_io(c, EV_READ, on_readable);
        return;
    }
    if (n < 0) {
        check_result(c, false, strerror(errno));
        return;
    }
    c->have += (size_t)n;
    if (n == 0 || c->have == sizeof(c->buf) - 1 || memchr(c->buf, '\n', c->have))
        http_verdict(c);
    else
        wait_io(c, EV_READ, on_readable);
}

static void
send_request(struct hcheck *c)
{
    char req[512];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: "
                     "tlsterm-health\r\nConnection: close\r\n\r\n", hc_of(c)->path ?
                     hc_of(c)->path : "/", c->be->servers[c->idx].text);

    if (n < 0 || (size_t)n >= sizeof(req) || send(c->fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        check_result(c, false, "cannot send the request");
        return;
    }
    c->sent = true;
    wait_io(c, EV_READ, on_readable);
}

static void
on_connected(evutil_socket_t fd, short what, void *arg)
{
    struct hcheck *c = arg;
    int err = 0;
    socklen_t len = sizeof(err);

    if (what & EV_TIMEOUT) {
        check_result(c, false, "connect timeout");
        return;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    if (err != 0)
        check_result(c, false, strerror(err));
    else if (hc_of(c)->type == HEALTH_TCP)
        check_result(c, true, NULL);
    else
        send_request(c);
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct hcheck *c = arg;
    int done = 0;

    (void)fd;
    (void)what;
    if (c->fd >= 0)
        return;                 /* the previous check is still running */
    c->have = 0;
    c->sent = false;
    c->fd = backend_connect(&c->be->servers[c->idx], &done);
    if (c->fd < 0)
        check_result(c, false, strerror(errno));
    else
        wait_io(c, EV_WRITE, on_connected);
}

static size_t
count_checks(const struct config *cfg)
{
    size_t n = 0;

    for (size_t i = 0; i < cfg->n_backends; i++)
        if (cfg->backends[i].health.type != HEALTH_NONE)
            n += cfg->backends[i].n_servers;
    return n;
}

static int
check_init(struct health *h, struct hcheck *c, const struct config_backend *be, int idx)
{
    struct timeval tv = ms_timeval(be->health.interval_ms);

    c->h = h;
    c->be = be;
    c->idx = idx;
    c->fd = -1;
    c->tick = event_new(h->base, -1, EV_PERSIST, on_tick, c);
    if (c->tick == NULL || event_add(c->tick, &tv) != 0)
        return -1;
    event_active(c->tick, EV_TIMEOUT, 0);       /* first check now */
    return 0;
}

struct health *
health_start(struct gen *g, struct event_base *base)
{
    size_t n = count_checks(g->cfg), k = 0;
    struct health *h;

    if (n == 0 || (h = calloc(1, sizeof(*h))) == NULL)
        return NULL;
    h->g = g;
    h->base = base;
    h->checks = calloc(n, sizeof(*h->checks));
    if (h->checks == NULL) {
        free(h);
        return NULL;
    }
    for (size_t i = 0; i < g->cfg->n_backends; i++) {
        const struct config_backend *be = &g->cfg->backends[i];
        for (size_t j = 0; be->health.type != HEALTH_NONE && j < be->n_servers; j++, k++) {
            h->n++;
            if (check_init(h, &h->checks[k], be, (int)j) != 0)
                log_error("backend=%s server=%s: cannot schedule health checks", be->name,
                          be->servers[j].text);
        }
    }
    return h;
}

void
health_stop(struct health *h)
{
    if (h == NULL)
        return;
    for (size_t i = 0; i < h->n; i++) {
        check_end(&h->checks[i]);
        if (h->checks[i].tick != NULL)
            event_free(h->checks[i].tick);
    }
    free(h->checks);
    free(h);
}
