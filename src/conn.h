/* SPDX-License-Identifier: BSD-2-Clause */
/* conn.h - one client connection: TLS handshake, backend connect, relay. */
#ifndef TLSTERM_CONN_H
#define TLSTERM_CONN_H

#include <sys/socket.h>

struct worker;
struct listener;

/* Takes ownership of fd; the caller already counted it in srv->n_open. */
void conn_accept(struct worker *w, const struct listener *l, int fd,
                 const struct sockaddr_storage *peer);
/* The worker began to drain (a stop): forwarded_headers connections end
 * between requests, idle ones at once (conn_http.c); others carry on. */
void conn_drain_start(struct worker *w);
/* Closes every connection of the worker (shutdown). */
void conn_close_all(struct worker *w, const char *reason);

#endif
