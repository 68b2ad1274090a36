/* SPDX-License-Identifier: BSD-2-Clause */
#include "autoconf.h"
/* test_parse.c - the value parsers behind config_load: durations, sizes,
 * addresses, and the cipher-suite and curve names of tls_names.c. */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/un.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <mbedtls/ecp.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_ciphersuites.h>

#include "config.h"
#include "tls_names.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

struct ok_case {
    const char *in;
    uint64_t want;
};

struct bad_case {
    const char *in;
    const char *why;
};

static void
test_duration_valid(void **state)
{
    static const struct ok_case cases[] = {
        { "250ms", 250 }, { "10s", 10000 }, { "5m", 300000 }, { "1h", 3600000 },
        { "1d", 86400000 }, { "30", 30000 }, { "0", 0 }, { "0s", 0 },
        { "1m30s", 90000 }, { "1h1m1s1ms", 3661001 }, { "1d12h", 129600000 },
        { "007s", 7000 },
    };
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        uint64_t ms = 12345;
        const char *why = NULL;
        assert_int_equal(config_parse_duration(cases[i].in, &ms, &why), 0);
        assert_int_equal(ms, cases[i].want);
        assert_null(why);
    }
}

static void
test_duration_invalid(void **state)
{
    static const struct bad_case cases[] = {
        { "", "empty duration" },
        { "-5s", "negative durations are not allowed" },
        { "10x", "unknown unit (use ms, s, m, h or d)" },
        { "10S", "unknown unit (use ms, s, m, h or d)" },
        { "10 s", "no space between the number and its unit (write 10s)" },
        { "10sec", "unknown unit (use ms, s, m, h or d)" },
        { "s", "expected a number with a unit, e.g. 10s" },
        { "+5s", "expected a number with a unit, e.g. 10s" },
        { "1.5s", "fractions are not supported (write 1500ms, not 1.5s)" },
        { "1m30", "every number needs a unit in a combined duration (e.g. 1m30s)" },
        { "30s1m", "units must go from largest to smallest, each once (e.g. 1h30m)" },
        { "1s1s", "units must go from largest to smallest, each once (e.g. 1h30m)" },
        { "99999999999999999999", "duration is too large" },
        { "18446744073709551615", "duration is too large" },
        { "213503982334d86400s", "duration is too large" },
        { "300000000000000d", "duration is too large" },
    };
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        uint64_t ms = 12345;
        const char *why = NULL;
        assert_int_equal(config_parse_duration(cases[i].in, &ms, &why), -1);
        assert_string_equal(why, cases[i].why);
        assert_int_equal(ms, 12345);
    }
}

static void
test_size_valid(void **state)
{
    static const struct ok_case cases[] = {
        { "0", 0 }, { "100", 100 }, { "100b", 100 }, { "16k", 16384 },
        { "16K", 16384 }, { "16kb", 16384 }, { "16KiB", 16384 }, { "1m", 1048576 },
        { "2MB", 2097152 }, { "1g", 1073741824 }, { "3GiB", 3221225472ULL },
        { "18446744073709551615", UINT64_MAX },
    };
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        uint64_t n = 12345;
        const char *why = NULL;
        assert_int_equal(config_parse_size(cases[i].in, &n, &why), 0);
        assert_int_equal(n, cases[i].want);
    }
}

static void
test_size_invalid(void **state)
{
    static const struct bad_case cases[] = {
        { "", "empty size" },
        { "-1k", "negative sizes are not allowed" },
        { "k", "expected a number, e.g. 16k" },
        { "16q", "unknown suffix (use k, m or g)" },
        { "16kq", "unknown suffix (use k, m or g)" },
        { "16t", "unknown suffix (use k, m or g)" },
        { "16ib", "unknown suffix (use k, m or g)" },
        { "16 k", "no space between the number and its suffix (write 16k)" },
        { "1.5m", "fractions are not supported (write 1536k, not 1.5m)" },
        { "18446744073709551616", "size is too large" },
        { "17179869184g", "size is too large" },
    };
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        uint64_t n = 12345;
        const char *why = NULL;
        assert_int_equal(config_parse_size(cases[i].in, &n, &why), -1);
        assert_string_equal(why, cases[i].why);
        assert_int_equal(n, 12345);
    }
}

static void
expect_addr(const char *in, bool resolve, int family, const char *text)
{
    struct config_addr a;
    const char *why = NULL;

    assert_int_equal(config_parse_addr(in, resolve, &a, &why), 0);
    assert_int_equal(a.ss.ss_family, family);
    assert_string_equal(a.text, text);
    assert_int_equal(a.len, family == AF_INET ? sizeof(struct sockaddr_in)
                                              : sizeof(struct sockaddr_in6));
}

static void
test_addr_valid(void **state)
{
    struct config_addr a;
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&a.ss;
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a.ss;
    const char *why = NULL;

    (void)state;
    expect_addr("1.2.3.4:443", false, AF_INET, "1.2.3.4:443");
    expect_addr("127.0.0.1:8080", true, AF_INET, "127.0.0.1:8080");
    expect_addr("*:8443", false, AF_INET, "0.0.0.0:8443");
    expect_addr("0.0.0.0:1", false, AF_INET, "0.0.0.0:1");
    expect_addr("[::1]:8443", false, AF_INET6, "[::1]:8443");
    expect_addr("[::]:65535", false, AF_INET6, "[::]:65535");
    expect_addr("[2001:DB8:0:0::1]:443", true, AF_INET6, "[2001:db8::1]:443");
    expect_addr("10.0.0.1:0080", false, AF_INET, "10.0.0.1:80");

    assert_int_equal(config_parse_addr("10.1.2.3:443", false, &a, &why), 0);
    assert_int_equal(ntohs(sin->sin_port), 443);
    assert_int_equal(ntohl(sin->sin_addr.s_addr), 0x0a010203);
    assert_int_equal(config_parse_addr("*:80", false, &a, &why), 0);
    assert_int_equal(sin->sin_addr.s_addr, htonl(INADDR_ANY));
    assert_int_equal(config_parse_addr("[::1]:9", false, &a, &why), 0);
    assert_int_equal(ntohs(sin6->sin6_port), 9);
    assert_true(IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr));
    assert_int_equal(config_parse_addr("unix:/run/app.sock", true, &a, &why), 0);
    assert_int_equal(a.ss.ss_family, AF_UNIX);
    assert_string_equal(a.text, "unix:/run/app.sock");
    assert_int_equal(a.len, offsetof(struct sockaddr_un, sun_path) + sizeof("/run/app.sock"));
}

static void
test_addr_invalid(void **state)
{
    static const struct bad_case unix_cases[] = {
        { "unix:run/app.sock", "a unix socket path must be absolute" },
        { "unix:/" "0123456789012345678901234567890123456789012345678901234567890123456789"
          "0123456789012345678901234567890123456789", "unix socket path longer than 107 bytes" },
    };
    static const struct bad_case listen_cases[] = {
        { "", "empty address" },
        { "1.2.3.4:443-445", "port ranges are not supported" },
        { "1.2.3.4:0", "port must be between 1 and 65535" },
        { "1.2.3.4:65536", "port must be between 1 and 65535" },
        { "1.2.3.4:99999999999999999999", "port must be between 1 and 65535" },
        { "443", "a port alone is not an address: write HOST:PORT, e.g. \"0.0.0.0:443\" or \"[::1]:8080\"" },
        { "1.2.3.4", "missing port (expected HOST:PORT)" },
        { "1.2.3.4:", "missing port" },
        { "1.2.3.4:https", "port must be a decimal number" },
        { "1.2.3.4:-1", "port must be a decimal number" },
        { "1.2.3.4:0x50", "unexpected text after the port number" },
        { "1.2.3.4:443 ", "unexpected text after the port number" },
        { "1.2.3.4:443-", "unexpected text after the port number" },
        { "::1:443", "IPv6 addresses must be in brackets, e.g. \"[::1]:443\"" },
        { "[::1]", "missing port (expected [IPV6]:PORT)" },
        { "[::1]443", "expected \":PORT\" after \"]\"" },
        { "[::1:443", "missing \"]\" after the IPv6 address" },
        { "[1.2.3.4]:443", "invalid IPv6 address" },
        { "[]:443", "missing host before \":PORT\"" },
        { ":443", "missing host before \":PORT\"" },
        { "1.2.3.256:443", "invalid IPv4 address" },
        { "127.1:443", "invalid IPv4 address" },
        { "localhost:443", "listen addresses must be numeric IP addresses" },
        { "example.com:443", "listen addresses must be numeric IP addresses" },
    };
    struct config_addr a;
    const char *why;

    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(listen_cases); i++) {
        why = NULL;
        assert_int_equal(config_parse_addr(listen_cases[i].in, false, &a, &why), -1);
        assert_string_equal(why, listen_cases[i].why);
    }
    assert_int_equal(config_parse_addr("*:80", true, &a, &why), -1);
    assert_string_equal(why, "\"*\" is only allowed in listen addresses");
    assert_int_equal(config_parse_addr("1.2.3.4:443-445", true, &a, &why), -1);
    assert_string_equal(why, "port ranges are not supported");
    for (size_t i = 0; i < ARRAY_LEN(unix_cases); i++) {
        why = NULL;
        assert_int_equal(config_parse_addr(unix_cases[i].in, true, &a, &why), -1);
        assert_string_equal(why, unix_cases[i].why);
    }
    assert_int_equal(config_parse_addr("unix:/run/x.sock", false, &a, &why), -1);
    assert_string_equal(why, "unix sockets are only for backend servers");
}

static void
test_addr_resolve(void **state)
{
    struct config_addr a;
    const char *why = NULL;

    (void)state;
    assert_int_equal(config_parse_addr("localhost:80", true, &a, &why), 0);
    assert_true(strcmp(a.text, "127.0.0.1:80") == 0 || strcmp(a.text, "[::1]:80") == 0);
    assert_true(a.ss.ss_family == AF_INET || a.ss.ss_family == AF_INET6);
    assert_int_equal(config_parse_addr("no-such-host.invalid:80", true, &a, &why), -1);
    assert_non_null(strstr(why, "cannot resolve host name"));
}

static void
test_cipher_names(void **state)
{
    static const struct { const char *name; int id; } cases[] = {
        { "ECDHE-ECDSA-AES128-GCM-SHA256", MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 },
        { "ecdhe-rsa-aes256-gcm-sha384", MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 },
        { "ECDHE-RSA-CHACHA20-POLY1305", MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 },
        { "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 },
        { "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
          MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 },
        { "TLS-ECDHE-ECDSA-WITH-AES-256-GCM-SHA384", MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 },
        { "MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
          MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 },
        { "tls_ecdhe_rsa_with_aes_128_gcm_sha256", MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 },
    };
    static const char *const refused[] = {
        "", "RC4-SHA", "AES128-GCM-SHA256", "ECDHE-RSA-AES128-SHA256",
        "TLS-ECDHE-RSA-WITH-AES-128-CBC-SHA256", "TLS-RSA-WITH-AES-128-GCM-SHA256",
        "DHE-RSA-CHACHA20-POLY1305", "TLS-DHE-RSA-WITH-CHACHA20-POLY1305-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256X", "ECDHE-RSA-AES128-GCM", "MBEDTLS_",
        "MBEDTLS_ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-ARIA128-GCM-SHA256",
    };

    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(cases); i++)
        assert_int_equal(tls_cipher_id(cases[i].name), cases[i].id);
    for (size_t i = 0; i < ARRAY_LEN(refused); i++)
        assert_int_equal(tls_cipher_id(refused[i]), 0);
    assert_null(tls_cipher_name(MBEDTLS_TLS_RSA_WITH_AES_128_GCM_SHA256));
    assert_null(tls_cipher_name(0));
}

/* Every default is a suite this mbedTLS build knows, under its own name
 * too, and the defaults are exactly the suites the error message lists. */
static void
test_cipher_defaults(void **state)
{
    static const int want[] = {
        MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, 0
    };
    const int *d = tls_cipher_defaults();
    const char *valid = tls_cipher_valid_names();
    size_t listed = 1;

    (void)state;
    assert_memory_equal(d, want, sizeof(want));
    for (size_t i = 0; d[i] != 0; i++) {
        const char *name = tls_cipher_name(d[i]);
        assert_non_null(mbedtls_ssl_ciphersuite_from_id(d[i]));
        assert_int_equal(tls_cipher_id(mbedtls_ssl_get_ciphersuite_name(d[i])), d[i]);
        assert_non_null(name);
        assert_int_equal(tls_cipher_id(name), d[i]);
        assert_non_null(strstr(valid, name));
    }
    for (const char *p = valid; (p = strstr(p, ", ")) != NULL; p += 2)
        listed++;
    assert_int_equal(listed, ARRAY_LEN(want) - 1);
    assert_string_equal(tls_cipher_name(want[2]), "ECDHE-ECDSA-AES128-GCM-SHA256");
    assert_string_equal(tls_cipher_name(want[0]), "ECDHE-ECDSA-CHACHA20-POLY1305");
}

/* Groups are IANA TLS ids, the same numbers on 2.28 and 3.6. */
static void
test_curve_names(void **state)
{
    static const struct { const char *name; int id; } cases[] = {
        { "x25519", 29 }, { "X25519", 29 }, { "curve25519", 29 },
        { "secp256r1", 23 }, { "P-256", 23 }, { "prime256v1", 23 },
        { "secp384r1", 24 }, { "p-384", 24 }, { "secp521r1", 25 }, { "P-521", 25 },
    };
    static const char *const refused[] = { "", "secp192r1", "P-224", "x448", "brainpoolP256r1" };
    static const int want[] = { 29, 23, 24, 0 };
    const int *d = tls_curve_defaults();

    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(cases); i++)
        assert_int_equal(tls_curve_id(cases[i].name), cases[i].id);
    for (size_t i = 0; i < ARRAY_LEN(refused); i++)
        assert_int_equal(tls_curve_id(refused[i]), 0);
    assert_memory_equal(d, want, sizeof(want));
    for (size_t i = 0; d[i] != 0; i++)
        assert_non_null(mbedtls_ecp_curve_info_from_tls_id((uint16_t)d[i]));
    assert_string_equal(tls_curve_name(23), "secp256r1");
    assert_null(tls_curve_name(26));    /* brainpoolP256r1 */
    assert_string_equal(tls_curve_valid_names(), "x25519, secp256r1, secp384r1, secp521r1");
}

/* The RFC 8446 names, and mbedTLS's own spelling of them. */
static void
test_suite13_names(void **state)
{
    static const struct { const char *name; int id; } cases[] = {
        { "TLS_AES_128_GCM_SHA256", 0x1301 }, { "tls_aes_256_gcm_sha384", 0x1302 },
        { "TLS_CHACHA20_POLY1305_SHA256", 0x1303 }, { "TLS-AES-128-GCM-SHA256", 0x1301 },
        { "TLS1-3-CHACHA20-POLY1305-SHA256", 0x1303 },
    };
    static const char *const refused[] = {
        "", "TLS_AES_128_CCM_SHA256", "TLS_AES_128_CCM_8_SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256", "AES128-GCM-SHA256",
    };
    static const int want[] = { 0x1301, 0x1303, 0x1302, 0 };

    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(cases); i++)
        assert_int_equal(tls_suite13_id(cases[i].name), cases[i].id);
    for (size_t i = 0; i < ARRAY_LEN(refused); i++)
        assert_int_equal(tls_suite13_id(refused[i]), 0);
    assert_memory_equal(tls_suite13_defaults(), want, sizeof(want));
    assert_string_equal(tls_suite13_name(0x1302), "TLS_AES_256_GCM_SHA384");
    assert_null(tls_suite13_name(0x1304));
    assert_string_equal(tls_suite13_valid_names(), "TLS_AES_128_GCM_SHA256, "
                        "TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256");
#if MBEDTLS_VERSION_MAJOR >= 3
    assert_int_equal(tls_max_minor(), 4);
    assert_int_equal(MBEDTLS_TLS1_3_CHACHA20_POLY1305_SHA256, 0x1303);
#else
    assert_int_equal(tls_max_minor(), 3);
#endif
}

static int
cidr_has(const char *cidr, int fam, const char *ip)
{
    struct config_cidr c;
    struct sockaddr_storage ss = { .ss_family = (sa_family_t)fam };
    const char *why;

    assert_int_equal(config_parse_cidr(cidr, &c, &why), 0);
    inet_pton(fam, ip, fam == AF_INET ? (void *)&((struct sockaddr_in *)&ss)->sin_addr
                                      : (void *)&((struct sockaddr_in6 *)&ss)->sin6_addr);
    return config_cidr_match(&c, (struct sockaddr *)&ss);
}

static void
test_cidr(void **state)
{
    static const struct bad_case bad[] = {
        { "10.0.0.0/33", "prefix length must be 0 to 32" },
        { "::/129", "prefix length must be 0 to 128" },
        { "10.0.0.0/", "prefix length must be 0 to 32" },
        { "10.0.0.0/x", "prefix length must be 0 to 32" },
        { "example.com", "not a numeric IPv4 or IPv6 address" },
        { "/8", "expected ADDRESS or ADDRESS/BITS" },
    };
    struct config_cidr c;
    const char *why;

    (void)state;
    assert_true(cidr_has("10.0.0.0/8", AF_INET, "10.255.1.2"));
    assert_false(cidr_has("10.0.0.0/8", AF_INET, "11.0.0.1"));
    assert_true(cidr_has("192.168.1.128/25", AF_INET, "192.168.1.200"));
    assert_false(cidr_has("192.168.1.128/25", AF_INET, "192.168.1.127"));
    assert_true(cidr_has("192.0.2.10", AF_INET, "192.0.2.10"));
    assert_false(cidr_has("192.0.2.10", AF_INET, "192.0.2.11"));
    assert_true(cidr_has("0.0.0.0/0", AF_INET, "8.8.8.8"));
    assert_false(cidr_has("0.0.0.0/0", AF_INET6, "::1"));       /* families differ */
    assert_true(cidr_has("2001:db8::/32", AF_INET6, "2001:db8:ffff::1"));
    assert_false(cidr_has("2001:db8::/33", AF_INET6, "2001:db8:8000::1"));
    assert_int_equal(config_parse_cidr("2001:db8::/32", &c, &why), 0);
    assert_string_equal(c.text, "2001:db8::/32");
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        why = NULL;
        assert_int_equal(config_parse_cidr(bad[i].in, &c, &why), -1);
        assert_string_equal(why, bad[i].why);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration_valid),
        cmocka_unit_test(test_duration_invalid),
        cmocka_unit_test(test_size_valid),
        cmocka_unit_test(test_size_invalid),
        cmocka_unit_test(test_addr_valid),
        cmocka_unit_test(test_addr_invalid),
        cmocka_unit_test(test_addr_resolve),
        cmocka_unit_test(test_cipher_names),
        cmocka_unit_test(test_cipher_defaults),
        cmocka_unit_test(test_curve_names),
        cmocka_unit_test(test_suite13_names),
        cmocka_unit_test(test_cidr),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
