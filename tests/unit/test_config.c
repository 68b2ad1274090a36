/* SPDX-License-Identifier: BSD-2-Clause */
#include "autoconf.h"
/* test_config.c - config_load on the fixture files in tests/unit/configs:
 * valid files checked field by field, and one test per invalid file that
 * checks the exact "FILE:LINE:COL: message" lines. */

#include <limits.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <mbedtls/ecp.h>
#include <mbedtls/ssl_ciphersuites.h>
#include <mbedtls/version.h>

#include "config.h"
#include "tls_names.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define CONFIGS TEST_SRCDIR "/tests/unit/configs"
#define MAX_EXPECTED 8

static void
fixture_path(char *buf, size_t size, const char *name)
{
    int n = snprintf(buf, size, "%s/%s.yaml", CONFIGS, name);

    assert_true(n > 0 && (size_t)n < size);
}

static struct config *
load_ok(const char *name)
{
    char path[PATH_MAX];
    struct config_errors errs = { 0 };
    struct config *cfg;

    fixture_path(path, sizeof(path), name);
    cfg = config_load(path, &errs);
    for (size_t i = 0; i < errs.n; i++)
        print_error("unexpected: %s\n", errs.msgs[i]);
    assert_int_equal(errs.n, 0);
    assert_non_null(cfg);
    assert_string_equal(cfg->path, path);
    config_errors_free(&errs);
    return cfg;
}

static size_t
ids_len(const int *ids)
{
    size_t n = 0;

    while (ids[n] != 0)
        n++;
    return n;
}

static void
assert_cert(const struct config_cert *c, const char *cert, const char *key)
{
    assert_string_equal(c->cert_file, cert);
    assert_string_equal(c->key_file, key);
}

/* ---- valid files -------------------------------------------------------- */

static void
test_minimal_defaults(void **state)
{
    struct config *cfg = load_ok("minimal");
    const struct config_listener *l = &cfg->listeners[0];
    const int *dc = tls_cipher_defaults(), *dv = tls_curve_defaults();

    (void)state;
    assert_int_equal(cfg->workers, 0);
    assert_int_equal(cfg->log_level, LOG_LVL_INFO);
    assert_int_equal(cfg->timeouts.handshake_ms, 10000);
    assert_int_equal(cfg->timeouts.idle_ms, 300000);
    assert_int_equal(cfg->timeouts.connect_ms, 5000);
    assert_int_equal(cfg->timeouts.drain_ms, 30000);
    assert_int_equal(cfg->log_target, LOG_TARGET_STDERR);
    assert_null(cfg->log_file);
    assert_true(cfg->log_access);
    assert_null(cfg->run_as.user);
    assert_int_equal(cfg->backends[0].health.type, HEALTH_NONE);
    assert_int_equal(cfg->backends[0].balance, BALANCE_ROUND_ROBIN);
    assert_int_equal(cfg->backends[0].fail_timeout_ms, 10000);
    assert_int_equal(cfg->backends[0].opts[0].weight, 1);
    assert_false(cfg->backends[0].http.enabled);
    assert_null(cfg->backends[0].http.hsts);
    assert_int_equal(cfg->backends[0].http.max_head, 65536);
    assert_int_equal(cfg->limits.max_connections, 100000);
    assert_int_equal(cfg->limits.buffer_size, 16384);
    assert_int_equal(cfg->limits.max_handshakes, 2048);
    assert_int_equal(cfg->limits.worker_max_handshakes, 0);
    assert_int_equal(cfg->limits.per_address.connections, 0);
    assert_int_equal(cfg->limits.per_address.handshakes_per_second, 0);
    assert_int_equal(cfg->limits.per_address.n_exempt, 0);
    assert_int_equal(cfg->tls.min_version, 3);
    assert_int_equal(ids_len(cfg->tls.ciphersuites), 6);
    assert_memory_equal(cfg->tls.ciphersuites, dc, 7 * sizeof(int));
    assert_int_equal(cfg->tls.ciphersuites[0], MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256);
    assert_int_equal(ids_len(cfg->tls.curves), 3);
    assert_memory_equal(cfg->tls.curves, dv, 4 * sizeof(int));

    assert_int_equal(cfg->n_listeners, 1);
    assert_string_equal(l->name, "https");
    assert_int_equal(l->pos.line, 2);
    assert_int_equal(l->pos.col, 5);
    assert_int_equal(l->n_listen, 1);
    assert_string_equal(l->listen[0].text, "127.0.0.1:8443");
    assert_int_equal(l->listen[0].ss.ss_family, AF_INET);
    assert_int_equal(l->listen[0].len, sizeof(struct sockaddr_in));
    assert_int_equal(l->listen[0].pos.line, 3);
    assert_int_equal(l->listen[0].pos.col, 13);
    assert_int_equal(l->n_certs, 1);
    assert_cert(&l->certs[0], CONFIGS "/demo-cert.pem", CONFIGS "/demo-key.pem");
    assert_int_equal(l->certs[0].pos.line, 5);
    assert_int_equal(l->certs[0].pos.col, 9);
    assert_string_equal(l->backend_name, "app");
    assert_ptr_equal(l->backend, &cfg->backends[0]);

    assert_int_equal(cfg->n_backends, 1);
    assert_string_equal(cfg->backends[0].name, "app");
    assert_int_equal(cfg->backends[0].pos.line, 8);
    assert_int_equal(cfg->backends[0].n_servers, 1);
    assert_string_equal(cfg->backends[0].servers[0].text, "127.0.0.1:8080");
    config_free(cfg);
}

static void
test_full(void **state)
{
    struct config *cfg = load_ok("full");
    const struct config_listener *l = &cfg->listeners[0];
    const struct config_backend *b = &cfg->backends[0];
    static const int ciphers[] = {
        MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, 0
    };
    static const int curves[] = { 23, 29, 25, 0 };    /* IANA group ids */

    (void)state;
    assert_int_equal(cfg->workers, 4);
    assert_int_equal(cfg->log_level, LOG_LVL_DEBUG);
    assert_int_equal(cfg->timeouts.handshake_ms, 2000);
    assert_int_equal(cfg->timeouts.idle_ms, 90000);
    assert_int_equal(cfg->timeouts.connect_ms, 250);
    assert_int_equal(cfg->timeouts.drain_ms, 45000);
    assert_int_equal(cfg->log_target, LOG_TARGET_FILE);
    assert_string_equal(cfg->log_file, "/var/log/tlsterm.log");
    assert_false(cfg->log_access);
    assert_string_equal(cfg->run_as.user, "nobody");
    assert_string_equal(cfg->run_as.group, "nogroup");
    assert_int_equal(cfg->run_as.uid, 65534);
    assert_int_equal(cfg->run_as.gid, 65534);
    assert_int_equal(cfg->limits.max_connections, 5000);
    assert_int_equal(cfg->limits.buffer_size, 65536);
    assert_int_equal(cfg->limits.max_handshakes, 300);
    assert_int_equal(cfg->limits.worker_max_handshakes, 100);
    assert_int_equal(cfg->limits.per_address.connections, 20);
    assert_int_equal(cfg->limits.per_address.handshakes_per_second, 5);
    assert_int_equal(cfg->limits.per_address.handshake_burst, 15);
    assert_int_equal(cfg->limits.per_address.n_exempt, 2);
    assert_string_equal(cfg->limits.per_address.exempt[0].text, "10.0.0.0/8");
    assert_int_equal(cfg->limits.per_address.exempt[1].bits, 128);
    assert_int_equal(cfg->tls.min_version, 3);
    assert_memory_equal(cfg->tls.ciphersuites, ciphers, sizeof(ciphers));
    assert_memory_equal(cfg->tls.curves, curves, sizeof(curves));

    assert_int_equal(cfg->n_listeners, 1);
    assert_int_equal(l->n_listen, 1);
    assert_string_equal(l->listen[0].text, "0.0.0.0:8443");
    assert_int_equal(l->n_certs, 2);
    assert_cert(&l->certs[0], "/etc/tlsterm/a.pem", "/etc/tlsterm/a.key");
    assert_cert(&l->certs[1], CONFIGS "/certs/b.pem", CONFIGS "/keys/b key.pem");
    assert_int_equal(l->certs[0].pos.line, 21);
    assert_int_equal(l->certs[1].pos.line, 23);
    assert_ptr_equal(l->backend, b);

    assert_int_equal(b->n_servers, 4);
    assert_int_equal(b->proxy_protocol, 2);
    assert_true(b->http.enabled && b->http.rfc7239 && b->http.client_cert && b->http.allow_connect);
    assert_string_equal(b->http.hsts, "max-age=31536000; includeSubDomains");
    assert_int_equal(b->http.max_head, 16384);
    assert_int_equal(b->balance, BALANCE_LEAST_CONN);
    assert_int_equal(b->fail_timeout_ms, 3000);
    assert_int_equal(b->opts[0].weight, 1);
    assert_int_equal(b->opts[1].weight, 5);
    assert_int_equal(b->opts[1].max_connections, 100);
    assert_false(b->opts[1].backup);
    assert_true(b->opts[2].backup);
    assert_string_equal(b->servers[3].text, "unix:/run/app.sock");
    assert_int_equal(b->servers[3].ss.ss_family, AF_UNIX);
    assert_int_equal(cfg->n_servers_total, 4);
    assert_int_equal(b->health.type, HEALTH_HTTP);
    assert_int_equal(b->health.interval_ms, 500);
    assert_int_equal(b->health.timeout_ms, 250);
    assert_int_equal(b->health.rise, 4);
    assert_int_equal(b->health.fall, 5);
    assert_string_equal(b->health.path, "/hc");
    assert_int_equal(b->health.expect_status, 204);
    assert_string_equal(b->servers[0].text, "127.0.0.1:8080");
    assert_string_equal(b->servers[1].text, "[::1]:8081");
    assert_int_equal(b->servers[1].ss.ss_family, AF_INET6);
    assert_true(strcmp(b->servers[2].text, "127.0.0.1:8082") == 0 ||
                strcmp(b->servers[2].text, "[::1]:8082") == 0);
    config_free(cfg);
}

static void
test_multi(void **state)
{
    struct config *cfg = load_ok("multi");
    const struct config_listener *pub = &cfg->listeners[0], *in = &cfg->listeners[1];
    static const char *const pub_listen[] = {
        "0.0.0.0:8443", "[::]:8443", "[::1]:9443", "127.0.0.1:9443"
    };

    (void)state;
    assert_int_equal(cfg->workers, 0);
    assert_int_equal(cfg->n_listeners, 2);
    assert_int_equal(cfg->n_backends, 2);

    assert_string_equal(pub->name, "public");
    assert_int_equal(pub->n_listen, 4);
    for (size_t i = 0; i < ARRAY_LEN(pub_listen); i++) {
        assert_string_equal(pub->listen[i].text, pub_listen[i]);
        assert_int_equal(pub->listen[i].ss.ss_family, i == 1 || i == 2 ? AF_INET6 : AF_INET);
    }
    assert_int_equal(pub->n_certs, 2);
    assert_cert(&pub->certs[0], CONFIGS "/www.pem", CONFIGS "/www.key");
    assert_cert(&pub->certs[1], CONFIGS "/api.pem", CONFIGS "/api.key");
    assert_ptr_equal(pub->backend, &cfg->backends[0]);
    assert_string_equal(pub->backend->name, "web");

    assert_string_equal(in->name, "internal.api-2");
    assert_int_equal(in->n_listen, 1);
    assert_string_equal(in->listen[0].text, "10.1.2.3:443");
    assert_int_equal(in->n_certs, 1);
    assert_ptr_equal(in->backend, &cfg->backends[1]);
    assert_string_equal(in->backend->name, "api");
    assert_int_equal(in->backend->n_servers, 2);
    assert_string_equal(in->backend->servers[0].text, "127.0.0.1:9000");
    assert_string_equal(in->backend->servers[1].text, "[::1]:9001");
    assert_int_equal(in->backend->servers[1].pos.line, 19);
    assert_int_equal(in->backend->servers[1].pos.col, 9);
    config_free(cfg);
}

/* A YAML alias may share one certificate list between listeners. */
static void
test_alias(void **state)
{
    struct config *cfg = load_ok("alias_ok");

    (void)state;
    assert_int_equal(cfg->n_listeners, 2);
    assert_int_equal(cfg->listeners[1].n_certs, 1);
    assert_cert(&cfg->listeners[1].certs[0], CONFIGS "/demo-cert.pem", CONFIGS "/demo-key.pem");
    assert_ptr_not_equal(cfg->listeners[0].certs, cfg->listeners[1].certs);
    config_free(cfg);
}

static void
test_admin_watch_notice(void **state)
{
    struct config *cfg = load_ok("admin_remote_allowed");

    (void)state;
    assert_true(cfg->admin.enabled);
    assert_true(cfg->admin.allow_remote);
    assert_string_equal(cfg->admin.listen.text, "[::]:9443");
    assert_false(cfg->watch.enabled);
    assert_int_equal(cfg->watch.debounce_ms, 2000);
    assert_int_equal(cfg->timeouts.drain_notice_ms, 0);
    config_free(cfg);
    cfg = load_ok("alias_ok");          /* the defaults */
    assert_false(cfg->admin.enabled);
    assert_true(cfg->watch.enabled);
    assert_int_equal(cfg->watch.debounce_ms, 1000);
    config_free(cfg);
}

/* Relative config paths: certificates resolve against the file's own
 * directory, made absolute with the current directory. */
static void
test_relative_paths(void **state)
{
    static const char *const paths[] = { "minimal.yaml", "./minimal.yaml", "../configs/minimal.yaml" };
    char old[PATH_MAX], cwd[PATH_MAX], want[PATH_MAX + 32];

    (void)state;
    assert_non_null(getcwd(old, sizeof(old)));
    assert_int_equal(chdir(CONFIGS), 0);
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    for (size_t i = 0; i < ARRAY_LEN(paths); i++) {
        struct config_errors errs = { 0 };
        struct config *cfg = config_load(paths[i], &errs);
        assert_non_null(cfg);
        assert_string_equal(cfg->path, paths[i]);
        snprintf(want, sizeof(want), "%s%s/demo-cert.pem", cwd, i == 2 ? "/../configs" : "");
        assert_string_equal(cfg->listeners[0].certs[0].cert_file, want);
        config_free(cfg);
    }
    assert_int_equal(chdir(old), 0);
}

/* ---- invalid files ------------------------------------------------------ */

struct bad {
    const char *name;               /* fixture without ".yaml" */
    const char *msgs[MAX_EXPECTED]; /* each "LINE:COL: message" */
};

#define CIPHERS_VALID "ECDHE-ECDSA-AES128-GCM-SHA256, ECDHE-RSA-AES128-GCM-SHA256, " \
    "ECDHE-ECDSA-AES256-GCM-SHA384, ECDHE-RSA-AES256-GCM-SHA384, " \
    "ECDHE-ECDSA-CHACHA20-POLY1305, ECDHE-RSA-CHACHA20-POLY1305"
#define TOP_KEYS "workers, user, group, log, timeouts, limits, admin, watch, tls, listeners, backends"
#define WORKERS_RANGE "expected \"auto\" or an integer from 1 to 1024"

/* Not const: cmocka hands each entry to its test as mutable state. */
static struct bad bad_configs[] = {
    { "syntax", { "3:14: YAML syntax error: mapping values are not allowed in this context" } },
    { "syntax_indent", { "4:4: YAML syntax error: did not find expected '-' indicator "
                         "(while parsing a block collection at line 2, column 3)" } },
    { "does-not-exist", { " cannot open: No such file or directory" } },
    { "empty", { "1:1: config is empty (expected a mapping with at least "
                 "\"listeners\" and \"backends\")" } },
    { "comments_only", { "1:1: config is empty (expected a mapping with at least "
                         "\"listeners\" and \"backends\")" } },
    { "top_sequence", { "1:1: top level must be a mapping" } },
    { "top_scalar", { "1:1: top level must be a mapping" } },
    { "multi_document", { "11:1: only one YAML document is allowed in a config file" } },
    { "unknown_top_hint", { "1:1: unknown key \"time_outs\" (did you mean \"timeouts\"?)" } },
    { "unknown_top_case", { "1:1: unknown key \"Workers\" (did you mean \"workers\"?)" } },
    { "unknown_nested_hint", { "3:3: unknown key \"idel\" (did you mean \"idle\"?)" } },
    { "unknown_nohint", { "10:1: unknown key \"frobnicate\" (valid keys: " TOP_KEYS ")" } },
    { "unknown_listener_key", { "7:5: unknown key \"frobnicate\" (valid keys: name, listen, "
                                "certificates, backend, alpn, sni_strict, client_auth, "
                                "routes, redirect_to_https, proxy_protocol_in, trusted)" } },
    { "duplicate_key", { "2:1: duplicate key \"workers\" (first at line 1)" } },
    { "bad_duration", { "1:18: invalid idle \"10x\": unknown unit (use ms, s, m, h or d)" } },
    { "zero_timeout", { "2:14: invalid handshake \"0s\": must be greater than 0" } },
    { "ticket_lifetime_ms", { "2:23: invalid lifetime \"1ms\": must be at least 1s (tickets "
                              "count whole seconds)" } },
    { "admin_remote", { "2:11: admin.listen \"0.0.0.0:9443\" is not a loopback address: the "
                        "admin listener has no authentication; set admin.allow_remote: true "
                        "to serve it there anyway" } },
    { "admin_unix_relative", { "2:11: invalid admin.listen \"unix:run/admin.sock\": the "
                               "socket's path must be absolute (unix:/run/tlsterm/admin.sock)" } },
    { "admin_no_listen", { "2:3: admin is missing required key \"listen\"" } },
    { "huge_timeout", { "2:9: invalid idle \"31d\": must be at most 30d" } },
    { "timeouts_not_map", { "1:11: \"timeouts\" must be a mapping" } },
    { "bad_size", { "1:23: invalid buffer_size \"16q\": unknown suffix (use k, m or g)" } },
    { "size_range", { "2:16: invalid buffer_size \"2m\": must be between 1k and 1m" } },
    { "max_conn_zero", { "2:20: invalid max_connections \"0\": expected an integer "
                         "from 1 to 10000000" } },
    { "yaml_star_unquoted", { "3:14: YAML syntax error: did not find expected alphabetic or "
        "numeric character (while scanning an alias at line 3, column 13); a value that starts "
        "with \"*\" (\"*:443\", \"*.example.com\") must be in quotes" } },
    { "yaml_ipv6_unquoted", { "3:14: YAML syntax error: did not find expected node content; an "
        "IPv6 address with a port (\"[::1]:443\") must be in quotes" } },
    { "yaml_tab", { "2:1: YAML syntax error: found character that cannot start any token; tabs "
        "cannot indent YAML: use spaces" } },
    { "ciphers_openssl_string", { "2:12: \"ciphers\" must be a sequence of names, not an "
        "OpenSSL-style string: ciphers: [NAME, NAME, ...] (see tlsterm.yaml(5))" } },
    { "per_address_bad", {
        "3:18: invalid connections \"-1\": expected an integer from 0 to 10000000",
        "4:28: invalid handshakes_per_second \"fast\": expected an integer from 0 to 1000000",
        "5:14: invalid exempt address \"10.0.0.0/33\": prefix length must be 0 to 32",
        "5:29: invalid exempt address \"lb.example\": not a numeric IPv4 or IPv6 address",
        "6:5: unknown key \"burst\" (valid keys: connections, handshakes_per_second, "
        "handshake_burst, exempt)" } },
    { "workers_zero", { "1:10: invalid workers \"0\": " WORKERS_RANGE } },
    { "workers_lots", { "1:10: invalid workers \"lots\": " WORKERS_RANGE } },
    { "workers_5000", { "1:10: invalid workers \"5000\": " WORKERS_RANGE } },
    { "workers_negative", { "1:10: invalid workers \"-2\": " WORKERS_RANGE } },
    { "log_level", { "2:10: invalid level \"verbose\": expected error, warn, info or debug" } },
    { "log_target", { "2:11: invalid target \"journal\": expected stderr, syslog or file" } },
    { "log_file_missing", { "1:1: log: target \"file\" needs \"file: PATH\"" } },
    { "log_file_unused", { "1:1: log: \"file\" is only used with \"target: file\"" } },
    { "user_unknown", { "1:7: unknown user \"no-such-user-tlsterm\"" } },
    { "group_unknown", { "2:8: unknown group \"no-such-group-tlsterm\"" } },
    { "group_without_user", { "1:1: \"group\" needs \"user\": tlsterm changes both or neither" } },
    { "bad_proxy_protocol", { "10:21: invalid proxy_protocol \"v3\": expected v1, v2 or off" } },
    { "bad_hsts", { "11:11: invalid hsts \"max-age=abc\": expected max-age=SECONDS, optionally "
                    "followed by \"; includeSubDomains\" and \"; preload\"" } },
    { "bad_head_limit", { "11:23: invalid max_request_head \"1m\": must be between 1k and 80k "
                          "(http-parser's own limit)" } },
    { "http_opts_without_forwarded", { "9:5: backend \"app\": hsts needs "
                                       "\"forwarded_headers: true\"" } },
    { "proxy_in_untrusted", { "2:5: listener https: proxy_protocol_in needs \"trusted: [CIDR, "
                              "...]\", the addresses of the load balancers allowed to send "
                              "the header" } },
    { "bad_trusted", { "7:27: invalid trusted address \"10.0.0.0/40\": prefix length must be "
                       "0 to 32" } },
    { "redirect_with_backend", { "5:5: unknown key \"backend\" (valid keys: name, listen, "
                                 "redirect_to_https, https_port, proxy_protocol_in, "
                                 "trusted)" } },
    { "zero_drain", { "1:19: invalid drain \"0s\": must be greater than 0" } },
    { "tls_v11", { "2:16: invalid min_version \"1.1\": TLS 1.0 and 1.1 are insecure; "
                   "the minimum is \"1.2\"" } },
#if MBEDTLS_VERSION_MAJOR < 3
    { "tls_v13", { "1:20: invalid min_version \"1.3\": TLS 1.3 needs tlsterm built against "
                   "mbedTLS 3.6 (this build uses mbedTLS " MBEDTLS_VERSION_STRING ", which has "
                   "TLS 1.2 only)" } },
    { "tls_max_v13", { "1:20: invalid max_version \"1.3\": TLS 1.3 needs tlsterm built "
                       "against mbedTLS 3.6 (this build uses mbedTLS " MBEDTLS_VERSION_STRING
                       ", which has TLS 1.2 only)" } },
#else
    { "tls_v14", { "1:20: invalid min_version \"1.4\": expected \"1.2\" or \"1.3\"" } },
    { "tls_min_above_max", { "1:1: tls: min_version \"1.3\" is above max_version "
                             "\"1.2\"" } },
#endif
    { "unknown_suite13", { "2:42: unknown TLS 1.3 ciphersuite \"TLS_AES_128_CCM_SHA256\" "
                           "(valid: TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384, "
                           "TLS_CHACHA20_POLY1305_SHA256)" } },
    { "unknown_cipher", { "2:42: unknown cipher \"RC4-SHA\" (valid: " CIPHERS_VALID ")" } },
    { "cbc_cipher", { "3:7: cipher \"TLS-ECDHE-RSA-WITH-AES-128-CBC-SHA256\" is a CBC suite, "
                      "which tlsterm does not offer (only AEAD suites: AES-GCM and "
                      "ChaCha20-Poly1305; valid: " CIPHERS_VALID ")" } },
    { "unknown_curve", { "2:20: unknown curve \"secp192r1\" (valid: x25519, secp256r1, "
                         "secp384r1, secp521r1)" } },
    { "empty_ciphers", { "2:12: \"ciphers\" must not be empty" } },
    { "ciphers_string", { "2:12: \"ciphers\" must be a sequence" } },
    { "duplicate_cipher", { "4:7: duplicate cipher \"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\" "
                            "(ECDHE-RSA-AES128-GCM-SHA256 is already listed)" } },
    { "listeners_not_seq", { "2:3: \"listeners\" must be a sequence" } },
    { "listeners_empty", { "1:12: \"listeners\" must not be empty" } },
    { "missing_listeners", { "1:1: config is missing required key \"listeners\"" } },
    { "missing_backends", { "1:1: config is missing required key \"backends\"" } },
    { "listener_missing_name", { "2:5: listener is missing required key \"name\"" } },
    { "listener_missing_listen", { "2:5: listener is missing required key \"listen\"" } },
    { "listener_missing_certs", { "2:5: listener is missing required key \"certificates\"" } },
    { "listener_missing_backend", { "2:5: listener is missing required key \"backend\"" } },
    { "listener_null_backend", { "6:13: \"backend\" needs a value" } },
    { "listener_bad_name", { "2:11: invalid listener name \"my https\": use only letters, "
                             "digits, \"_\", \".\" and \"-\"" } },
    { "cert_missing_key", { "5:9: certificate entry is missing required key \"key\"" } },
    { "cert_not_map", { "4:20: each entry of \"certificates\" must be a mapping with "
                        "\"cert\" and \"key\", or with \"dir\"" } },
    { "unknown_backend", { "6:14: unknown backend \"apps\" (defined backends: app, api)" } },
    { "duplicate_listener_name", { "7:11: duplicate listener name \"https\" "
                                   "(first used at line 2)" } },
    { "duplicate_listen", { "8:32: duplicate listen address \"0.0.0.0:8443\" (already used "
                            "by listener \"a\" at line 3, column 14)" } },
    { "duplicate_listen_same", {
        "3:32: duplicate listen address \"127.0.0.1:8443\" (already used by listener "
        "\"https\" at line 3, column 14)",
        "3:64: duplicate listen address \"[::1]:8443\" (already used by listener "
        "\"https\" at line 3, column 50)",
    } },
    { "listener_key_typo", { "6:5: unknown key \"backedn\" (did you mean \"backend\"?)" } },
    { "yaml_bad_token", { "2:6: YAML syntax error: found character that cannot start any token" } },
    { "yaml_undefined_alias", { "1:12: YAML syntax error: found undefined alias" } },
    { "yaml_not_utf8", { " YAML syntax error: invalid leading UTF-8 octet (at byte 10)" } },
    { "non_string_key", { "1:3: keys must be strings" } },
    { "listener_not_map", { "1:13: each entry of \"listeners\" must be a mapping" } },
    { "backend_not_map", { "8:8: backend \"app\" must be a mapping with \"servers\"" } },
    { "backend_bad_name", { "8:3: invalid backend name \"my app\": use only letters, digits, "
                            "\"_\", \".\" and \"-\"" } },
    { "cert_empty_path", { "5:16: \"cert\" must not be empty" } },
    { "nul_in_string", { "2:11: \"name\" must not contain NUL characters" } },
    { "port_range", { "3:13: invalid listen address \"0.0.0.0:8443-8445\": "
                      "port ranges are not supported" } },
    { "port_zero", { "3:13: invalid listen address \"0.0.0.0:0\": "
                     "port must be between 1 and 65535" } },
    { "port_too_big", { "3:32: invalid listen address \"[::1]:65536\": "
                        "port must be between 1 and 65535" } },
    { "listen_hostname", { "3:13: invalid listen address \"localhost:8443\": "
                           "listen addresses must be numeric IP addresses" } },
    { "ipv6_unbracketed", { "3:13: invalid listen address \"::1:8443\": IPv6 addresses "
                            "must be in brackets, e.g. \"[::1]:443\"" } },
    { "listen_missing_port", { "3:13: invalid listen address \"127.0.0.1\": "
                               "missing port (expected HOST:PORT)" } },
    { "backend_no_servers", { "8:8: backend \"app\" is missing required key \"servers\"" } },
    { "backend_empty_servers", { "9:14: \"servers\" must not be empty" } },
    { "backend_star", { "8:18: invalid server address \"*:8080\": "
                        "\"*\" is only allowed in listen addresses" } },
    { "two_errors", {
        "1:10: invalid workers \"lots\": " WORKERS_RANGE,
        "2:18: invalid idle \"0\": must be greater than 0",
    } },
    { "many_errors", {
        "1:10: invalid workers \"0\": " WORKERS_RANGE,
        "2:14: invalid level \"loud\": expected error, warn, info or debug",
        "3:10: unknown key \"max_conections\" (did you mean \"max_connections\"?)",
        "6:32: invalid listen address \"127.0.0.1:8443-8444\": port ranges are not supported",
        "8:9: certificate entry is missing required key \"key\"",
        "12:14: invalid server address \"localhost\": missing port (expected HOST:PORT)",
        "9:14: unknown backend \"ap\" (defined backends: app)",
    } },
};

static size_t
expected_count(const struct bad *b)
{
    size_t n = 0;

    while (n < MAX_EXPECTED && b->msgs[n] != NULL)
        n++;
    return n;
}

static void
expect_errors(const char *name, const char *const *msgs, size_t n)
{
    char path[PATH_MAX], want[PATH_MAX + 2048];
    struct config_errors errs = { 0 };
    struct config *cfg;

    fixture_path(path, sizeof(path), name);
    cfg = config_load(path, &errs);
    if (errs.n != n) {
        for (size_t i = 0; i < errs.n; i++)
            print_error("got: %s\n", errs.msgs[i]);
    }
    assert_null(cfg);
    assert_int_equal(errs.n, n);
    for (size_t i = 0; i < n; i++) {
        snprintf(want, sizeof(want), "%s:%s", path, msgs[i]);
        assert_string_equal(errs.msgs[i], want);
    }
    config_errors_free(&errs);
    assert_null(errs.msgs);
    assert_int_equal(errs.n, 0);
}

static void
test_bad_config(void **state)
{
    const struct bad *b = *state;

    expect_errors(b->name, b->msgs, expected_count(b));
}

/* The resolver's answer for a .invalid name differs between hosts (not
 * found, or a temporary failure without DNS), so take the reason from
 * config_parse_addr itself and check position and wording around it. */
static void
test_unresolvable_backend(void **state)
{
    struct config_addr a;
    const char *why = NULL;
    char msg[512];
    const char *msgs[1] = { msg };

    (void)state;
    assert_int_equal(config_parse_addr("app-server.invalid:8080", true, &a, &why), -1);
    assert_non_null(strstr(why, "cannot resolve host name"));
    snprintf(msg, sizeof(msg), "11:9: invalid server address \"app-server.invalid:8080\": %s",
             why);
    expect_errors("backend_unresolvable", msgs, 1);
}

/* A directory is not a config file. */
static void
test_directory(void **state)
{
    struct config_errors errs = { 0 };

    (void)state;
    assert_null(config_load(CONFIGS, &errs));
    assert_int_equal(errs.n, 1);
    assert_string_equal(errs.msgs[0], CONFIGS ": cannot open: Is a directory");
    config_errors_free(&errs);
}

/* Errors already in the list are kept; new ones are appended. */
static void
test_errors_accumulate(void **state)
{
    char path[PATH_MAX];
    struct config_errors errs = { 0 };

    (void)state;
    config_errors_add(&errs, "x.yaml", (struct config_pos){ 0, 0 }, "first %d", 1);
    fixture_path(path, sizeof(path), "workers_lots");
    assert_null(config_load(path, &errs));
    assert_int_equal(errs.n, 2);
    assert_string_equal(errs.msgs[0], "x.yaml: first 1");
    fixture_path(path, sizeof(path), "minimal");
    {
        struct config *cfg = config_load(path, &errs);
        assert_non_null(cfg);       /* old errors do not fail a good file */
        config_free(cfg);
    }
    assert_int_equal(errs.n, 2);
    config_errors_free(&errs);
    config_free(NULL);
}

int
main(void)
{
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_minimal_defaults),
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_multi),
        cmocka_unit_test(test_alias),
        cmocka_unit_test(test_relative_paths),
        cmocka_unit_test(test_unresolvable_backend),
        cmocka_unit_test(test_directory),
        cmocka_unit_test(test_errors_accumulate),
        cmocka_unit_test(test_admin_watch_notice),
    };
    struct CMUnitTest tests[ARRAY_LEN(fixed) + ARRAY_LEN(bad_configs)];
    size_t n = 0;

    for (size_t i = 0; i < ARRAY_LEN(fixed); i++)
        tests[n++] = fixed[i];
    for (size_t i = 0; i < ARRAY_LEN(bad_configs); i++) {
        struct CMUnitTest t = { bad_configs[i].name, test_bad_config, NULL, NULL,
                                &bad_configs[i] };
        tests[n++] = t;
    }
    assert_int_equal(n, ARRAY_LEN(tests));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
