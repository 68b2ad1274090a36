/* SPDX-License-Identifier: BSD-2-Clause */
/* driver.h - what a fuzz target gives the built-in driver (driver.c).
 *
 * Every target defines LLVMFuzzerTestOneInput() and, for the built-in
 * driver `make check` runs, its name and seeds.  Built with
 * -DFUZZ_LIBFUZZER and -fsanitize=fuzzer, libFuzzer drives the same
 * function instead, with tests/fuzz/corpus/<name>/ as its corpus. */
#ifndef TLSTERM_FUZZ_DRIVER_H
#define TLSTERM_FUZZ_DRIVER_H

#include <stddef.h>
#include <stdint.h>

struct fuzz_seed {
    const char *p;
    size_t n;
};
#define FUZZ_SEED(s) { s, sizeof(s) - 1 }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#ifndef FUZZ_LIBFUZZER
extern const char fuzz_name[];
extern const struct fuzz_seed fuzz_seeds[];
extern const size_t fuzz_n_seeds;
extern const long fuzz_iterations;     /* mutated inputs per make check run */
#endif

#endif
