/* SPDX-License-Identifier: BSD-2-Clause */
/* Fuzz target for the SNI table (src/tls_sni.c): certificate names on one
 * side (from the operator's files), the client's server_name on the other.
 *
 * Input: names separated by '\n' (a line starting with '?' is a lookup of
 * the client's name instead of a certificate name).
 * With clang's libFuzzer:
 *   clang -g -fsanitize=fuzzer,address,undefined -DFUZZ_LIBFUZZER -I. -Isrc \
 *       tests/fuzz/fuzz_sni.c src/tls_sni.c -o fuzz_sni
 * Checks: a lookup finds only what was added (exact name, or "*." of the
 * name minus its first label), case does not matter, and sni_match()
 * agrees with the table. */
#include "autoconf.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "tls_sni.h"

static void
lookup(struct sni_table *t, const char *name, size_t len, char **added, size_t n_added)
{
    const struct sni_entry *e = sni_table_find(t, name, len);
    char *z = strndup(name, len);
    bool any = false;

    if (z == NULL)
        return;
    for (size_t i = 0; i < n_added; i++)
        any |= strlen(z) == len && sni_match(added[i], z);
    if (e != NULL && (e->n == 0 || e->n > SNI_MAX_CERTS_PER_NAME))
        abort();
    if ((e != NULL) != any && strlen(z) == len && len <= 255)
        abort();                        /* table and sni_match() disagree */
    free(z);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sni_table *t = sni_table_new();
    char *added[64];
    size_t n_added = 0, at = 0;
    unsigned idx = 0;

    if (t == NULL)
        return 0;
    while (at < size) {
        const char *line = (const char *)data + at;
        size_t len = 0;
        while (at + len < size && line[len] != '\n')
            len++;
        at += len + 1;
        if (len > 0 && line[0] == '?') {
            lookup(t, line + 1, len - 1, added, n_added);
        } else if (n_added < 64 && memchr(line, 0, len) == NULL) {
            char *name = strndup(line, len);
            if (name != NULL && sni_table_add(t, name, idx++ % 8) == 0)
                added[n_added++] = name;
            else
                free(name);
        }
    }
    for (size_t i = 0; i < n_added; i++)
        free(added[i]);
    sni_table_free(t);
    return 0;
}

#ifndef FUZZ_LIBFUZZER
const char fuzz_name[] = "sni";
const struct fuzz_seed fuzz_seeds[] = {
    FUZZ_SEED("www.example.com\n*.example.org\napi.example.org\n?WWW.Example.com\n"
              "?x.example.org\n?example.org\n?a.b.example.org"),
    FUZZ_SEED("*.\n\n*\n?\n?.\n?*.x"),
    FUZZ_SEED("shop.example\nshop.example\nshop.example\nshop.example\nshop.example\n"
              "?shop.example"),
};
const size_t fuzz_n_seeds = sizeof(fuzz_seeds) / sizeof(fuzz_seeds[0]);
const long fuzz_iterations = 100000;
#endif
