/* SPDX-License-Identifier: BSD-2-Clause */
/* backend.h - starting a non-blocking connect (pool.h chooses the server). */
#ifndef TLSTERM_BACKEND_H
#define TLSTERM_BACKEND_H

#include "config.h"

/* Returns a non-blocking socket with connect() started, or -1 with errno.
 * *done is 1 when the connect already completed. */
int backend_connect(const struct config_addr *a, int *done);

#endif
