/* SPDX-License-Identifier: BSD-2-Clause */
/* driver.c - the built-in fuzz driver `make check` runs for every target
 * (driver.h): first every file of $FUZZ_CORPUS_DIR/<name>/ (the seed
 * corpus and every input a libFuzzer run found, kept as regression
 * inputs), then the target's seeds, then mutations of them with a fixed
 * random seed, so a failure is reproducible.  Usage: TARGET [ITERATIONS]. */
#include "autoconf.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"

#define FUZZ_MAX_INPUT 65536

/* Byte flips, insertions of protocol-significant bytes, deletions and
 * duplications of a span. */
static size_t
mutate(uint8_t *buf, size_t len, size_t cap, unsigned *rnd)
{
    static const char tokens[] = "\r\n:; \t/.*0123456789abcdefABCDEF-\"\\[]{}\0\xff";
    int edits = 1 + (int)(rand_r(rnd) % 8);

    for (int e = 0; e < edits && len > 0; e++) {
        size_t at = (size_t)rand_r(rnd) % len;
        switch (rand_r(rnd) % 4) {
        case 0:
            buf[at] = (uint8_t)tokens[(size_t)rand_r(rnd) % (sizeof(tokens) - 1)];
            break;
        case 1:
            if (len < cap) {
                memmove(buf + at + 1, buf + at, len - at);
                buf[at] = (uint8_t)rand_r(rnd);
                len++;
            }
            break;
        case 2:
            memmove(buf + at, buf + at + 1, len - at - 1);
            len--;
            break;
        default: {
            size_t n = (size_t)rand_r(rnd) % 64;
            if (n > len - at)
                n = len - at;
            if (len + n <= cap) {
                memmove(buf + at + n, buf + at, len - at);
                len += n;
            }
            break;
        }
        }
    }
    return len;
}

static long
run_corpus(void)
{
    const char *dir = getenv("FUZZ_CORPUS_DIR");
    char path[4096];
    static uint8_t buf[FUZZ_MAX_INPUT];
    struct dirent *e;
    long n = 0;
    DIR *d;

    if (dir == NULL)
        return 0;
    snprintf(path, sizeof(path), "%s/%s", dir, fuzz_name);
    if ((d = opendir(path)) == NULL)
        return 0;
    while ((e = readdir(d)) != NULL) {
        FILE *f;
        size_t len;
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s/%s", dir, fuzz_name, e->d_name);
        if ((f = fopen(path, "rb")) == NULL)
            continue;
        len = fread(buf, 1, sizeof(buf), f);
        fclose(f);
        LLVMFuzzerTestOneInput(buf, len);
        n++;
    }
    closedir(d);
    return n;
}

int
main(int argc, char **argv)
{
    unsigned rnd = 20261205;
    long iterations = argc > 1 ? strtol(argv[1], NULL, 10) : fuzz_iterations, files = run_corpus();
    static uint8_t buf[FUZZ_MAX_INPUT];

    for (size_t i = 0; i < fuzz_n_seeds; i++)
        LLVMFuzzerTestOneInput((const uint8_t *)fuzz_seeds[i].p, fuzz_seeds[i].n);
    for (long i = 0; i < iterations; i++) {
        const struct fuzz_seed *s = &fuzz_seeds[(size_t)i % fuzz_n_seeds];
        size_t len = s->n < sizeof(buf) ? s->n : sizeof(buf);
        memcpy(buf, s->p, len);
        LLVMFuzzerTestOneInput(buf, mutate(buf, len, sizeof(buf), &rnd));
    }
    printf("fuzz_%s: %ld corpus file(s), %zu seed(s), %ld mutated inputs, no crash\n",
           fuzz_name, files, fuzz_n_seeds, iterations);
    return 0;
}
