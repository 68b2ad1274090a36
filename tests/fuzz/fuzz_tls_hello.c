/* SPDX-License-Identifier: BSD-2-Clause */
/* Fuzz target for the ClientHello version reader (src/tls_hello.c): every
 * byte of it comes from an unauthenticated client.
 *
 * With clang's libFuzzer:
 *   clang -g -fsanitize=fuzzer,address,undefined -DFUZZ_LIBFUZZER -I. -Isrc \
 *       tests/fuzz/fuzz_tls_hello.c src/tls_hello.c -o fuzz_tls_hello
 * Without it (make check) the built-in driver mutates a real hello with a
 * fixed random seed, so a failure is reproducible.  Besides memory errors
 * (ASan), it checks what the caller relies on: only TLS 1.0-1.3 bits, and
 * bytes after the record never change the answer. */
#include "autoconf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tls_hello.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int ours[] = { 0x1301, 0x1302, 0x1303, 0xc02b, 0xcca9, 0 };
    struct tls_hello hl;
    unsigned v = tls_hello_read(data, size, &hl);
    unsigned char *more;
    char text[64];

    if ((v & ~0x1eu) != 0)
        abort();
    if (v != 0 && (hl.suites < data || hl.suites + 2 * hl.n_suites > data + size))
        abort();                    /* the suites must lie inside the input */
    (void)tls_hello_offers_suite(&hl, ours);
    tls_hello_describe(v, text, sizeof(text));
    if (v != 0 && (more = malloc(size + 3)) != NULL) {
        memcpy(more, data, size);
        memcpy(more + size, "\x16\x03\x03", 3);
        if (tls_hello_versions(more, size + 3) != v)
            abort();
        free(more);
    }
    return 0;
}

#ifndef FUZZ_LIBFUZZER
#include "tls_hello_vector.h"

int
main(int argc, char **argv)
{
    unsigned rnd = 20261205;
    long iterations = argc > 1 ? strtol(argv[1], NULL, 10) : 300000;
    unsigned char buf[TLS_HELLO_OPENSSL13_LEN + 64];

    LLVMFuzzerTestOneInput(tls_hello_openssl13, TLS_HELLO_OPENSSL13_LEN);
    for (long i = 0; i < iterations; i++) {
        size_t len = TLS_HELLO_OPENSSL13_LEN;
        int edits = 1 + (int)(rand_r(&rnd) % 6);

        memcpy(buf, tls_hello_openssl13, len);
        for (int e = 0; e < edits; e++) {
            size_t at = (size_t)rand_r(&rnd) % len;
            switch (rand_r(&rnd) % 3) {
            case 0:             /* lengths and types live in small numbers */
                buf[at] = (unsigned char)(rand_r(&rnd) % 3 ? rand_r(&rnd) % 8 : rand_r(&rnd));
                break;
            case 1:
                len = at + 1;   /* truncate */
                break;
            default:
                buf[at] ^= (unsigned char)(1u << (rand_r(&rnd) % 8));
                break;
            }
        }
        LLVMFuzzerTestOneInput(buf, len);
    }
    printf("fuzz_tls_hello: %ld mutated inputs, no crash\n", iterations);
    return 0;
}
#endif
