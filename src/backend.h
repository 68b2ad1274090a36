/* backend.h - choosing a server and starting a non-blocking connect. */
#ifndef TLSTERM_BACKEND_H
#define TLSTERM_BACKEND_H

#include "config.h"

const struct config_addr *backend_pick(const struct config_backend *be, unsigned *rr);
/* Returns a non-blocking socket with connect() started, or -1 with errno.
 * *done is 1 when the connect already completed. */
int backend_connect(const struct config_addr *a, int *done);

#endif
