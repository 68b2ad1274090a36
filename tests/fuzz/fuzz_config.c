/* SPDX-License-Identifier: BSD-2-Clause */
/* Fuzz target for the config loader (src/config*.c): YAML bytes in, a
 * config or a list of errors out, and no leak either way (operators paste
 * configs from the internet; a reload reads whatever is on disk).
 *
 * The bytes reach config_load() through a memfd, as a file would.  Host
 * names of backend servers are not resolved: this file defines its own
 * getaddrinfo(), which the link prefers to the C library's and which asks
 * the real one for numeric addresses only, so a run never waits on DNS.
 * With clang's libFuzzer:
 *   clang -g -fsanitize=fuzzer,address,undefined -DFUZZ_LIBFUZZER -I. -Isrc \
 *       tests/fuzz/fuzz_config.c src/config*.c src/files.c src/log.c src/tls_names.c \
 *       -lyaml -lmbedtls -lmbedcrypto -o fuzz_config
 *   ./fuzz_config tests/fuzz/corpus/config
 * (tests/fuzz/libfuzzer.sh builds and runs every target this way.)
 * Checks: exactly one of config and errors; every error names the file
 * and a position. */
#include "autoconf.h"

#include <dlfcn.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "driver.h"

typedef int gai_fn(const char *, const char *, const struct addrinfo *, struct addrinfo **);
int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res);

/* Numeric only: the resolver's own code with AI_NUMERICHOST. */
int
getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
            struct addrinfo **res)
{
    struct addrinfo h = hints != NULL ? *hints : (struct addrinfo){ 0 };
    gai_fn *real = (gai_fn *)dlsym(RTLD_NEXT, "getaddrinfo");

    h.ai_flags |= AI_NUMERICHOST;
    return real != NULL ? real(node, service, &h, res) : EAI_FAIL;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    struct config_errors errs = { 0 };
    struct config *cfg;

    if (fd < 0) {
        fd = memfd_create("fuzz-config.yaml", 0);
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    }
    if (fd < 0 || ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        abort();
    cfg = config_load(path, &errs);
    if ((cfg != NULL) == (errs.n != 0))
        abort();
    for (size_t i = 0; i < errs.n; i++)
        if (strncmp(errs.msgs[i], path, strlen(path)) != 0)
            abort();                    /* every message starts with the file */
    config_free(cfg);
    config_errors_free(&errs);
    return 0;
}

#ifndef FUZZ_LIBFUZZER
const char fuzz_name[] = "config";
const struct fuzz_seed fuzz_seeds[] = {
    FUZZ_SEED("workers: 2\nlog: {level: info, format: json}\nadmin: {listen: \"127.0.0.1:9443\"}\n"
              "timeouts: {handshake: 10s, idle: 300s, drain_notice: 2s}\n"
              "limits: {max_connections: 1000,\n"
              "         per_address: {connections: 10, exempt: [10.0.0.0/8]}}\n"
              "tls: {min_version: \"1.2\", tickets: {lifetime: 1h}}\n"
              "x-certs: &c [{cert: /c.pem, key: /k.pem}]\n"
              "listeners:\n  - name: https\n    listen: [\"127.0.0.1:8443\", \"[::1]:8443\"]\n"
              "    certificates: *c\n    alpn: [h2, http/1.1]\n    backend: app\n"
              "    routes: [{sni: \"*.example.com\", backend: app}]\n"
              "  - {name: http, listen: \"127.0.0.1:8080\", redirect_to_https: true}\n"
              "backends:\n  app:\n    servers: [\"127.0.0.1:80\", \"unix:/run/app.sock\"]\n"
              "    balance: least_conn\n    health: {type: http, path: /h}\n"
              "    forwarded_headers: true\n"),
    FUZZ_SEED("base: &b {servers: [\"10.0.0.1:80\"]}\n"
              "backends: {a: {<<: *b, balance: source_hash}}\n"
              "listeners: [{name: x, listen: \"*:443\", certificates: {dir: /etc/certs},\n"
              "             backend: a}]\n"),
    FUZZ_SEED("a: &a [*a]\n"),
};
const size_t fuzz_n_seeds = sizeof(fuzz_seeds) / sizeof(fuzz_seeds[0]);
const long fuzz_iterations = 20000;
#endif
