/* SPDX-License-Identifier: BSD-2-Clause */
/* tls_hello.h - which protocol versions a ClientHello offers.
 *
 * Read from the first bytes a client sends, before mbedTLS parses them,
 * so that a handshake refused for want of a common version can say so:
 * mbedTLS reports it as "no ciphersuites in common" (2.28, a TLS-1.3-only
 * client) or "handshake negotiation failed" (3.6).  Pure: no I/O, no
 * allocation; fuzzed by tests/fuzz/fuzz_tls_hello.c. */
#ifndef TLSTERM_TLS_HELLO_H
#define TLSTERM_TLS_HELLO_H

#include <stddef.h>

/* Bit n set: the client offers TLS 1.(n-1), i.e. record minor version n
 * (bit 1 = TLS 1.0 ... bit 4 = TLS 1.3). */
#define TLS_HELLO_V(minor) (1u << (minor))

/* Returns the set of offered versions (never 0 for a well-formed hello),
 * 0 when buf does not hold a whole ClientHello record (too short, not a
 * handshake record, malformed), so the caller knows nothing. */
unsigned tls_hello_versions(const unsigned char *buf, size_t len);

/* "TLS 1.3", "TLS 1.2 and TLS 1.3", ... for a set, into out. */
const char *tls_hello_describe(unsigned versions, char *out, size_t len);

#endif
