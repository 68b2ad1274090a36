/* SPDX-License-Identifier: BSD-2-Clause */
/* proxy_proto.h - the PROXY protocol, versions 1 and 2 (haproxy's
 * proxy-protocol.txt): pure encoders for the header tlsterm writes to a
 * backend, and a decoder for the header an L4 load balancer writes to us.
 * No I/O, no allocation, so both are unit-tested against the spec's bytes. */
#ifndef TLSTERM_PROXY_PROTO_H
#define TLSTERM_PROXY_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#define PP_V1_MAX 107                   /* longest v1 line, CRLF included */
#define PP_V2_SIG "\r\n\r\n\0\r\nQUIT\n"
#define PP_V2_SIG_LEN 12

/* v2 TLV types (section 2.2) */
enum {
    PP2_TYPE_ALPN = 0x01,
    PP2_TYPE_AUTHORITY = 0x02,
    PP2_TYPE_UNIQUE_ID = 0x05,
    PP2_TYPE_SSL = 0x20,
    PP2_SUBTYPE_SSL_VERSION = 0x21,
    PP2_SUBTYPE_SSL_CN = 0x22,
    PP2_SUBTYPE_SSL_CIPHER = 0x23,
};
/* PP2_TYPE_SSL client flags */
enum { PP2_CLIENT_SSL = 0x01, PP2_CLIENT_CERT_CONN = 0x02, PP2_CLIENT_CERT_SESS = 0x04 };

/* What the backend learns about a connection.  Strings may be NULL
 * (omitted); src/dst are AF_INET or AF_INET6 of the same family, anything
 * else is sent as UNKNOWN (v1) / LOCAL-less AF_UNSPEC (v2). */
struct pp_info {
    const struct sockaddr *src;         /* the client */
    const struct sockaddr *dst;         /* the address it connected to */
    const char *alpn;
    const char *authority;              /* SNI */
    bool ssl;
    const char *ssl_version;            /* "TLSv1.2" */
    const char *ssl_cipher;             /* e.g. "ECDHE-ECDSA-CHACHA20-POLY1305" */
    bool cert_presented;                /* client certificate on this connection */
    bool cert_verified;
    const char *cert_cn;
    const uint8_t *unique_id;           /* at most 128 bytes */
    size_t unique_id_len;
};

/* Return the header length, or -1 when it does not fit in len. */
ssize_t pp_encode_v1(const struct pp_info *in, char *buf, size_t len);
ssize_t pp_encode_v2(const struct pp_info *in, uint8_t *buf, size_t len);

enum pp_status {
    PP_NEED_MORE = 0,                   /* a valid prefix: read more */
    PP_OK = 1,
    PP_INVALID = -1,                    /* *why says what is wrong */
};

struct pp_header {
    int version;                        /* 1 or 2 */
    bool local;                         /* v2 LOCAL or v1 UNKNOWN: keep the peer address */
    struct sockaddr_storage src, dst;
    size_t len;                         /* bytes of buf the header used */
};

/* Parses the header at the start of buf (len bytes received so far). */
enum pp_status pp_decode(const uint8_t *buf, size_t len, struct pp_header *out,
                         const char **why);

#endif
