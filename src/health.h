/* SPDX-License-Identifier: BSD-2-Clause */
/* health.h - active health checks (backends' "health:"), run on the main
 * thread's event loop for the current generation: every interval each
 * server gets a TCP connect, or an HTTP/1.0 GET whose status must match;
 * "fall" failures in a row take it out of the pool, "rise" successes
 * bring it back, and each transition is logged. */
#ifndef TLSTERM_HEALTH_H
#define TLSTERM_HEALTH_H

struct event_base;
struct gen;
struct health;

/* NULL when no backend of g has health checks (or out of memory). */
struct health *health_start(struct gen *g, struct event_base *base);
void health_stop(struct health *h);

#endif
