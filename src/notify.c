/* SPDX-License-Identifier: BSD-2-Clause */
/* notify.c - systemd readiness, watchdog and socket activation. */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "config.h"
#include "log.h"
#include "notify.h"

#define LISTEN_FDS_START 3

#ifdef HAVE_LIBSYSTEMD

void
notify(const char *state)
{
    sd_notify(0, state);
}

uint64_t
notify_watchdog_usec(void)
{
    uint64_t usec = 0;

    return sd_watchdog_enabled(0, &usec) > 0 ? usec : 0;
}

static int
listen_fd_count(void)
{
    return sd_listen_fds(1);
}

#else

/* sd_notify(3): one datagram to $NOTIFY_SOCKET; "@" means the abstract
 * namespace. */
void
notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    size_t plen;
    int fd;

    if (path == NULL || (path[0] != '/' && path[0] != '@') ||
        (plen = strlen(path)) >= sizeof(sun.sun_path))
        return;
    memcpy(sun.sun_path, path, plen);
    if (sun.sun_path[0] == '@')
        sun.sun_path[0] = '\0';
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sun,
               (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen)) < 0)
        log_debug("sd_notify: %s", strerror(errno));
    close(fd);
}

static int
env_is_our_pid(const char *name)
{
    const char *v = getenv(name);

    return v != NULL && strtol(v, NULL, 10) == (long)getpid();
}

uint64_t
notify_watchdog_usec(void)
{
    const char *v = getenv("WATCHDOG_USEC");

    if (v == NULL || (getenv("WATCHDOG_PID") != NULL && !env_is_our_pid("WATCHDOG_PID")))
        return 0;
    return strtoull(v, NULL, 10);
}

static int
listen_fd_count(void)
{
    const char *v = getenv("LISTEN_FDS");
    int n;

    if (v == NULL || !env_is_our_pid("LISTEN_PID"))
        return 0;
    n = atoi(v);
    for (int fd = LISTEN_FDS_START; fd < LISTEN_FDS_START + n; fd++)
        fcntl(fd, F_SETFD, FD_CLOEXEC);
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    return n;
}

#endif

static int
inherit_one(struct inherited_fd *in, int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    struct config_addr a;
    int type = 0, listening = 0;
    socklen_t ol = sizeof(type);

    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &ol) != 0 || type != SOCK_STREAM ||
        (ol = sizeof(listening), getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &ol)) != 0 ||
        !listening || getsockname(fd, (struct sockaddr *)&ss, &len) != 0 ||
        config_addr_from_sockaddr((struct sockaddr *)&ss, len, &a) != 0) {
        fprintf(stderr, "tlsterm: socket activation: fd %d is not a listening TCP socket "
                "(tlsterm.socket needs ListenStream=ADDRESS:PORT)\n", fd);
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    in->fd = fd;
    snprintf(in->text, sizeof(in->text), "%s", a.text);
    in->used = false;
    return 0;
}

int
notify_listen_fds(struct server *srv)
{
    int n = listen_fd_count();

    if (n <= 0)
        return 0;
    srv->inherited = calloc((size_t)n, sizeof(*srv->inherited));
    if (srv->inherited == NULL)
        return -1;
    for (int i = 0; i < n; i++, srv->n_inherited++)
        if (inherit_one(&srv->inherited[i], LISTEN_FDS_START + i) != 0)
            return -1;
    return 0;
}
