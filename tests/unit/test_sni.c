/* SPDX-License-Identifier: BSD-2-Clause */
/* Unit tests of the SNI table: exact and wildcard names, case, the one-
 * label wildcard rule, several certificates per name, growth. */
#include "autoconf.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "tls_sni.h"

static const struct sni_entry *
find(const struct sni_table *t, const char *name)
{
    return sni_table_find(t, name, strlen(name));
}

static struct sni_table *
table(void)
{
    struct sni_table *t = sni_table_new();

    assert_non_null(t);
    assert_int_equal(sni_table_add(t, "www.example.com", 0), 0);
    assert_int_equal(sni_table_add(t, "*.example.org", 1), 0);
    assert_int_equal(sni_table_add(t, "api.example.org", 2), 0);
    return t;
}

static void
test_exact_and_wildcard(void **state)
{
    struct sni_table *t = table();
    const struct sni_entry *e;

    (void)state;
    e = find(t, "www.example.com");
    assert_non_null(e);
    assert_int_equal(e->idx[0], 0);
    e = find(t, "a.example.org");
    assert_non_null(e);
    assert_int_equal(e->idx[0], 1);
    e = find(t, "api.example.org");     /* exact beats wildcard */
    assert_non_null(e);
    assert_int_equal(e->idx[0], 2);
    assert_null(find(t, "a.b.example.org"));   /* one label only */
    assert_null(find(t, "example.org"));
    assert_null(find(t, "example.com"));
    assert_null(find(t, ".example.org"));
    assert_null(find(t, ""));
    sni_table_free(t);
}

static void
test_case_insensitive(void **state)
{
    struct sni_table *t = table();

    (void)state;
    assert_non_null(find(t, "WWW.Example.COM"));
    assert_non_null(find(t, "Foo.EXAMPLE.org"));
    sni_table_free(t);
}

static void
test_rsa_and_ecdsa_for_one_name(void **state)
{
    struct sni_table *t = sni_table_new();
    const struct sni_entry *e;

    (void)state;
    assert_int_equal(sni_table_add(t, "Shop.Example", 3), 0);
    assert_int_equal(sni_table_add(t, "shop.example", 7), 0);
    assert_int_equal(sni_table_add(t, "shop.example", 7), 0);   /* listed twice */
    e = find(t, "shop.example");
    assert_non_null(e);
    assert_int_equal(e->n, 2);
    assert_int_equal(e->idx[0], 3);
    assert_int_equal(e->idx[1], 7);
    for (unsigned i = 2; i < SNI_MAX_CERTS_PER_NAME; i++)
        assert_int_equal(sni_table_add(t, "shop.example", 10 + i), 0);
    assert_int_equal(sni_table_add(t, "shop.example", 99), 1);     /* full */
    sni_table_free(t);
}

/* Regression (issue 18's fuzzing): these were reported as "more than 4
 * certificates". */
static void
test_unusable_names_say_so(void **state)
{
    struct sni_table *t = sni_table_new();
    char long_name[300];

    (void)state;
    memset(long_name, 'a', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    assert_int_equal(sni_table_add(t, "", 0), SNI_ADD_BAD_NAME);
    assert_int_equal(sni_table_add(t, "*.", 0), SNI_ADD_BAD_NAME);
    assert_int_equal(sni_table_add(t, long_name, 0), SNI_ADD_BAD_NAME);
    assert_int_equal(sni_table_size(t), 0);
    sni_table_free(t);
}

static void
test_thousand_names(void **state)
{
    struct sni_table *t = sni_table_new();
    char name[64];

    (void)state;
    for (unsigned i = 0; i < 1000; i++) {
        snprintf(name, sizeof(name), "%ssite%u.example", i % 10 ? "" : "*.", i);
        assert_int_equal(sni_table_add(t, name, i), 0);
    }
    assert_int_equal(sni_table_size(t), 1000);
    for (unsigned i = 0; i < 1000; i++) {
        const struct sni_entry *e;
        snprintf(name, sizeof(name), "%ssite%u.example", i % 10 ? "" : "x.", i);
        e = find(t, name);
        assert_non_null(e);
        assert_int_equal(e->idx[0], i);
    }
    sni_table_free(t);
}

static void
test_route_match(void **state)
{
    (void)state;
    assert_true(sni_match("api.example.com", "API.example.com"));
    assert_false(sni_match("api.example.com", "www.example.com"));
    assert_true(sni_match("*.example.org", "a.example.org"));
    assert_false(sni_match("*.example.org", "a.b.example.org"));
    assert_false(sni_match("*.example.org", "example.org"));
    assert_false(sni_match("*.example.org", ".example.org"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_and_wildcard),
        cmocka_unit_test(test_case_insensitive),
        cmocka_unit_test(test_rsa_and_ecdsa_for_one_name),
        cmocka_unit_test(test_thousand_names),
        cmocka_unit_test(test_unusable_names_say_so),
        cmocka_unit_test(test_route_match),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
