/* SPDX-License-Identifier: BSD-2-Clause */
/* conn_hs.h - each worker's handshake thread: the handshake steps that do
 * public-key crypto (ECDHE, signatures, certificate checks: about a
 * millisecond each) run there at the lowest scheduling priority, so the
 * worker's own thread, which relays established connections, takes the
 * CPU from them the moment a socket is ready (docs/design.md,
 * "Established traffic first").  The cheap steps, a whole TLS 1.2
 * resumption among them, stay on the worker: a hand-off costs more than
 * they do.
 *
 * The worker keeps every libevent operation: it hands a connection over
 * with its events off, the handshake thread runs one tls_handshake() on
 * it and hands it back through an event.  A connection is touched by one
 * thread at a time, and all of a worker's handshakes run on one thread, so
 * its mbedTLS keys and RNG still have one user each. */
#ifndef TLSTERM_CONN_HS_H
#define TLSTERM_CONN_HS_H

struct worker;
struct hs_thread;

/* Worker setup (main thread, before the worker runs). */
struct hs_thread *hs_thread_new(struct worker *w);
int hs_thread_start(struct hs_thread *t);
/* Worker thread: waits for the step in progress to end; connections
 * still queued stay in the worker's list and close with it. */
void hs_thread_stop(struct hs_thread *t);
void hs_thread_free(struct hs_thread *t);

#endif
