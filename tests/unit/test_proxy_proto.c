/* SPDX-License-Identifier: BSD-2-Clause */
#include "autoconf.h"
/* test_proxy_proto.c - PROXY protocol v1/v2 encoder and decoder against
 * the byte layouts of haproxy's doc/proxy-protocol.txt, including the v1
 * examples it gives and a v2 header captured from HAProxy itself. */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proxy_proto.h"

static struct sockaddr_in
v4(const char *ip, unsigned port)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };

    inet_pton(AF_INET, ip, &a.sin_addr);
    return a;
}

static struct sockaddr_in6
v6(const char *ip, unsigned port)
{
    struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port) };

    inet_pton(AF_INET6, ip, &a.sin6_addr);
    return a;
}

/* Section 2.1's example line. */
static void
test_v1_tcp4(void **state)
{
    struct sockaddr_in s = v4("192.168.0.1", 56324), d = v4("192.168.0.11", 443);
    struct pp_info in = { .src = (void *)&s, .dst = (void *)&d };
    char buf[PP_V1_MAX];
    ssize_t n = pp_encode_v1(&in, buf, sizeof(buf));

    (void)state;
    assert_int_equal(n, strlen("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"));
    assert_memory_equal(buf, "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n", (size_t)n);
}

/* The spec's worst cases: 56 bytes for TCP4, 104 for TCP6. */
static void
test_v1_longest(void **state)
{
    static const char tcp6[] = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                               "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    struct sockaddr_in s = v4("255.255.255.255", 65535), d = v4("255.255.255.255", 65535);
    struct sockaddr_in6 s6 = v6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535);
    struct pp_info in = { .src = (void *)&s, .dst = (void *)&d };
    char buf[PP_V1_MAX];

    (void)state;
    assert_int_equal(pp_encode_v1(&in, buf, sizeof(buf)), 56);
    in.src = in.dst = (void *)&s6;
    assert_int_equal(pp_encode_v1(&in, buf, sizeof(buf)), 104);
    assert_memory_equal(buf, tcp6, 104);
    assert_int_equal(pp_encode_v1(&in, buf, 104), -1);          /* no room for the NUL */
}

static void
test_v1_unknown(void **state)
{
    struct sockaddr_in s = v4("10.0.0.1", 1);
    struct sockaddr_in6 d = v6("::1", 2);
    struct pp_info in = { .src = (void *)&s, .dst = (void *)&d };   /* mixed families */
    char buf[PP_V1_MAX];

    (void)state;
    assert_int_equal(pp_encode_v1(&in, buf, sizeof(buf)), 15);
    assert_memory_equal(buf, "PROXY UNKNOWN\r\n", 15);
}

/* What HAProxy 2.x sends for 172.19.0.1:42578 -> 172.19.0.3:80 with
 * send-proxy-v2 (no TLVs). */
static const uint8_t haproxy_v2[] = {
    0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
    0x21, 0x11, 0x00, 0x0c,
    0xac, 0x13, 0x00, 0x01, 0xac, 0x13, 0x00, 0x03, 0xa6, 0x52, 0x00, 0x50,
};

static void
test_v2_plain_matches_haproxy(void **state)
{
    struct sockaddr_in s = v4("172.19.0.1", 42578), d = v4("172.19.0.3", 80);
    struct pp_info in = { .src = (void *)&s, .dst = (void *)&d };
    uint8_t buf[256];

    (void)state;
    assert_int_equal(pp_encode_v2(&in, buf, sizeof(buf)), sizeof(haproxy_v2));
    assert_memory_equal(buf, haproxy_v2, sizeof(haproxy_v2));
    assert_int_equal(pp_encode_v2(&in, buf, sizeof(haproxy_v2) - 1), -1);
}

/* TLVs: ALPN, authority, unique id, then SSL with version, cipher, CN. */
static void
test_v2_tlvs(void **state)
{
    static const uint8_t uid[4] = { 1, 2, 3, 4 };
    static const uint8_t want[] = {
        0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
        0x21, 0x21, 0x00, 0x24 + 5 + 14 + 7 + 32,
        /* ::1 -> ::2, 1000 -> 443 */
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
        0x03, 0xe8, 0x01, 0xbb,
        0x01, 0x00, 0x02, 'h', '2',                                  /* ALPN */
        0x02, 0x00, 0x0b, 'e', 'x', 'a', 'm', 'p', 'l', 'e', '.', 'c', 'o', 'm',
        0x05, 0x00, 0x04, 1, 2, 3, 4,                                /* unique id */
        0x20, 0x00, 0x1d,                                            /* SSL, 29 bytes */
        0x03,                                                        /* SSL | CERT_CONN */
        0x00, 0x00, 0x00, 0x00,                                      /* verified */
        0x21, 0x00, 0x07, 'T', 'L', 'S', 'v', '1', '.', '2',
        0x23, 0x00, 0x03, 'A', 'E', 'S',
        0x22, 0x00, 0x05, 'a', 'l', 'i', 'c', 'e',
    };
    struct sockaddr_in6 s = v6("::1", 1000), d = v6("::2", 443);
    struct pp_info in = {
        .src = (void *)&s, .dst = (void *)&d, .alpn = "h2", .authority = "example.com",
        .unique_id = uid, .unique_id_len = 4, .ssl = true, .ssl_version = "TLSv1.2",
        .ssl_cipher = "AES", .cert_presented = true, .cert_verified = true, .cert_cn = "alice",
    };
    uint8_t buf[512];
    ssize_t n = pp_encode_v2(&in, buf, sizeof(buf));

    (void)state;
    assert_int_equal(n, sizeof(want));
    assert_memory_equal(buf, want, sizeof(want));
    /* no client certificate: verify is non-zero, no CN, no CERT_CONN */
    in.cert_presented = in.cert_verified = false;
    n = pp_encode_v2(&in, buf, sizeof(buf));
    assert_int_equal(n, sizeof(want) - 8);
    assert_int_equal(buf[16 + 36 + 5 + 14 + 7 + 3], PP2_CLIENT_SSL);
    assert_int_equal(buf[16 + 36 + 5 + 14 + 7 + 3 + 4], 1);
}

static void
test_decode_v1(void **state)
{
    static const char line[] = "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET /";
    struct pp_header h;
    const char *why;
    struct sockaddr_in *s = (struct sockaddr_in *)&h.src, *d = (struct sockaddr_in *)&h.dst;

    (void)state;
    assert_int_equal(pp_decode((const uint8_t *)line, strlen(line), &h, &why), PP_OK);
    assert_int_equal(h.version, 1);
    assert_false(h.local);
    assert_int_equal(h.len, strlen(line) - strlen("GET /"));
    assert_int_equal(s->sin_family, AF_INET);
    assert_int_equal(ntohs(s->sin_port), 56324);
    assert_int_equal(ntohl(s->sin_addr.s_addr), 0xc0a80001);
    assert_int_equal(ntohs(d->sin_port), 443);
    /* every prefix is incomplete, not wrong */
    for (size_t i = 0; i < strlen(line) - strlen("GET /"); i++)
        assert_int_equal(pp_decode((const uint8_t *)line, i, &h, &why), PP_NEED_MORE);
}

static void
test_decode_v1_unknown_and_v6(void **state)
{
    static const char unk[] = "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n";
    static const char six[] = "PROXY TCP6 2001:db8::1 2001:db8::2 8080 443\r\n";
    struct pp_header h;
    const char *why;

    (void)state;
    assert_int_equal(pp_decode((const uint8_t *)unk, strlen(unk), &h, &why), PP_OK);
    assert_true(h.local);
    assert_int_equal(h.len, strlen(unk));
    assert_int_equal(pp_decode((const uint8_t *)six, strlen(six), &h, &why), PP_OK);
    assert_int_equal(h.src.ss_family, AF_INET6);
    assert_int_equal(ntohs(((struct sockaddr_in6 *)&h.src)->sin6_port), 8080);
}

static void
test_decode_v1_invalid(void **state)
{
    static const char *const bad[] = {
        "PROXY TCP5 1.2.3.4 1.2.3.4 1 2\r\n",
        "PROXY TCP4 1.2.3.4 1.2.3.4 1 65536\r\n",
        "PROXY TCP4 1.2.3.4 1.2.3.4 1\r\n",
        "PROXY TCP4 ::1 ::1 1 2\r\n",
        "PROXY TCP4 1.2.3.4 1.2.3.4 1 2 3\r\n",
        "PROXY TCP4 1.2.3.4 1.2.3.4 01 2\r\n",
        "GET / HTTP/1.1\r\n",
        "PROXX TCP4",
    };
    struct pp_header h;
    const char *why;
    char longline[200];

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(pp_decode((const uint8_t *)bad[i], strlen(bad[i]), &h, &why),
                         PP_INVALID);
        assert_non_null(why);
    }
    memset(longline, 'x', sizeof(longline));
    memcpy(longline, "PROXY ", 6);
    assert_int_equal(pp_decode((const uint8_t *)longline, sizeof(longline), &h, &why),
                     PP_INVALID);
    assert_string_equal(why, "v1 header without CRLF in 107 bytes");
}

static void
test_decode_v2(void **state)
{
    uint8_t buf[64];
    struct pp_header h;
    const char *why;

    (void)state;
    memcpy(buf, haproxy_v2, sizeof(haproxy_v2));
    memcpy(buf + sizeof(haproxy_v2), "GET", 3);
    assert_int_equal(pp_decode(buf, sizeof(haproxy_v2) + 3, &h, &why), PP_OK);
    assert_int_equal(h.version, 2);
    assert_int_equal(h.len, sizeof(haproxy_v2));
    assert_int_equal(ntohs(((struct sockaddr_in *)&h.src)->sin_port), 42578);
    assert_int_equal(ntohl(((struct sockaddr_in *)&h.dst)->sin_addr.s_addr), 0xac130003);
    for (size_t i = 0; i < sizeof(haproxy_v2); i++)
        assert_int_equal(pp_decode(buf, i, &h, &why), PP_NEED_MORE);
    /* LOCAL (health checks of the balancer): keep the peer address */
    buf[12] = 0x20;
    assert_int_equal(pp_decode(buf, sizeof(haproxy_v2), &h, &why), PP_OK);
    assert_true(h.local);
    /* version 3, command 2, short address block */
    buf[12] = 0x31;
    assert_int_equal(pp_decode(buf, sizeof(haproxy_v2), &h, &why), PP_INVALID);
    buf[12] = 0x22;
    assert_int_equal(pp_decode(buf, sizeof(haproxy_v2), &h, &why), PP_INVALID);
    buf[12] = 0x21;
    buf[15] = 4;
    assert_int_equal(pp_decode(buf, 20, &h, &why), PP_INVALID);
}

/* What we encode, we decode (TLVs are skipped by the decoder). */
static void
test_round_trip(void **state)
{
    struct sockaddr_in6 s = v6("2001:db8::7", 5555), d = v6("2001:db8::8", 443);
    struct pp_info in = { .src = (void *)&s, .dst = (void *)&d, .alpn = "http/1.1",
                          .authority = "a.example", .ssl = true, .ssl_version = "TLSv1.2" };
    uint8_t buf[512];
    char line[PP_V1_MAX];
    struct pp_header h;
    const char *why;
    ssize_t n;

    (void)state;
    n = pp_encode_v2(&in, buf, sizeof(buf));
    assert_true(n > 0);
    assert_int_equal(pp_decode(buf, (size_t)n, &h, &why), PP_OK);
    assert_int_equal(h.len, (size_t)n);
    assert_memory_equal(&((struct sockaddr_in6 *)&h.src)->sin6_addr, &s.sin6_addr, 16);
    n = pp_encode_v1(&in, line, sizeof(line));
    assert_int_equal(pp_decode((const uint8_t *)line, (size_t)n, &h, &why), PP_OK);
    assert_int_equal(ntohs(((struct sockaddr_in6 *)&h.dst)->sin6_port), 443);
}

/* Robustness: mutated and truncated headers must never make the decoder
 * read past len (ASan watches in the sanitizer build), and its verdicts
 * must be consistent: OK consumes at most len bytes, and a header that
 * needs more is not invalid once completed with its own bytes. */
static uint64_t
xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void
check_one(const uint8_t *in, size_t len)
{
    uint8_t *copy = malloc(len ? len : 1);     /* exact size: ASan sees overruns */
    struct pp_header h;
    const char *why;
    enum pp_status st;

    memcpy(copy, in, len);
    st = pp_decode(copy, len, &h, &why);
    if (st == PP_OK)
        assert_true(h.len > 0 && h.len <= len);
    else if (st == PP_INVALID)
        assert_non_null(why);
    else
        assert_int_equal(st, PP_NEED_MORE);
    free(copy);
}

static void
test_decode_survives_garbage(void **state)
{
    static const char *const seeds[] = {
        "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n",
        "PROXY TCP6 2001:db8::1 2001:db8::2 8080 443\r\n",
        "PROXY UNKNOWN\r\n",
    };
    uint8_t buf[600];
    uint64_t rnd = 0x9e3779b97f4a7c15ULL;
    struct sockaddr_in6 s6 = v6("2001:db8::7", 1), d6 = v6("2001:db8::8", 2);
    struct pp_info in = { .src = (void *)&s6, .dst = (void *)&d6, .alpn = "h2",
                          .authority = "example.org", .ssl = true, .ssl_version = "TLSv1.2" };
    uint8_t v2[512];
    ssize_t v2len = pp_encode_v2(&in, v2, sizeof(v2));

    (void)state;
    assert_true(v2len > 0);
    for (int round = 0; round < 200000; round++) {
        size_t len;
        int which = (int)(xorshift(&rnd) % 5);
        if (which < 3) {
            len = strlen(seeds[which]);
            memcpy(buf, seeds[which], len);
        } else if (which == 3) {
            len = (size_t)v2len;
            memcpy(buf, v2, len);
        } else {
            len = xorshift(&rnd) % sizeof(buf);
            for (size_t i = 0; i < len; i++)
                buf[i] = (uint8_t)xorshift(&rnd);
            buf[0] = (xorshift(&rnd) & 1) ? 'P' : '\r';
        }
        for (int m = (int)(xorshift(&rnd) % 4); m > 0 && len > 0; m--)
            buf[xorshift(&rnd) % len] = (uint8_t)xorshift(&rnd);
        if (len > 0 && xorshift(&rnd) % 3 == 0)
            len = xorshift(&rnd) % len;          /* truncated */
        check_one(buf, len);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_tcp4),
        cmocka_unit_test(test_v1_longest),
        cmocka_unit_test(test_v1_unknown),
        cmocka_unit_test(test_v2_plain_matches_haproxy),
        cmocka_unit_test(test_v2_tlvs),
        cmocka_unit_test(test_decode_v1),
        cmocka_unit_test(test_decode_v1_unknown_and_v6),
        cmocka_unit_test(test_decode_v1_invalid),
        cmocka_unit_test(test_decode_v2),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_decode_survives_garbage),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
