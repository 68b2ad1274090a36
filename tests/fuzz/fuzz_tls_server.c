/* SPDX-License-Identifier: BSD-2-Clause */
/* Fuzz target for tlsterm's TLS server where a hostile client meets it:
 * the real configuration path (gen_load: certificates of two key types
 * picked by SNI, ALPN, session tickets and the session cache, optional
 * client certificates) and tlsterm's own callbacks and record BIO, fed
 * the client's side of a handshake from the fuzzer.
 *
 * The transport is an AF_UNIX socketpair: the input is written to the
 * client's end, which is then shut for writing, so the server reads
 * exactly those bytes and then EOF; what it answers is read and dropped.
 * Setup (once): two certificates made with the openssl command in a
 * temporary directory, a config naming them, gen_load().
 * With clang's libFuzzer: tests/fuzz/libfuzzer.sh tls_server.
 * Checks: no memory error, no leak, and a handshake that ends well has a
 * version and suite the config allows. */
#include "autoconf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "driver.h"
#include "gen.h"
#include "log.h"
#include "tls.h"

static struct gen *gen;

static void
sh(const char *cmd)
{
    if (system(cmd) != 0) {
        fprintf(stderr, "fuzz_tls_server: setup failed: %s\n", cmd);
        abort();
    }
}

static void
setup(void)
{
    static char dir[] = "/tmp/fuzz-tls-XXXXXX";
    char cmd[2048], path[256];
    struct config_errors errs = { 0 };
    FILE *f;

    if (mkdtemp(dir) == NULL)
        abort();
    log_set_level(LOG_LVL_ERROR);
    snprintf(cmd, sizeof(cmd),
             "cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
             "-keyout ec.key -out ec.pem -days 30 -subj /CN=fuzz.example "
             "-addext subjectAltName=DNS:fuzz.example,DNS:*.wild.example 2>/dev/null && "
             "openssl req -x509 -newkey rsa:2048 -nodes -keyout rsa.key -out rsa.pem -days 30 "
             "-subj /CN=rsa.example -addext subjectAltName=DNS:rsa.example 2>/dev/null", dir);
    sh(cmd);
    snprintf(path, sizeof(path), "%s/fuzz.yaml", dir);
    if ((f = fopen(path, "w")) == NULL)
        abort();
    fprintf(f, "workers: 1\nlog: {level: error}\n"
               "tls: {tickets: {enabled: true}, session_cache: {size: 100}}\n"
               "listeners:\n  - name: fuzz\n    listen: \"127.0.0.1:1\"\n"
               "    certificates: [{cert: ec.pem, key: ec.key}, {cert: rsa.pem, key: rsa.key}]\n"
               "    alpn: [h2, http/1.1]\n"
               "    client_auth: {mode: optional, ca: ec.pem}\n"
               "    backend: app\n"
               "backends: {app: {servers: [\"127.0.0.1:1\"]}}\n");
    fclose(f);
    if (tls_global_init() != 0 || (gen = gen_load(path, 1, NULL, &errs)) == NULL) {
        for (size_t i = 0; i < errs.n; i++)
            fprintf(stderr, "%s\n", errs.msgs[i]);
        abort();
    }
    config_errors_free(&errs);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    sh(cmd);
}

static void
drain(int fd)
{
    char buf[16384];

    while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
        ;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int sv[2];
    struct tls_conn *t;
    enum tls_status st = TLS_WANT_READ;

    if (gen == NULL)
        setup();
    if (size > 60000 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0)
        return 0;
    if (write(sv[1], data, size) != (ssize_t)size)
        abort();
    shutdown(sv[1], SHUT_WR);
    t = tls_conn_new(gen->wtls[0], 0, sv[0]);
    for (int i = 0; t != NULL && i < 32 && (st == TLS_WANT_READ || st == TLS_WANT_WRITE); i++) {
        tls_readable(t);
        st = tls_handshake(t, false);
        drain(sv[1]);
    }
    if (st == TLS_OK) {
        char buf[256];
        size_t n;
        const char *v = tls_version(t);
        if (strcmp(v, "TLSv1.2") != 0 && strcmp(v, "TLSv1.3") != 0)
            abort();                    /* only what the config allows */
        tls_readable(t);
        (void)tls_read(t, buf, sizeof(buf), &n);
    }
    tls_conn_free(t);
    close(sv[0]);
    close(sv[1]);
    return 0;
}

#ifndef FUZZ_LIBFUZZER
#include "tls_hello_vector.h"
const char fuzz_name[] = "tls_server";
const struct fuzz_seed fuzz_seeds[] = {
    { (const char *)tls_hello_openssl13, TLS_HELLO_OPENSSL13_LEN },
};
const size_t fuzz_n_seeds = sizeof(fuzz_seeds) / sizeof(fuzz_seeds[0]);
const long fuzz_iterations = 3000;
#endif
