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
/* `openssl s_client -tls1_3` (OpenSSL 3.0). */
#define SEED_LEN (sizeof(seed) - 1)     /* the literal's NUL is not sent */
static const unsigned char seed[] =
    "\x16\x03\x01\x00\xf0\x01\x00\x00\xec\x03\x03\x85\xa0\xd3\x5e\x3b\x7c\x15\xb1\x65\x6c\x99\xba\xf1\x77\x58\xd7\x67\x5e\x63\xb0\xfa"
    "\x6d\xf2\xa3\xd8\x11\x25\xd4\x01\xeb\x96\x12\x20\xba\xc3\x77\x59\x10\x56\x1c\xfb\xe0\xe5\x92\xe9\x4c\x3e\x35\xeb\xe8\xb7\x82\x7d"
    "\xd2\xa7\x03\x4c\x1c\x82\x01\xa9\xb3\x97\x3f\xc3\x00\x08\x13\x02\x13\x03\x13\x01\x00\xff\x01\x00\x00\x9b\x00\x00\x00\x10\x00\x0e"
    "\x00\x00\x0b\x65\x78\x61\x6d\x70\x6c\x65\x2e\x63\x6f\x6d\x00\x0b\x00\x04\x03\x00\x01\x02\x00\x0a\x00\x16\x00\x14\x00\x1d\x00\x17"
    "\x00\x1e\x00\x19\x00\x18\x01\x00\x01\x01\x01\x02\x01\x03\x01\x04\x00\x23\x00\x00\x00\x16\x00\x00\x00\x17\x00\x00\x00\x0d\x00\x1e"
    "\x00\x1c\x04\x03\x05\x03\x06\x03\x08\x07\x08\x08\x08\x09\x08\x0a\x08\x0b\x08\x04\x08\x05\x08\x06\x04\x01\x05\x01\x06\x01\x00\x2b"
    "\x00\x03\x02\x03\x04\x00\x2d\x00\x02\x01\x01\x00\x33\x00\x26\x00\x24\x00\x1d\x00\x20\xfe\xf0\xe1\x67\x67\xb6\x3e\x9d\x90\x33\x77"
    "\x5b\xc5\x9f\x05\x21\x45\x9c\x9b\x35\xda\x7a\xca\x04\xdc\x17\x50\xbe\x0b\x73\xbc\x33";

int
main(int argc, char **argv)
{
    unsigned rnd = 20261205;
    long iterations = argc > 1 ? strtol(argv[1], NULL, 10) : 300000;
    unsigned char buf[SEED_LEN + 64];

    LLVMFuzzerTestOneInput(seed, SEED_LEN);
    for (long i = 0; i < iterations; i++) {
        size_t len = SEED_LEN;
        int edits = 1 + (int)(rand_r(&rnd) % 6);

        memcpy(buf, seed, len);
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
