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

#include <stdbool.h>
#include <stddef.h>

/* Bit n set: the client offers TLS 1.(n-1), i.e. record minor version n
 * (bit 1 = TLS 1.0 ... bit 4 = TLS 1.3). */
#define TLS_HELLO_V(minor) (1u << (minor))

#define TLS_HELLO_EXT_EARLY_DATA 42

/* What one ClientHello offers.  suites points into the caller's buffer. */
struct tls_hello {
    unsigned versions;                  /* TLS_HELLO_V() set */
    const unsigned char *suites;        /* 2-byte ids, big-endian */
    size_t n_suites;
    bool early_data;                    /* it will send 0-RTT data */
    bool sni;                           /* it has a server_name extension */
};

/* Fills h and returns h->versions: the set of offered versions (never 0
 * for a well-formed hello), or 0 when buf does not hold a whole ClientHello
 * record (too short, not a handshake record, malformed), so the caller
 * knows nothing. */
unsigned tls_hello_read(const unsigned char *buf, size_t len, struct tls_hello *h);
unsigned tls_hello_versions(const unsigned char *buf, size_t len);
/* Whether the hello offers one of ids (0-terminated). */
bool tls_hello_offers_suite(const struct tls_hello *h, const int *ids);

/* Whether the first bytes a client sent on a TLS port are an HTTP request
 * line: a method of upper-case letters, '-' or '_' (at most 20), a space,
 * and the start of a request target ('/', '*' or a letter).  A TLS record
 * never starts with a letter.  "PROXY " is a PROXY protocol v1 header,
 * not HTTP.  Bytes still missing count as "no": the handshake decides. */
bool tls_hello_plain_http(const unsigned char *buf, size_t len);
#define TLS_HELLO_HTTP_PEEK 32          /* enough bytes to decide */

/* "TLS 1.3", "TLS 1.2 and TLS 1.3", ... for a set, into out. */
const char *tls_hello_describe(unsigned versions, char *out, size_t len);

#endif
