/* SPDX-License-Identifier: BSD-2-Clause */
/* test_tls_hello.c - the ClientHello version reader (src/tls_hello.c):
 * a real OpenSSL hello, hellos built field by field, and every truncation. */
#include "autoconf.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tls_hello.h"

/* `openssl s_client -tls1_3` (OpenSSL 3.0): supported_versions = {1.3}. */
/* A string literal: the array ends in a NUL that is not part of it. */
#define HELLO_LEN (sizeof(openssl_tls13) - 1)
static const unsigned char openssl_tls13[] =
    "\x16\x03\x01\x00\xf0\x01\x00\x00\xec\x03\x03\x85\xa0\xd3\x5e\x3b\x7c\x15\xb1\x65\x6c\x99\xba\xf1\x77\x58\xd7\x67\x5e\x63\xb0\xfa"
    "\x6d\xf2\xa3\xd8\x11\x25\xd4\x01\xeb\x96\x12\x20\xba\xc3\x77\x59\x10\x56\x1c\xfb\xe0\xe5\x92\xe9\x4c\x3e\x35\xeb\xe8\xb7\x82\x7d"
    "\xd2\xa7\x03\x4c\x1c\x82\x01\xa9\xb3\x97\x3f\xc3\x00\x08\x13\x02\x13\x03\x13\x01\x00\xff\x01\x00\x00\x9b\x00\x00\x00\x10\x00\x0e"
    "\x00\x00\x0b\x65\x78\x61\x6d\x70\x6c\x65\x2e\x63\x6f\x6d\x00\x0b\x00\x04\x03\x00\x01\x02\x00\x0a\x00\x16\x00\x14\x00\x1d\x00\x17"
    "\x00\x1e\x00\x19\x00\x18\x01\x00\x01\x01\x01\x02\x01\x03\x01\x04\x00\x23\x00\x00\x00\x16\x00\x00\x00\x17\x00\x00\x00\x0d\x00\x1e"
    "\x00\x1c\x04\x03\x05\x03\x06\x03\x08\x07\x08\x08\x08\x09\x08\x0a\x08\x0b\x08\x04\x08\x05\x08\x06\x04\x01\x05\x01\x06\x01\x00\x2b"
    "\x00\x03\x02\x03\x04\x00\x2d\x00\x02\x01\x01\x00\x33\x00\x26\x00\x24\x00\x1d\x00\x20\xfe\xf0\xe1\x67\x67\xb6\x3e\x9d\x90\x33\x77"
    "\x5b\xc5\x9f\x05\x21\x45\x9c\x9b\x35\xda\x7a\xca\x04\xdc\x17\x50\xbe\x0b\x73\xbc\x33";

/* A ClientHello record with the given legacy_version and, when n_sv >= 0,
 * a supported_versions extension holding sv[0..n_sv). */
static size_t
build_hello(unsigned char *out, unsigned legacy, const unsigned *sv, int n_sv, bool no_ext)
{
    unsigned char body[512];
    size_t n = 0, ext_at;

    body[n++] = (unsigned char)(legacy >> 8);
    body[n++] = (unsigned char)legacy;
    memset(body + n, 0xab, 32), n += 32;
    body[n++] = 0;                                  /* session id */
    body[n++] = 0, body[n++] = 2, body[n++] = 0xc0, body[n++] = 0x2b;
    body[n++] = 1, body[n++] = 0;                   /* null compression */
    if (!no_ext) {
        ext_at = n;
        n += 2;
        body[n++] = 0, body[n++] = 0x17, body[n++] = 0, body[n++] = 0; /* EMS, empty */
        if (n_sv >= 0) {
            body[n++] = 0, body[n++] = 43;
            body[n++] = 0, body[n++] = (unsigned char)(1 + 2 * n_sv);
            body[n++] = (unsigned char)(2 * n_sv);
            for (int i = 0; i < n_sv; i++)
                body[n++] = (unsigned char)(sv[i] >> 8), body[n++] = (unsigned char)sv[i];
        }
        body[ext_at] = (unsigned char)((n - ext_at - 2) >> 8);
        body[ext_at + 1] = (unsigned char)(n - ext_at - 2);
    }
    out[0] = 22, out[1] = 3, out[2] = 1;
    out[3] = (unsigned char)((n + 4) >> 8), out[4] = (unsigned char)(n + 4);
    out[5] = 1, out[6] = 0, out[7] = (unsigned char)(n >> 8), out[8] = (unsigned char)n;
    memcpy(out + 9, body, n);
    return n + 9;
}

static void
test_openssl_hello(void **state)
{
    (void)state;
    assert_int_equal(tls_hello_versions(openssl_tls13, HELLO_LEN),
                     TLS_HELLO_V(4));
}

static void
test_built_hellos(void **state)
{
    static const unsigned both[] = { 0x0a0a, 0x0304, 0x0303 }, old[] = { 0x0302, 0x0301 };
    unsigned char buf[600];
    size_t n;

    (void)state;
    n = build_hello(buf, 0x0303, both, 3, false);       /* GREASE is skipped */
    assert_int_equal(tls_hello_versions(buf, n), TLS_HELLO_V(3) | TLS_HELLO_V(4));
    n = build_hello(buf, 0x0303, NULL, -1, false);       /* a TLS 1.2 client */
    assert_int_equal(tls_hello_versions(buf, n),
                     TLS_HELLO_V(1) | TLS_HELLO_V(2) | TLS_HELLO_V(3));
    n = build_hello(buf, 0x0302, NULL, -1, true);        /* TLS 1.1, no extensions */
    assert_int_equal(tls_hello_versions(buf, n), TLS_HELLO_V(1) | TLS_HELLO_V(2));
    n = build_hello(buf, 0x0303, old, 2, false);
    assert_int_equal(tls_hello_versions(buf, n), TLS_HELLO_V(1) | TLS_HELLO_V(2));
    n = build_hello(buf, 0x0303, NULL, 0, false);        /* empty list: nothing */
    assert_int_equal(tls_hello_versions(buf, n), 0);
}

/* A hello cut anywhere tells nothing; bytes after the record change nothing. */
static void
test_truncated_and_trailing(void **state)
{
    unsigned char buf[HELLO_LEN + 16];

    (void)state;
    for (size_t n = 0; n < HELLO_LEN; n++)
        assert_int_equal(tls_hello_versions(openssl_tls13, n), 0);
    memcpy(buf, openssl_tls13, HELLO_LEN);
    memset(buf + HELLO_LEN, 0xff, 16);
    assert_int_equal(tls_hello_versions(buf, sizeof(buf)), TLS_HELLO_V(4));
}

static void
test_not_a_hello(void **state)
{
    static const unsigned char http[] = "GET / HTTP/1.1\r\n\r\n";
    static const unsigned char alert[] = { 21, 3, 3, 0, 2, 2, 40 };
    unsigned char buf[600];
    size_t n = build_hello(buf, 0x0303, NULL, -1, false);

    (void)state;
    assert_int_equal(tls_hello_versions(http, sizeof(http) - 1), 0);
    assert_int_equal(tls_hello_versions(alert, sizeof(alert)), 0);
    buf[5] = 2;                                         /* a ServerHello */
    assert_int_equal(tls_hello_versions(buf, n), 0);
    buf[5] = 1;
    buf[8]++;                                           /* body longer than the record */
    assert_int_equal(tls_hello_versions(buf, n), 0);
}

/* The suites are read in place; 0-RTT is seen from its extension. */
static void
test_suites_and_early_data(void **state)
{
    static const int ours13[] = { 0x1301, 0x1303, 0 }, aes256[] = { 0x1302, 0 };
    static const int ours12[] = { 0xc02b, 0 }, none[] = { 0xcca8, 0 };
    unsigned char buf[600];
    struct tls_hello hl;
    size_t n;

    (void)state;
    assert_int_equal(tls_hello_read(openssl_tls13, HELLO_LEN, &hl), TLS_HELLO_V(4));
    assert_int_equal(hl.n_suites, 4);       /* three TLS 1.3 suites + SCSV */
    assert_true(tls_hello_offers_suite(&hl, ours13));
    assert_true(tls_hello_offers_suite(&hl, aes256));
    assert_false(tls_hello_offers_suite(&hl, ours12));
    assert_false(hl.early_data);
    n = build_hello(buf, 0x0303, NULL, -1, false);
    assert_int_equal(tls_hello_read(buf, n, &hl), 0xe);
    assert_true(tls_hello_offers_suite(&hl, ours12));
    assert_false(tls_hello_offers_suite(&hl, none));
    buf[n - 4] = 0, buf[n - 3] = 42;        /* the EMS extension becomes early_data */
    assert_int_equal(tls_hello_read(buf, n, &hl), 0xe);
    assert_true(hl.early_data);
    buf[8]++;                               /* malformed: nothing is kept */
    assert_int_equal(tls_hello_read(buf, n, &hl), 0);
    assert_int_equal(hl.n_suites, 0);
    assert_false(hl.early_data);
}

static void
test_describe(void **state)
{
    char out[64];

    (void)state;
    assert_string_equal(tls_hello_describe(TLS_HELLO_V(4), out, sizeof(out)), "TLS 1.3");
    assert_string_equal(tls_hello_describe(TLS_HELLO_V(3) | TLS_HELLO_V(4), out, sizeof(out)),
                        "TLS 1.2, TLS 1.3");
    assert_string_equal(tls_hello_describe(TLS_HELLO_V(1), out, 5), "TLS ");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openssl_hello),
        cmocka_unit_test(test_built_hellos),
        cmocka_unit_test(test_truncated_and_trailing),
        cmocka_unit_test(test_not_a_hello),
        cmocka_unit_test(test_suites_and_early_data),
        cmocka_unit_test(test_describe),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
