/* SPDX-License-Identifier: BSD-2-Clause */
/* Fuzz target for the PROXY protocol v1/v2 decoder (src/proxy_proto.c),
 * which reads what a trusted balancer, or a spoofing client, sends first.
 *
 * With clang's libFuzzer:
 *   clang -g -fsanitize=fuzzer,address,undefined -DFUZZ_LIBFUZZER -I. -Isrc \
 *       tests/fuzz/fuzz_proxy.c src/proxy_proto.c -o fuzz_proxy
 *   ./fuzz_proxy tests/fuzz/corpus/proxy
 * Checks what conn_proxy.c relies on: a complete header lies inside the
 * input, its addresses are of one known family (or it is LOCAL), a
 * shorter prefix of a complete header asks for more rather than failing,
 * and the verdict does not change when bytes are appended. */
#include "autoconf.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "proxy_proto.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pp_header h, h2;
    const char *why = NULL;
    enum pp_status st = pp_decode(data, size, &h, &why);
    uint8_t *more;

    if (st == PP_INVALID && why == NULL)
        abort();                        /* every refusal says why */
    if (st != PP_OK)
        return 0;
    if (h.len == 0 || h.len > size || (h.version != 1 && h.version != 2))
        abort();
    if (!h.local && (h.src.ss_family != h.dst.ss_family ||
                     (h.src.ss_family != AF_INET && h.src.ss_family != AF_INET6)))
        abort();
    if (h.len > 1 && pp_decode(data, h.len - 1, &h2, &why) != PP_NEED_MORE &&
        h.version == 2)
        abort();                        /* v2 announces its length: a prefix needs more */
    if ((more = malloc(size + 16)) != NULL) {
        memcpy(more, data, size);
        memset(more + size, 'A', 16);
        if (pp_decode(more, size + 16, &h2, &why) != PP_OK || h2.len != h.len)
            abort();                    /* the TLS bytes behind it change nothing */
        free(more);
    }
    return 0;
}

#ifndef FUZZ_LIBFUZZER
const char fuzz_name[] = "proxy";
const struct fuzz_seed fuzz_seeds[] = {
    FUZZ_SEED("PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n\x16\x03\x01"),
    FUZZ_SEED("PROXY TCP6 2001:db8::1 2001:db8::2 56324 443\r\n"),
    FUZZ_SEED("PROXY UNKNOWN\r\n"),
    FUZZ_SEED("\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c\xc0\x00\x02\x01\xc6\x33\x64\x02\xdc\x04"
              "\x01\xbb"),
    FUZZ_SEED("\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00"),
    FUZZ_SEED("\r\n\r\n\0\r\nQUIT\n\x21\x21\x00\x27\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01"
              "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x02\xdc\x04\x01\xbb\x01\x00\x02h2"),
};
const size_t fuzz_n_seeds = sizeof(fuzz_seeds) / sizeof(fuzz_seeds[0]);
const long fuzz_iterations = 200000;
#endif
