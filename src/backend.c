/* SPDX-License-Identifier: BSD-2-Clause */
/* backend.c - non-blocking connect.  No DNS here: the
 * addresses were resolved when the config was loaded. */
#include "autoconf.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backend.h"

/* On loopback and fast LANs the TCP handshake has usually finished by the
 * time connect() returns EINPROGRESS; asking TCP saves a trip through epoll
 * (two epoll_ctl calls and a wake-up per connection). */
static int
backend_established(int fd)
{
    struct tcp_info ti;
    socklen_t len = sizeof(ti);

    return getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 &&
           ti.tcpi_state == TCP_ESTABLISHED;
}

int
backend_connect(const struct config_addr *a, int *done)
{
    int one = 1;
    int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    if (a->ss.ss_family != AF_UNIX)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (const struct sockaddr *)&a->ss, a->len) == 0) {
        *done = 1;
        return fd;
    }
    if (errno == EINPROGRESS) {
        *done = backend_established(fd);
        return fd;
    }
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
}
