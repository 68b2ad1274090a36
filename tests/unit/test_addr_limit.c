/* SPDX-License-Identifier: BSD-2-Clause */
/* Unit tests of the per-address table: connection counts, the token
 * bucket and its refill, IPv6 by /64, one log report per interval, a full
 * table letting clients through untracked, and entries freed only once
 * their bucket is full again (leaving the table gives no fresh tokens). */
#include "autoconf.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "addr_limit.h"

static const uint8_t seed[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };

static struct sockaddr_storage
addr(const char *text)
{
    struct sockaddr_storage ss;

    memset(&ss, 0, sizeof(ss));
    if (strchr(text, ':')) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, text, &a->sin6_addr), 1);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, text, &a->sin_addr), 1);
    }
    return ss;
}

static enum addr_verdict
admit(struct addr_limit *t, const char *text, const struct addr_rules *r, uint64_t now,
      unsigned long *log_n)
{
    struct sockaddr_storage ss = addr(text);
    unsigned long ignored;

    return addr_limit_admit(t, (struct sockaddr *)&ss, r, now, log_n ? log_n : &ignored);
}

static void
release(struct addr_limit *t, const char *text)
{
    struct sockaddr_storage ss = addr(text);

    addr_limit_release(t, (struct sockaddr *)&ss);
}

static void
test_connections(void **state)
{
    struct addr_limit t;
    struct addr_rules r = { 2, 0, 0 };
    unsigned long n = 99;

    (void)state;
    assert_int_equal(addr_limit_init(&t, 64, seed), 0);
    assert_int_equal(admit(&t, "192.0.2.1", &r, 1000, NULL), ADDR_ADMIT);
    assert_int_equal(admit(&t, "192.0.2.1", &r, 1000, NULL), ADDR_ADMIT);
    assert_int_equal(admit(&t, "192.0.2.1", &r, 1000, &n), ADDR_TOO_MANY);
    assert_int_equal(n, 1);                     /* the first refusal is reported */
    assert_int_equal(admit(&t, "192.0.2.2", &r, 1000, NULL), ADDR_ADMIT);
    release(&t, "192.0.2.1");
    assert_int_equal(admit(&t, "192.0.2.1", &r, 1000, NULL), ADDR_ADMIT);
    addr_limit_free(&t);
}

static void
test_bucket_refills(void **state)
{
    struct addr_limit t;
    struct addr_rules r = { 0, 10, 3 };         /* 10/s, burst 3 */

    (void)state;
    assert_int_equal(addr_limit_init(&t, 64, seed), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(admit(&t, "192.0.2.1", &r, 5000, NULL), ADDR_ADMIT);
    assert_int_equal(admit(&t, "192.0.2.1", &r, 5000, NULL), ADDR_TOO_FAST);
    assert_int_equal(admit(&t, "192.0.2.1", &r, 5099, NULL), ADDR_TOO_FAST);
    assert_int_equal(admit(&t, "192.0.2.1", &r, 5100, NULL), ADDR_ADMIT);  /* +1 per 100 ms */
    assert_int_equal(admit(&t, "192.0.2.1", &r, 5100, NULL), ADDR_TOO_FAST);
    /* a long pause refills to the burst, never beyond */
    for (int i = 0; i < 3; i++)
        assert_int_equal(admit(&t, "192.0.2.1", &r, 999999, NULL), ADDR_ADMIT);
    assert_int_equal(admit(&t, "192.0.2.1", &r, 999999, NULL), ADDR_TOO_FAST);
    addr_limit_free(&t);
}

static void
test_one_report_per_interval(void **state)
{
    struct addr_limit t;
    struct addr_rules r = { 1, 0, 0 };
    unsigned long n;

    (void)state;
    assert_int_equal(addr_limit_init(&t, 64, seed), 0);
    assert_int_equal(admit(&t, "192.0.2.1", &r, 1000, NULL), ADDR_ADMIT);
    assert_int_equal(admit(&t, "192.0.2.1", &r, 1000, &n), ADDR_TOO_MANY);
    assert_int_equal(n, 1);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(admit(&t, "192.0.2.1", &r, 2000, &n), ADDR_TOO_MANY);
        assert_int_equal(n, 0);                 /* counted, not reported */
    }
    assert_int_equal(admit(&t, "192.0.2.1", &r, 1000 + ADDR_LIMIT_LOG_MS, &n), ADDR_TOO_MANY);
    assert_int_equal(n, 6);                     /* five quiet ones and this one */
    addr_limit_free(&t);
}

static void
test_ipv6_by_prefix(void **state)
{
    struct addr_limit t;
    struct addr_rules r = { 1, 0, 0 };

    (void)state;
    assert_int_equal(addr_limit_init(&t, 64, seed), 0);
    assert_int_equal(admit(&t, "2001:db8:1:2::1", &r, 0, NULL), ADDR_ADMIT);
    assert_int_equal(admit(&t, "2001:db8:1:2:ffff::9", &r, 0, NULL), ADDR_TOO_MANY);
    assert_int_equal(admit(&t, "2001:db8:1:3::1", &r, 0, NULL), ADDR_ADMIT);
    /* v4-mapped is the IPv4 client itself, not a /64 */
    assert_int_equal(admit(&t, "::ffff:192.0.2.1", &r, 0, NULL), ADDR_ADMIT);
    assert_int_equal(admit(&t, "192.0.2.1", &r, 0, NULL), ADDR_TOO_MANY);
    assert_int_equal(admit(&t, "::ffff:192.0.2.2", &r, 0, NULL), ADDR_ADMIT);
    addr_limit_free(&t);
}

static void
test_full_table_lets_through(void **state)
{
    struct addr_limit t;
    struct addr_rules r = { 1, 0, 0 };
    char text[32];

    (void)state;
    assert_int_equal(addr_limit_init(&t, 16, seed), 0);
    for (int i = 0; i < 16; i++) {
        snprintf(text, sizeof(text), "10.0.0.%d", i);
        assert_int_equal(admit(&t, text, &r, 0, NULL), ADDR_ADMIT);
    }
    assert_int_equal(addr_limit_used(&t), 16);
    assert_int_equal(admit(&t, "10.0.1.1", &r, 0, NULL), ADDR_UNTRACKED);
    /* connections that ended free their entries for new addresses */
    for (int i = 0; i < 16; i++) {
        snprintf(text, sizeof(text), "10.0.0.%d", i);
        release(&t, text);
    }
    assert_int_equal(admit(&t, "10.0.1.1", &r, 0, NULL), ADDR_ADMIT);
    assert_int_equal(admit(&t, "10.0.1.1", &r, 0, NULL), ADDR_TOO_MANY);
    addr_limit_free(&t);
}

static void
test_empty_bucket_keeps_its_entry(void **state)
{
    struct addr_limit t;
    struct addr_rules r = { 0, 1, 1 };         /* 1/s */

    (void)state;
    assert_int_equal(addr_limit_init(&t, 16, seed), 0);
    assert_int_equal(admit(&t, "192.0.2.1", &r, 0, NULL), ADDR_ADMIT);
    release(&t, "192.0.2.1");
    /* many other addresses sweep the table over and over ... */
    for (int round = 0; round < 4; round++)
        for (int i = 0; i < 8; i++) {
            char text[32];
            snprintf(text, sizeof(text), "10.0.0.%d", i);
            admit(&t, text, &r, 10, NULL);
        }
    /* ... but the empty bucket stayed: no fresh token within the second */
    assert_int_equal(admit(&t, "192.0.2.1", &r, 500, NULL), ADDR_TOO_FAST);
    assert_int_equal(admit(&t, "192.0.2.1", &r, 1000, NULL), ADDR_ADMIT);
    addr_limit_free(&t);
}

static void
test_off_and_other_families(void **state)
{
    struct addr_limit t;
    struct addr_rules off = { 0, 0, 0 }, on = { 1, 0, 0 };
    struct sockaddr_storage un;

    (void)state;
    assert_int_equal(addr_limit_init(&t, 16, seed), 0);
    assert_int_equal(admit(&t, "192.0.2.1", &off, 0, NULL), ADDR_UNTRACKED);
    assert_int_equal(addr_limit_used(&t), 0);
    memset(&un, 0, sizeof(un));
    un.ss_family = AF_UNIX;
    unsigned long n;
    assert_int_equal(addr_limit_admit(&t, (struct sockaddr *)&un, &on, 0, &n), ADDR_UNTRACKED);
    addr_limit_free(&t);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connections),
        cmocka_unit_test(test_bucket_refills),
        cmocka_unit_test(test_one_report_per_interval),
        cmocka_unit_test(test_ipv6_by_prefix),
        cmocka_unit_test(test_full_table_lets_through),
        cmocka_unit_test(test_empty_bucket_keeps_its_entry),
        cmocka_unit_test(test_off_and_other_families),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
