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

#include "../fuzz/tls_hello_vector.h"

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
    assert_int_equal(tls_hello_versions(tls_hello_openssl13, TLS_HELLO_OPENSSL13_LEN),
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
    unsigned char buf[TLS_HELLO_OPENSSL13_LEN + 16];

    (void)state;
    for (size_t n = 0; n < TLS_HELLO_OPENSSL13_LEN; n++)
        assert_int_equal(tls_hello_versions(tls_hello_openssl13, n), 0);
    memcpy(buf, tls_hello_openssl13, TLS_HELLO_OPENSSL13_LEN);
    memset(buf + TLS_HELLO_OPENSSL13_LEN, 0xff, 16);
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
    assert_int_equal(tls_hello_read(tls_hello_openssl13, TLS_HELLO_OPENSSL13_LEN, &hl),
                     TLS_HELLO_V(4));
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

/* sni: a server_name extension, whatever it holds (mbedTLS parses it). */
static void
test_sni_seen(void **state)
{
    unsigned char buf[600];
    struct tls_hello hl;
    size_t n;

    (void)state;
    n = build_hello(buf, 0x0303, NULL, -1, false);
    assert_int_equal(tls_hello_read(buf, n, &hl), 0xe);
    assert_false(hl.sni);
    buf[n - 4] = 0, buf[n - 3] = 0;         /* the EMS extension becomes server_name */
    assert_int_equal(tls_hello_read(buf, n, &hl), 0xe);
    assert_true(hl.sni);
    n = build_hello(buf, 0x0303, NULL, -1, true);
    assert_int_equal(tls_hello_read(buf, n, &hl), 0xe);
    assert_false(hl.sni);
}

static bool
plain(const char *s)
{
    return tls_hello_plain_http((const unsigned char *)s, strlen(s));
}

static void
test_plain_http(void **state)
{
    unsigned char hello[600];
    size_t n = build_hello(hello, 0x0303, NULL, -1, false);

    (void)state;
    assert_true(plain("GET / HTTP/1.1\r\n"));
    assert_true(plain("POST /x"));
    assert_true(plain("OPTIONS * HTTP/1.1"));
    assert_true(plain("GET http://example.com/ HTTP/1.1"));
    assert_true(plain("VERSION-CONTROL /a"));
    assert_true(plain("BREW /pot"));                /* any method token */
    assert_false(plain("GET"));                     /* not yet a request line */
    assert_false(plain("GET "));
    assert_false(plain("get / HTTP/1.1"));
    assert_false(plain("GET  /"));
    assert_false(plain(" GET /"));
    assert_false(plain("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"));
    assert_false(plain("ABCDEFGHIJKLMNOPQRSTU /"));  /* 21 letters: no method */
    assert_true(plain("ABCDEFGHIJKLMNOPQRST /"));
    assert_false(plain(""));
    assert_false(tls_hello_plain_http(hello, n));
    assert_false(tls_hello_plain_http(tls_hello_openssl13, TLS_HELLO_OPENSSL13_LEN));
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
        cmocka_unit_test(test_sni_seen),
        cmocka_unit_test(test_plain_http),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
