/* SPDX-License-Identifier: BSD-2-Clause */
/* Fuzz target for session-ticket parsing (src/tls_ticket.c): a client
 * chooses every byte of the ticket it offers.
 *
 * Input byte 0 picks the mode: even, the rest is offered as a ticket as it
 * is (what any client can do: unknown key names, short or forged
 * tickets); odd, the rest is sealed first under the ring's key, so the
 * fuzzer reaches what follows decryption (mbedTLS's session parser, the
 * age check), as a client holding a stolen key could.
 * With clang's libFuzzer (see tests/fuzz/libfuzzer.sh for the line).
 * Checks: a ticket the target did not seal never parses; a parsed one is
 * never from the future nor older than its lifetime. */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/ssl.h>

#include "config.h"
#include "driver.h"
#include "tls_compat.h"
#include "tls_ticket.h"

static struct tls_ticket_user user;

static void
setup(void)
{
    static mbedtls_entropy_context entropy;
    static mbedtls_ctr_drbg_context drbg;
    static char path[] = "/tmp/fuzz-ticket-XXXXXX";
    struct config cfg = { 0 };
    struct config_errors errs = { 0 };
    int fd = mkstemp(path);

    /* one fixed key, base64 of "key name 16 byte" and a 32-byte AES key */
    static const char key[] =
        "a2V5IG5hbWUgMTYgYnl0ZUFFUy0yNTYga2V5IGZvciBmdXp6aW5nIG9ubHkhISEh\n";
    if (fd < 0 || write(fd, key, sizeof(key) - 1) != (ssize_t)sizeof(key) - 1)
        abort();
    close(fd);
    tls_compat_global_init();
    cfg.path = path;
    cfg.tls.tickets.enabled = true;
    cfg.tls.tickets.key_file = path;
    cfg.tls.tickets.rotate_ms = cfg.tls.tickets.lifetime_ms = 3600 * 1000;
    user.ring = tls_tickets_new(&cfg, NULL, &errs);
    unlink(path);
    mbedtls_entropy_init(&entropy);
    mbedtls_ctr_drbg_init(&drbg);
    if (user.ring == NULL || mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy,
                                                   (const unsigned char *)"fuzz", 4) != 0)
        abort();
    user.drbg = &drbg;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static unsigned char buf[4096];
    mbedtls_ssl_session s;
    size_t len = 0;
    int ret;

    if (user.ring == NULL)
        setup();
    if (size < 1 || size - 1 > sizeof(buf) - 64)
        return 0;
    if (data[0] & 1) {
        if (tls_tickets_seal(&user, data + 1, size - 1, buf, sizeof(buf), &len) != 0)
            abort();
    } else {
        memcpy(buf, data + 1, size - 1);
        len = size - 1;
    }
    mbedtls_ssl_session_init(&s);
    ret = tls_tickets_parse(&user, &s, buf, len);
    if (ret == 0 && !(data[0] & 1))
        abort();                        /* a forged ticket opened */
    mbedtls_ssl_session_free(&s);
    return 0;
}

#ifndef FUZZ_LIBFUZZER
const char fuzz_name[] = "ticket";
const struct fuzz_seed fuzz_seeds[] = {
    FUZZ_SEED("\x00key name 16 byte0123456789abcdef0123456789abcdef"),
    FUZZ_SEED("\x01\x03\x03\x00\x00\x00\x00\x00\x00\x00\x01\xc0\x2b\x00"),
    FUZZ_SEED("\x01\x80\x00\x00\x01\x00\x00\x00\x01"),
};
const size_t fuzz_n_seeds = sizeof(fuzz_seeds) / sizeof(fuzz_seeds[0]);
const long fuzz_iterations = 50000;
#endif
