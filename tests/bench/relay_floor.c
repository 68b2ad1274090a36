/* SPDX-License-Identifier: BSD-2-Clause */
/* relay_floor - the least a user-space TCP proxy can do per request, no TLS.
 *
 * The keep-alive target compares proxies' CPU per request.  On loopback most
 * of that is the kernel's work for the four socket calls a relayed request
 * needs (read the request, write it on, read the answer, write it back) plus
 * the wake-ups they cause.  This relay does exactly that and nothing else:
 * one thread, level-triggered epoll, one recv() and one send() per readable
 * event, no buffering logic beyond a partial-write stop.  Its CPU per
 * request is the floor under any proxy on this kernel (tests/bench/run.sh
 * reports it beside tlsterm, hitch and HAProxy).  Loopback only.
 *
 *   relay_floor LISTEN_PORT BACKEND_PORT
 *
 * Runs until killed.  Not a general proxy: a peer that stops reading makes
 * its partner's bytes wait in a per-side buffer of one read.
 *
 * build: cc -O2 -o relay_floor relay_floor.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUFSZ 16384

struct side {
    int fd;
    struct side *peer;
    char *pend;                 /* bytes read but not yet written to peer */
    size_t off, len;
};

static int ep;
static struct side *graveyard[512];     /* freed after each epoll batch */
static int n_graves;

static void
die(const char *what)
{
    perror(what);
    exit(1);
}

static void
watch(struct side *s, int op, unsigned events)
{
    struct epoll_event ev = { .events = events, .data.ptr = s };

    if (epoll_ctl(ep, op, s->fd, &ev) != 0 && op != EPOLL_CTL_DEL)
        die("epoll_ctl");
}

static void
pair_close(struct side *s)
{
    struct side *p = s->peer;

    close(s->fd);
    close(p->fd);
    s->fd = p->fd = -1;         /* later events of this batch skip them */
    graveyard[n_graves++] = s < p ? s : p;  /* one allocation for both */
}

static void
bury(void)
{
    while (n_graves > 0) {
        struct side *s = graveyard[--n_graves];

        free(s[0].pend);
        free(s[1].pend);
        free(s);
    }
}

/* Write what src holds to its peer; 1 when all of it went. */
static int
flush(struct side *src)
{
    while (src->off < src->len) {
        ssize_t n = send(src->peer->fd, src->pend + src->off, src->len - src->off,
                         MSG_NOSIGNAL);
        if (n < 0)
            return errno == EAGAIN ? 0 : -1;
        src->off += (size_t)n;
    }
    src->off = src->len = 0;
    return 1;
}

static void
on_readable(struct side *s)
{
    ssize_t n = recv(s->fd, s->pend, BUFSZ, 0);
    int f;

    if (n <= 0) {
        if (n < 0 && errno == EAGAIN)
            return;
        pair_close(s);
        return;
    }
    s->len = (size_t)n;
    f = flush(s);
    if (f < 0) {
        pair_close(s);
    } else if (f == 0) {        /* stop reading s until its peer drains */
        watch(s, EPOLL_CTL_MOD, 0);
        watch(s->peer, EPOLL_CTL_MOD, EPOLLIN | EPOLLOUT);
    }
}

static void
on_writable(struct side *s)
{
    struct side *src = s->peer;
    int f = flush(src);

    if (f < 0) {
        pair_close(s);
    } else if (f > 0) {
        watch(s, EPOLL_CTL_MOD, EPOLLIN);
        watch(src, EPOLL_CTL_MOD, EPOLLIN);
    }
}

static int
listen_on(int port)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 4096) != 0)
        die("listen");
    return fd;
}

static void
on_accept(int lfd, int bport)
{
    struct sockaddr_in b = { .sin_family = AF_INET, .sin_port = htons((uint16_t)bport) };
    int one = 1;

    b.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (;;) {
        int cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK), bfd;
        struct side *s;

        if (cfd < 0)
            return;
        /* Blocking connect: on loopback it is immediate, and the floor is
         * about the per-request cost, not the connect. */
        bfd = socket(AF_INET, SOCK_STREAM, 0);
        if (bfd < 0 || connect(bfd, (struct sockaddr *)&b, sizeof(b)) != 0)
            die("backend connect");
        fcntl(bfd, F_SETFL, O_NONBLOCK);
        setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        setsockopt(bfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        s = calloc(2, sizeof(*s));
        s[0].fd = cfd;
        s[1].fd = bfd;
        s[0].peer = &s[1];
        s[1].peer = &s[0];
        s[0].pend = malloc(BUFSZ);
        s[1].pend = malloc(BUFSZ);
        watch(&s[0], EPOLL_CTL_ADD, EPOLLIN);
        watch(&s[1], EPOLL_CTL_ADD, EPOLLIN);
    }
}

int
main(int argc, char **argv)
{
    struct epoll_event evs[256];
    struct side lside = { 0 };
    int bport;

    if (argc != 3)
        return fprintf(stderr, "usage: relay_floor LISTEN_PORT BACKEND_PORT\n"), 2;
    bport = atoi(argv[2]);
    lside.fd = listen_on(atoi(argv[1]));
    if ((ep = epoll_create1(0)) < 0)
        die("epoll_create1");
    watch(&lside, EPOLL_CTL_ADD, EPOLLIN);
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);

        for (int i = 0; i < n; i++) {
            struct side *s = evs[i].data.ptr;

            if (s->fd < 0)
                continue;
            if (s == &lside)
                on_accept(lside.fd, bport);
            else if (evs[i].events & EPOLLOUT)
                on_writable(s);
            else
                on_readable(s);
        }
        bury();
    }
}
