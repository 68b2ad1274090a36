/* SPDX-License-Identifier: BSD-2-Clause */
#include "autoconf.h"
/* test_privsep.c - the privileged reader's serve loop in a forked child
 * (without its sandbox), asked over a socketpair what the daemon asks:
 * it serves the config and the files the config names, and refuses
 * everything else. */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "files.h"
#include "privsep.h"

/* who the daemon would run as: owns nothing in the fixture */
#define DAEMON_UID ((uid_t)65534)
#define DAEMON_GID ((gid_t)65534)
#define BIG (300 * 1024)        /* several PRIVSEP_CHUNKs */
/* certificates: {dir: ...} only looks for the markers when it expands */
#define PAIR "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n" \
             "-----BEGIN PRIVATE KEY-----\ny\n-----END PRIVATE KEY-----\n"

static char dir[64];
static char cfg_path[128], cert_path[128], key_path[128], pass_path[128];
static char certs_dir[96], pair_path[128];
static int client_fd = -1;
static pid_t child = -1;

static void
write_file(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* The config names cert.pem, key.pem and a passphrase file that does not
 * exist; cert.pem is BIG bytes, to cross chunk boundaries. */
static void
write_fixture(void)
{
    char *big = malloc(BIG);
    char text[1024];
    int n;

    assert_non_null(big);
    for (size_t i = 0; i < BIG; i++)
        big[i] = (char)('a' + i % 26);
    snprintf(cert_path, sizeof(cert_path), "%s/cert.pem", dir);
    snprintf(key_path, sizeof(key_path), "%s/key.pem", dir);
    snprintf(pass_path, sizeof(pass_path), "%s/missing.pass", dir);
    snprintf(cfg_path, sizeof(cfg_path), "%s/tlsterm.yaml", dir);
    write_file(cert_path, big, BIG);
    write_file(key_path, "key\n", 4);
    snprintf(certs_dir, sizeof(certs_dir), "%s/certs", dir);
    snprintf(pair_path, sizeof(pair_path), "%s/x.pem", certs_dir);
    assert_int_equal(mkdir(certs_dir, 0700), 0);
    write_file(pair_path, PAIR, strlen(PAIR));
    n = snprintf(text, sizeof(text),
                 "listeners:\n"
                 "  - name: https\n"
                 "    listen: \"127.0.0.1:8443\"\n"
                 "    certificates:\n"
                 "      - {cert: cert.pem, key: %s, key_passphrase_file: missing.pass}\n"
                 "      - dir: certs\n"
                 "    backend: app\n"
                 "backends:\n"
                 "  app: {servers: [\"127.0.0.1:8080\"]}\n", key_path);
    write_file(cfg_path, text, (size_t)n);
    free(big);
}

static int
setup(void **state)
{
    int sv[2];

    (void)state;
    strcpy(dir, "/tmp/tlsterm-privsep-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    write_fixture();
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return -1;
    child = fork();
    if (child == 0) {
        close(sv[0]);
        _exit(privsep_serve(sv[1], cfg_path, DAEMON_UID, DAEMON_GID) == 0 ? 0 : 3);
    }
    close(sv[1]);
    client_fd = sv[0];
    privsep_client_init(client_fd);
    return child > 0 ? 0 : -1;
}

static int
teardown(void **state)
{
    char cmd[128];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void
expect_refused(const char *path)
{
    struct file_buf b;

    assert_int_equal(privsep_read(path, &b), -EACCES);
    assert_null(b.data);
}

static void
refuses_before_the_config(void **state)
{
    (void)state;
    expect_refused(cert_path);
}

static void
serves_the_config(void **state)
{
    struct file_buf got, want;

    (void)state;
    assert_int_equal(privsep_read(cfg_path, &got), 0);
    assert_int_equal(files_read_direct(cfg_path, &want), 0);
    assert_int_equal(got.len, want.len);
    assert_memory_equal(got.data, want.data, want.len);
    assert_int_equal(got.data[got.len], '\0');
    files_free(&got);
    files_free(&want);
}

static void
serves_a_named_cert(void **state)
{
    struct file_buf b;

    (void)state;
    assert_int_equal(privsep_read(cert_path, &b), 0);
    assert_int_equal(b.len, BIG);
    for (size_t i = 0; i < BIG; i += 4099)
        assert_int_equal(b.data[i], 'a' + i % 26);
    files_free(&b);
    assert_int_equal(privsep_read(key_path, &b), 0);
    assert_int_equal(b.len, 4);
    assert_memory_equal(b.data, "key\n", 4);
    files_free(&b);
}

static void
refuses_other_files(void **state)
{
    char path[256];
    const char *slash = strrchr(dir, '/');

    (void)state;
    expect_refused("/etc/shadow");
    expect_refused("/etc/passwd");
    /* the same file by a path through "..": refused, not normalised */
    snprintf(path, sizeof(path), "%s/../%s/cert.pem", dir, slash + 1);
    expect_refused(path);
    snprintf(path, sizeof(path), "%s/..", dir);
    expect_refused(path);
    expect_refused("cert.pem");                 /* relative */
    /* a directory the config does not name cannot be listed */
    struct file_buf b;
    assert_int_equal(privsep_list(dir, &b), -EACCES);
}

/* A named directory can be listed, and the files directly in it read. */
static void
serves_a_named_directory(void **state)
{
    struct file_buf b;
    char path[256];

    (void)state;
    assert_int_equal(privsep_list(certs_dir, &b), 0);
    assert_int_equal(b.len, strlen("x.pem") + 1);
    assert_string_equal((const char *)b.data, "x.pem");
    files_free(&b);
    assert_int_equal(privsep_read(pair_path, &b), 0);
    assert_string_equal((const char *)b.data, PAIR);
    files_free(&b);
    snprintf(path, sizeof(path), "%s/other.pem", certs_dir);
    assert_int_equal(privsep_read(path, &b), -ENOENT);
    snprintf(path, sizeof(path), "%s/../key.pem", certs_dir);
    expect_refused(path);
    snprintf(path, sizeof(path), "%s/sub/x.pem", certs_dir);  /* not directly in it */
    expect_refused(path);
}

static void
named_but_missing_is_enoent(void **state)
{
    struct file_buf b;

    (void)state;
    assert_int_equal(privsep_read(pass_path, &b), -ENOENT);
}

/* A malformed request gets EINVAL and the reader goes on serving. */
static void
survives_bad_requests(void **state)
{
    struct privsep_hdr h;
    char big[5000];
    struct file_buf b;

    (void)state;
    assert_int_equal(send(client_fd, "R", 1, 0), 1);            /* no path */
    assert_int_equal(recv(client_fd, &h, sizeof(h), 0), (ssize_t)sizeof(h));
    assert_int_equal(h.err, EINVAL);
    memset(big, 'R', sizeof(big));                              /* too long */
    assert_int_equal(send(client_fd, big, sizeof(big), 0), (ssize_t)sizeof(big));
    assert_int_equal(recv(client_fd, &h, sizeof(h), 0), (ssize_t)sizeof(h));
    assert_int_equal(h.err, EINVAL);
    assert_int_equal(send(client_fd, "R/etc\0/x", 8, 0), 8);    /* a NUL inside */
    assert_int_equal(recv(client_fd, &h, sizeof(h), 0), (ssize_t)sizeof(h));
    assert_int_equal(h.err, EINVAL);
    assert_int_equal(privsep_read(key_path, &b), 0);
    files_free(&b);
}

/* EOF on the socket is the reader's only way out, and a clean one. */
static void
exits_on_eof(void **state)
{
    int status;

    (void)state;
    close(client_fd);
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* A reader that died: EOF, and every read fails at once from then on. */
static void
gives_up_a_dead_reader(void **state)
{
    struct file_buf b;
    int sv[2];

    (void)state;
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    privsep_client_init(sv[0]);
    close(sv[1]);
    assert_int_equal(privsep_read(cfg_path, &b), -EPIPE);
    assert_null(b.data);
    assert_string_equal(files_strerror(EPIPE), "privileged reader is gone (restart tlsterm)");
    assert_int_equal(privsep_read(cfg_path, &b), -EPIPE);
}

/* A reader that does not answer is given up after the timeout, not
 * waited for: a reload must not hang. */
static void
gives_up_a_silent_reader(void **state)
{
    struct timeval tv = { 0, 200 * 1000 };
    struct file_buf b;
    int sv[2];

    (void)state;
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    privsep_client_init(sv[0]);
    assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
    assert_int_equal(privsep_read(cfg_path, &b), -EPIPE);
    assert_int_equal(privsep_read(cfg_path, &b), -EPIPE);
    close(sv[1]);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(refuses_before_the_config),
        cmocka_unit_test(serves_the_config),
        cmocka_unit_test(serves_a_named_cert),
        cmocka_unit_test(refuses_other_files),
        cmocka_unit_test(serves_a_named_directory),
        cmocka_unit_test(named_but_missing_is_enoent),
        cmocka_unit_test(survives_bad_requests),
        cmocka_unit_test(exits_on_eof),
        cmocka_unit_test(gives_up_a_dead_reader),
        cmocka_unit_test(gives_up_a_silent_reader),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
