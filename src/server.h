/* server.h - process-wide state shared by all workers.  The config is
 * immutable while workers run; the counters are atomics. */
#ifndef TLSTERM_SERVER_H
#define TLSTERM_SERVER_H

#include <stdatomic.h>

#include "config.h"

struct worker;
struct tls_shared;

struct server {
    const struct config *cfg;
    struct tls_shared *tls;         /* ticket keys and session cache */
    unsigned n_workers;
    struct worker *workers;
    atomic_uint n_open;             /* connections open right now */
    atomic_ulong n_accepted;        /* accepted and served */
    atomic_ulong n_rejected;        /* closed at once: max_connections */
    atomic_ulong next_conn_id;
    atomic_ulong n_full_handshakes;
    atomic_ulong n_resumed_handshakes;
};

#endif
