/* SPDX-License-Identifier: BSD-2-Clause */
/* notify.h - the systemd service protocols: readiness notification
 * (sd_notify), watchdog keep-alives, and listening sockets passed by
 * socket activation (LISTEN_FDS).  With libsystemd the calls go through
 * it; without, the same documented wire protocols are spoken directly, so
 * Type=notify and tlsterm.socket work in both builds.  Outside systemd
 * every call is a no-op. */
#ifndef TLSTERM_NOTIFY_H
#define TLSTERM_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

#include "server.h"

/* state is e.g. "READY=1\nSTATUS=..." */
void notify(const char *state);
/* The watchdog interval systemd expects keep-alives within; 0: none. */
uint64_t notify_watchdog_usec(void);
/* Takes the sockets systemd passed (if any) into srv->inherited.  Returns
 * -1 with a message on stderr when one is not a TCP listening socket. */
int notify_listen_fds(struct server *srv);

#endif
