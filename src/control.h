/* SPDX-License-Identifier: BSD-2-Clause */
/* control.h - the main thread's event loop: signals, reload, drain,
 * watchdog and readiness notifications.  Workers do all the I/O. */
#ifndef TLSTERM_CONTROL_H
#define TLSTERM_CONTROL_H

#include "server.h"

/* Starts the workers, tells systemd READY=1 and runs until stopped.
 * Returns 0 after a clean stop. */
int control_run(struct server *srv);

/* SIGHUP, exported for tests: builds the next generation from
 * srv->config_path and swaps it in, or changes nothing.  0 on success. */
int control_reload(struct server *srv);

#endif
