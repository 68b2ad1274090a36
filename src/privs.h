/* SPDX-License-Identifier: BSD-2-Clause */
/* privs.h - dropping root after the sockets are bound and keys are read. */
#ifndef TLSTERM_PRIVS_H
#define TLSTERM_PRIVS_H

#include "config.h"

/* setgroups, setgid, setuid to cfg->run_as, keeping only
 * CAP_NET_BIND_SERVICE (so a reload can still open ports below 1024 when
 * the bounding set allows it).  Returns -1 with the reason logged when
 * any step fails or root could be regained; the caller must then exit.
 * A no-op without run_as.user. */
int privs_drop(const struct config *cfg);

#endif
