/* SPDX-License-Identifier: BSD-2-Clause */
/* admin.h - the admin listener: plain HTTP, read-only, on a thread and
 * event loop of its own, so a slow or hostile admin client never holds up
 * a worker.  GET /metrics (Prometheus), /healthz (200 serving, 503
 * draining), /status (JSON, or HTML for a browser; status.c). */
#ifndef TLSTERM_ADMIN_H
#define TLSTERM_ADMIN_H

#include "server.h"

struct evbuffer;

/* Main thread, before privileges are dropped: binds cfg->admin.listen.
 * NULL with a message on stderr when it cannot; NULL and no message when
 * the config has no admin section (errno is then 0). */
struct admin *admin_open(struct server *srv);
int admin_start(struct admin *a);
/* Stops the thread, closes the socket (and removes a unix socket file). */
void admin_free(struct admin *a);

/* status.c: the /status document as JSON, and as an HTML page. */
void status_json(struct server *srv, struct evbuffer *out);
void status_html(struct server *srv, struct evbuffer *out);

#endif
