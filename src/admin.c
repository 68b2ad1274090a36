/* SPDX-License-Identifier: BSD-2-Clause */
/* admin.c - the admin listener (admin.h).
 *
 * Its own thread and event_base: the workers never wait for it, and it
 * reads their counters without a lock (metrics.h).  One request per
 * connection, parsed by http-parser; the head must arrive whole within
 * ADMIN_HEAD_MS and fit ADMIN_HEAD_MAX, the answer is written with a
 * deadline, and at most ADMIN_CLIENTS are served at once, so a slow or
 * hostile client costs a bounded amount of this thread and nothing of
 * the data path. */
#include "autoconf.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <http_parser.h>

#include "admin.h"
#include "gen.h"
#include "log.h"

#define ADMIN_HEAD_MAX 8192
#define ADMIN_HEAD_MS 5000
#define ADMIN_WRITE_S 10
#define ADMIN_CLIENTS 64

struct admin {
    struct server *srv;
    int fd;
    char text[128];
    char unix_path[108];            /* a unix socket file we created; "" for TCP */
    pthread_t thread;
    bool started;
    struct event_base *base;
    struct event *accept_ev, *resume_ev, *stop_ev;
    unsigned n_clients;
    struct admin_client *clients;   /* freed with the admin at exit */
};

struct admin_client {
    struct admin *a;
    struct admin_client *prev, *next;
    struct bufferevent *bev;
    struct event *deadline;
    http_parser p;
    size_t head;                    /* bytes of the request head so far */
    char url[512];
    size_t url_len;
    bool url_long;
    char field[16];                 /* the header name being read, lower case */
    size_t field_len;
    bool in_value;
    bool wants_html;
    bool answered;
    char line[64];                  /* the request line's start, for its version */
    size_t line_len;
};

/* ---- one client ---------------------------------------------------- */

static void
client_free(struct admin_client *c)
{
    c->a->n_clients--;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        c->a->clients = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    bufferevent_free(c->bev);
    if (c->deadline != NULL)
        event_free(c->deadline);
    free(c);
}

static void
answer(struct admin_client *c, int status, const char *reason, const char *type,
       struct evbuffer *body, const char *extra)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    size_t len = body != NULL ? evbuffer_get_length(body) : 0;

    evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                        "Cache-Control: no-store\r\n%sConnection: close\r\n\r\n", status,
                        reason, type, len, extra != NULL ? extra : "");
    if (body != NULL && c->p.method != HTTP_HEAD)
        evbuffer_add_buffer(out, body);
    c->answered = true;
    bufferevent_disable(c->bev, EV_READ);
    bufferevent_enable(c->bev, EV_WRITE);
}

static void
answer_text(struct admin_client *c, int status, const char *reason, const char *text,
            const char *extra)
{
    struct evbuffer *b = evbuffer_new();

    if (b != NULL)
        evbuffer_add(b, text, strlen(text));
    answer(c, status, reason, "text/plain; charset=utf-8", b, extra);
    if (b != NULL)
        evbuffer_free(b);
}

static bool
path_is(const char *url, const char *path)
{
    size_t n = strlen(path);

    return strncmp(url, path, n) == 0 && (url[n] == '\0' || url[n] == '?');
}

/* Debian's http-parser is built lenient and takes "HTTX/1.1"; the
 * request line must really end in HTTP/1.0 or HTTP/1.1. */
static bool
version_ok(const struct admin_client *c)
{
    const char *end = memchr(c->line, '\n', c->line_len);
    size_t n = end != NULL ? (size_t)(end - c->line) : 0;

    if (n > 0 && c->line[n - 1] == '\r')
        n--;
    if (end == NULL)                /* a line longer than we keep: the URL's */
        return c->p.http_major == 1 && c->p.http_minor <= 1;
    return n >= 9 && (memcmp(c->line + n - 9, " HTTP/1.0", 9) == 0 ||
                      memcmp(c->line + n - 9, " HTTP/1.1", 9) == 0);
}

static void
route(struct admin_client *c)
{
    struct server *srv = c->a->srv;
    struct evbuffer *b = evbuffer_new();
    const char *url = c->url;

    if (!version_ok(c)) {
        answer_text(c, 400, "Bad Request", "HTTP/1.0 or HTTP/1.1 only\n", NULL);
    } else if (b == NULL || c->url_long) {
        answer_text(c, c->url_long ? 414 : 500, c->url_long ? "URI Too Long" : "Error",
                    "no\n", NULL);
    } else if (c->p.method != HTTP_GET && c->p.method != HTTP_HEAD) {
        answer_text(c, 405, "Method Not Allowed", "only GET and HEAD\n",
                    "Allow: GET, HEAD\r\n");
    } else if (path_is(url, "/metrics")) {
        if (metrics_render(&srv->metrics, b) == 0)
            answer(c, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", b, NULL);
        else
            answer_text(c, 503, "Service Unavailable", "starting\n", NULL);
    } else if (path_is(url, "/healthz")) {
        if (atomic_load(&srv->metrics.draining))
            answer_text(c, 503, "Service Unavailable", "draining\n", NULL);
        else
            answer_text(c, 200, "OK", "ok\n", NULL);
    } else if (path_is(url, "/status.html") || (path_is(url, "/status") && c->wants_html)) {
        status_html(srv, b);
        answer(c, 200, "OK", "text/html; charset=utf-8", b, NULL);
    } else if (path_is(url, "/status") || path_is(url, "/status.json")) {
        status_json(srv, b);
        answer(c, 200, "OK", "application/json", b, NULL);
    } else {
        answer_text(c, 404, "Not Found", "not found: try /metrics, /healthz or /status\n",
                    NULL);
    }
    if (b != NULL)
        evbuffer_free(b);
}

static int
on_url(http_parser *p, const char *at, size_t len)
{
    struct admin_client *c = p->data;

    if (c->url_len + len >= sizeof(c->url)) {
        c->url_long = true;
        return 0;
    }
    memcpy(c->url + c->url_len, at, len);
    c->url_len += len;
    c->url[c->url_len] = '\0';
    return 0;
}

static int
on_field(http_parser *p, const char *at, size_t len)
{
    struct admin_client *c = p->data;

    if (c->in_value)
        c->field_len = 0;
    c->in_value = false;
    for (size_t i = 0; i < len && c->field_len < sizeof(c->field) - 1; i++)
        c->field[c->field_len++] = (char)((at[i] >= 'A' && at[i] <= 'Z') ? at[i] + 32 : at[i]);
    c->field[c->field_len] = '\0';
    return 0;
}

/* Accept: text/html (a browser) gets the page from /status; a value
 * split across reads is looked at piecewise, which only a client that
 * trickles its head can make miss. */
static int
on_value(http_parser *p, const char *at, size_t len)
{
    struct admin_client *c = p->data;

    c->in_value = true;
    if (strcmp(c->field, "accept") == 0 && memmem(at, len, "text/html", 9) != NULL)
        c->wants_html = true;
    return 0;
}

static int
on_headers_complete(http_parser *p)
{
    struct admin_client *c = p->data;

    route(c);
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings settings = {
    .on_url = on_url,
    .on_header_field = on_field,
    .on_header_value = on_value,
    .on_headers_complete = on_headers_complete,
};

static void
client_read(struct bufferevent *bev, void *arg)
{
    struct admin_client *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    char buf[1024];
    int n;

    /* never more than ADMIN_HEAD_MAX bytes to the parser: a head that has
     * not ended by then is too long, however the reads fall */
    while (!c->answered && (n = evbuffer_remove(in, buf, sizeof(buf))) > 0) {
        for (int i = 0; i < n && c->line_len < sizeof(c->line) - 1 &&
                        (c->line_len == 0 || c->line[c->line_len - 1] != '\n'); i++)
            c->line[c->line_len++] = buf[i];
        size_t feed = (size_t)n < ADMIN_HEAD_MAX - c->head ? (size_t)n : ADMIN_HEAD_MAX - c->head;
        size_t done = http_parser_execute(&c->p, &settings, buf, feed);
        c->head += feed;
        if (c->answered)
            break;
        if (HTTP_PARSER_ERRNO(&c->p) != HPE_OK || done != feed)
            answer_text(c, 400, "Bad Request", "malformed request\n", NULL);
        else if (c->head == ADMIN_HEAD_MAX)
            answer_text(c, 431, "Request Header Fields Too Large", "request head over 8 KiB\n",
                        NULL);
    }
}

static void
client_written(struct bufferevent *bev, void *arg)
{
    struct admin_client *c = arg;

    if (c->answered && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        client_free(c);
}

/* EOF, error or the write deadline: nothing more to say to this client. */
static void
client_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    (void)what;
    client_free(arg);
}

static void
client_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct admin_client *c = arg;

    (void)fd;
    (void)what;
    if (!c->answered)
        client_free(c);
}

static void
client_new(struct admin *a, int fd)
{
    struct admin_client *c = calloc(1, sizeof(*c));
    struct timeval head = { ADMIN_HEAD_MS / 1000, (ADMIN_HEAD_MS % 1000) * 1000 };
    struct timeval wr = { ADMIN_WRITE_S, 0 };

    if (c == NULL ||
        (c->bev = bufferevent_socket_new(a->base, fd, BEV_OPT_CLOSE_ON_FREE)) == NULL) {
        free(c);
        close(fd);
        return;
    }
    c->a = a;
    a->n_clients++;
    c->next = a->clients;
    if (a->clients != NULL)
        a->clients->prev = c;
    a->clients = c;
    c->deadline = evtimer_new(a->base, client_deadline, c);
    if (c->deadline == NULL) {
        client_free(c);
        return;
    }
    http_parser_init(&c->p, HTTP_REQUEST);
    c->p.data = c;
    bufferevent_setcb(c->bev, client_read, client_written, client_event, c);
    bufferevent_set_timeouts(c->bev, NULL, &wr);
    bufferevent_enable(c->bev, EV_READ);
    evtimer_add(c->deadline, &head);
}

/* ---- the listener and its thread ------------------------------------ */

static void
admin_resume(evutil_socket_t fd, short what, void *arg)
{
    struct admin *a = arg;

    (void)fd;
    (void)what;
    event_add(a->accept_ev, NULL);
}

static void
admin_accept(evutil_socket_t lfd, short what, void *arg)
{
    struct admin *a = arg;
    struct timeval rest = { 1, 0 };

    (void)what;
    for (int i = 0; i < 16; i++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                log_warn("admin: accept: %s; pausing the admin listener for 1 s",
                         strerror(errno));
                event_del(a->accept_ev);
                evtimer_add(a->resume_ev, &rest);
            }
            return;
        }
        if (a->n_clients >= ADMIN_CLIENTS) {
            close(fd);          /* a flood of admin clients gets nothing */
            continue;
        }
        client_new(a, fd);
    }
}

static void
admin_stop_cb(evutil_socket_t fd, short what, void *arg)
{
    struct admin *a = arg;

    (void)fd;
    (void)what;
    event_base_loopbreak(a->base);
}

static void *
admin_main(void *arg)
{
    struct admin *a = arg;

    event_base_dispatch(a->base);
    return NULL;
}

/* A unix socket left by a process that died is removed; one that still
 * answers belongs to a running instance and is left alone. */
static int
unix_prepare(const struct sockaddr_un *un, socklen_t len)
{
    struct stat st;
    int fd;

    if (lstat(un->sun_path, &st) != 0)
        return 0;
    if (!S_ISSOCK(st.st_mode)) {
        errno = EEXIST;
        return -1;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (const struct sockaddr *)un, len) == 0) {
        close(fd);
        errno = EADDRINUSE;
        return -1;
    }
    if (fd >= 0)
        close(fd);
    return unlink(un->sun_path);
}

static int
admin_bind(struct admin *a, const struct config_addr *addr, const struct config *cfg)
{
    int one = 1;
    bool is_unix = addr->ss.ss_family == AF_UNIX;

    if (is_unix && unix_prepare((const struct sockaddr_un *)&addr->ss, addr->len) != 0)
        return -1;
    a->fd = socket(addr->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (a->fd < 0)
        return -1;
    if (!is_unix)
        setsockopt(a->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(a->fd, (const struct sockaddr *)&addr->ss, addr->len) != 0)
        return -1;
    if (is_unix) {
        snprintf(a->unix_path, sizeof(a->unix_path), "%s",
                 ((const struct sockaddr_un *)&addr->ss)->sun_path);
        /* the service's user and group may use it, not everyone */
        if (chmod(a->unix_path, 0660) != 0 ||
            (cfg->run_as.user != NULL &&
             chown(a->unix_path, cfg->run_as.uid, cfg->run_as.gid) != 0))
            return -1;
    }
    return listen(a->fd, 64);
}

struct admin *
admin_open(struct server *srv)
{
    const struct config *cfg = srv->gen->cfg;
    struct admin *a;

    errno = 0;
    if (!cfg->admin.enabled)
        return NULL;
    if ((a = calloc(1, sizeof(*a))) == NULL)
        return NULL;
    a->srv = srv;
    a->fd = -1;
    snprintf(a->text, sizeof(a->text), "%s", cfg->admin.listen.text);
    if (admin_bind(a, &cfg->admin.listen, cfg) != 0) {
        log_error("%s:%d: admin.listen: cannot listen on %s: %s", cfg->path,
                  cfg->admin.listen.pos.line, a->text, strerror(errno));
        admin_free(a);
        errno = EINVAL;
        return NULL;
    }
    a->base = event_base_new();
    if (a->base != NULL) {
        a->accept_ev = event_new(a->base, a->fd, EV_READ | EV_PERSIST, admin_accept, a);
        a->resume_ev = evtimer_new(a->base, admin_resume, a);
        a->stop_ev = event_new(a->base, -1, 0, admin_stop_cb, a);
    }
    if (a->base == NULL || a->accept_ev == NULL || a->resume_ev == NULL || a->stop_ev == NULL ||
        event_add(a->accept_ev, NULL) != 0) {
        log_error("admin: out of memory");
        admin_free(a);
        errno = ENOMEM;
        return NULL;
    }
    return a;
}

int
admin_start(struct admin *a)
{
    if (a == NULL)
        return 0;
    if (pthread_create(&a->thread, NULL, admin_main, a) != 0)
        return -1;
    a->started = true;
    log_info("admin listener on %s (/metrics, /healthz, /status)", a->text);
    return 0;
}

void
admin_free(struct admin *a)
{
    if (a == NULL)
        return;
    if (a->started) {
        event_active(a->stop_ev, 0, 0);
        pthread_join(a->thread, NULL);
    }
    while (a->clients != NULL)
        client_free(a->clients);
    if (a->accept_ev != NULL)
        event_free(a->accept_ev);
    if (a->resume_ev != NULL)
        event_free(a->resume_ev);
    if (a->stop_ev != NULL)
        event_free(a->stop_ev);
    if (a->base != NULL)
        event_base_free(a->base);
    if (a->fd >= 0)
        close(a->fd);
    if (a->unix_path[0] != '\0')
        unlink(a->unix_path);
    free(a);
}
