/* SPDX-License-Identifier: BSD-2-Clause */
/* proxy_proto.c - PROXY protocol v1/v2 encoding and decoding. */
#include "autoconf.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy_proto.h"

/* ---- encoding ---------------------------------------------------------- */

static int
same_family(const struct pp_info *in)
{
    if (in->src == NULL || in->dst == NULL || in->src->sa_family != in->dst->sa_family)
        return AF_UNSPEC;
    return in->src->sa_family == AF_INET || in->src->sa_family == AF_INET6
           ? in->src->sa_family : AF_UNSPEC;
}

static void
addr_text(const struct sockaddr *sa, char *ip, size_t iplen, unsigned *port)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &s->sin_addr, ip, (socklen_t)iplen);
        *port = ntohs(s->sin_port);
    } else {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &s->sin6_addr, ip, (socklen_t)iplen);
        *port = ntohs(s->sin6_port);
    }
}

ssize_t
pp_encode_v1(const struct pp_info *in, char *buf, size_t len)
{
    char sip[INET6_ADDRSTRLEN], dip[INET6_ADDRSTRLEN];
    unsigned sport, dport;
    int fam = same_family(in), n;

    if (fam == AF_UNSPEC) {
        n = snprintf(buf, len, "PROXY UNKNOWN\r\n");
    } else {
        addr_text(in->src, sip, sizeof(sip), &sport);
        addr_text(in->dst, dip, sizeof(dip), &dport);
        n = snprintf(buf, len, "PROXY %s %s %s %u %u\r\n", fam == AF_INET ? "TCP4" : "TCP6",
                     sip, dip, sport, dport);
    }
    return n < 0 || (size_t)n >= len ? -1 : n;
}

struct out {
    uint8_t *p;
    size_t len, off;
    int overflow;
};

static void
put(struct out *o, const void *data, size_t n)
{
    if (o->overflow || n > o->len - o->off) {
        o->overflow = 1;
        return;
    }
    memcpy(o->p + o->off, data, n);
    o->off += n;
}

static void
put_u8(struct out *o, unsigned v)
{
    uint8_t b = (uint8_t)v;

    put(o, &b, 1);
}

static void
put_u16(struct out *o, size_t v)
{
    uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };

    put(o, b, 2);
}

static void
put_tlv(struct out *o, unsigned type, const void *v, size_t n)
{
    if (n > 0xffff) {
        o->overflow = 1;
        return;
    }
    put_u8(o, type);
    put_u16(o, n);
    put(o, v, n);
}

static void
put_str_tlv(struct out *o, unsigned type, const char *s)
{
    if (s != NULL && *s != '\0')
        put_tlv(o, type, s, strlen(s));
}

static void
put_addresses(struct out *o, const struct pp_info *in, int fam)
{
    if (fam == AF_INET) {
        const struct sockaddr_in *s = (const void *)in->src, *d = (const void *)in->dst;
        put(o, &s->sin_addr, 4);
        put(o, &d->sin_addr, 4);
        put(o, &s->sin_port, 2);
        put(o, &d->sin_port, 2);
    } else if (fam == AF_INET6) {
        const struct sockaddr_in6 *s = (const void *)in->src, *d = (const void *)in->dst;
        put(o, &s->sin6_addr, 16);
        put(o, &d->sin6_addr, 16);
        put(o, &s->sin6_port, 2);
        put(o, &d->sin6_port, 2);
    }
}

/* PP2_TYPE_SSL: client flags, verify (0 = certificate presented and
 * verified), then its own TLVs. */
static void
put_ssl(struct out *o, const struct pp_info *in)
{
    size_t start, body;
    uint8_t client = PP2_CLIENT_SSL;
    uint32_t verify = in->cert_presented && in->cert_verified ? 0 : 1;
    uint8_t v[4] = { (uint8_t)(verify >> 24), (uint8_t)(verify >> 16),
                     (uint8_t)(verify >> 8), (uint8_t)verify };

    if (in->cert_presented)
        client |= PP2_CLIENT_CERT_CONN;
    put_u8(o, PP2_TYPE_SSL);
    start = o->off;
    put_u16(o, 0);                      /* length, patched below */
    put_u8(o, client);
    put(o, v, 4);
    put_str_tlv(o, PP2_SUBTYPE_SSL_VERSION, in->ssl_version);
    put_str_tlv(o, PP2_SUBTYPE_SSL_CIPHER, in->ssl_cipher);
    if (in->cert_presented)
        put_str_tlv(o, PP2_SUBTYPE_SSL_CN, in->cert_cn);
    if (o->overflow)
        return;
    body = o->off - start - 2;
    o->p[start] = (uint8_t)(body >> 8);
    o->p[start + 1] = (uint8_t)body;
}

ssize_t
pp_encode_v2(const struct pp_info *in, uint8_t *buf, size_t len)
{
    struct out o = { buf, len, 0, 0 };
    int fam = same_family(in);
    size_t body;

    put(&o, PP_V2_SIG, PP_V2_SIG_LEN);
    put_u8(&o, 0x21);                   /* version 2, PROXY */
    put_u8(&o, fam == AF_INET ? 0x11 : fam == AF_INET6 ? 0x21 : 0x00);
    put_u16(&o, 0);                     /* length, patched below */
    put_addresses(&o, in, fam);
    put_str_tlv(&o, PP2_TYPE_ALPN, in->alpn);
    put_str_tlv(&o, PP2_TYPE_AUTHORITY, in->authority);
    if (in->unique_id_len > 128)
        return -1;
    if (in->unique_id_len > 0)
        put_tlv(&o, PP2_TYPE_UNIQUE_ID, in->unique_id, in->unique_id_len);
    if (in->ssl)
        put_ssl(&o, in);
    if (o.overflow || o.off - 16 > 0xffff)
        return -1;
    body = o.off - 16;
    buf[14] = (uint8_t)(body >> 8);
    buf[15] = (uint8_t)body;
    return (ssize_t)o.off;
}

/* ---- decoding ---------------------------------------------------------- */

static enum pp_status
bad(const char **why, const char *what)
{
    *why = what;
    return PP_INVALID;
}

static int
parse_port(const char *s, in_port_t *out)
{
    char *end;
    unsigned long v;

    if (*s < '0' || *s > '9' || strlen(s) > 5)
        return -1;
    v = strtoul(s, &end, 10);
    if (*end != '\0' || v > 65535 || (s[0] == '0' && s[1] != '\0'))
        return -1;
    *out = htons((in_port_t)v);
    return 0;
}

static int
parse_ip(int fam, const char *s, in_port_t port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (fam == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)ss;
        a->sin_family = AF_INET;
        a->sin_port = port;
        return inet_pton(AF_INET, s, &a->sin_addr) == 1 ? 0 : -1;
    }
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
    a->sin6_family = AF_INET6;
    a->sin6_port = port;
    return inet_pton(AF_INET6, s, &a->sin6_addr) == 1 ? 0 : -1;
}

/* "PROXY TCP4 SRC DST SPORT DPORT\r\n" (section 2.1). */
static enum pp_status
decode_v1(const uint8_t *buf, size_t len, struct pp_header *out, const char **why)
{
    char line[PP_V1_MAX + 1], *f[7], *save = NULL;
    const uint8_t *crlf;
    size_t n = len < PP_V1_MAX ? len : PP_V1_MAX;
    in_port_t sp, dp;
    int nf = 0, fam;

    if (memcmp(buf, "PROXY ", len < 6 ? len : 6) != 0)
        return bad(why, "not a PROXY protocol header");
    crlf = memmem(buf, n, "\r\n", 2);
    if (crlf == NULL)
        return len < PP_V1_MAX ? PP_NEED_MORE : bad(why, "v1 header without CRLF in 107 bytes");
    memcpy(line, buf, (size_t)(crlf - buf));
    line[crlf - buf] = '\0';
    out->version = 1;
    out->len = (size_t)(crlf - buf) + 2;
    for (char *t = strtok_r(line, " ", &save); t != NULL && nf < 7; t = strtok_r(NULL, " ", &save))
        f[nf++] = t;
    if (nf >= 2 && strcmp(f[1], "UNKNOWN") == 0) {
        out->local = true;
        return PP_OK;
    }
    if (nf != 6)
        return bad(why, "v1 header must be PROXY TCP4|TCP6 SRC DST SPORT DPORT");
    fam = strcmp(f[1], "TCP4") == 0 ? AF_INET : strcmp(f[1], "TCP6") == 0 ? AF_INET6 : 0;
    if (fam == 0)
        return bad(why, "v1 protocol must be TCP4, TCP6 or UNKNOWN");
    if (parse_port(f[4], &sp) != 0 || parse_port(f[5], &dp) != 0)
        return bad(why, "v1 port is not a number from 0 to 65535");
    if (parse_ip(fam, f[2], sp, &out->src) != 0 || parse_ip(fam, f[3], dp, &out->dst) != 0)
        return bad(why, "v1 address does not match its protocol");
    out->local = false;
    return PP_OK;
}

static void
v2_addr(int fam, const uint8_t *a, const uint8_t *port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (fam == AF_INET) {
        struct sockaddr_in *s = (struct sockaddr_in *)ss;
        s->sin_family = AF_INET;
        memcpy(&s->sin_addr, a, 4);
        memcpy(&s->sin_port, port, 2);
    } else {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;
        s->sin6_family = AF_INET6;
        memcpy(&s->sin6_addr, a, 16);
        memcpy(&s->sin6_port, port, 2);
    }
}

/* 12-byte signature, version/command, family/protocol, length (2.2). */
static enum pp_status
decode_v2(const uint8_t *buf, size_t len, struct pp_header *out, const char **why)
{
    size_t body, total;
    unsigned cmd, fam;

    if (memcmp(buf, PP_V2_SIG, len < PP_V2_SIG_LEN ? len : PP_V2_SIG_LEN) != 0)
        return bad(why, "not a PROXY protocol header");
    if (len < 16)
        return PP_NEED_MORE;
    if ((buf[12] >> 4) != 2)
        return bad(why, "v2 header with a version other than 2");
    cmd = buf[12] & 0x0f;
    fam = buf[13];
    body = ((size_t)buf[14] << 8) | buf[15];
    total = 16 + body;
    if (cmd > 1)
        return bad(why, "v2 command is neither LOCAL nor PROXY");
    if (len < total)
        return PP_NEED_MORE;
    out->version = 2;
    out->len = total;
    out->local = cmd == 0 || (fam != 0x11 && fam != 0x21);
    if (out->local)
        return PP_OK;               /* LOCAL, or UDP/unix/unspec: keep the peer */
    if (body < (fam == 0x11 ? 12u : 36u))
        return bad(why, "v2 address block shorter than its family needs");
    if (fam == 0x11) {
        v2_addr(AF_INET, buf + 16, buf + 24, &out->src);
        v2_addr(AF_INET, buf + 20, buf + 26, &out->dst);
    } else {
        v2_addr(AF_INET6, buf + 16, buf + 48, &out->src);
        v2_addr(AF_INET6, buf + 32, buf + 50, &out->dst);
    }
    return PP_OK;
}

enum pp_status
pp_decode(const uint8_t *buf, size_t len, struct pp_header *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    *why = NULL;
    if (len == 0)
        return PP_NEED_MORE;
    if (buf[0] == 'P')
        return decode_v1(buf, len, out, why);
    if (buf[0] == '\r')
        return decode_v2(buf, len, out, why);
    return bad(why, "not a PROXY protocol header");
}
