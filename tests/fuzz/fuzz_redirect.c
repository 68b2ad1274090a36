/* SPDX-License-Identifier: BSD-2-Clause */
/* Fuzz target for the redirect listener's request parsing
 * (src/http_redirect.c): every byte comes from an unauthenticated client
 * on port 80, and what it accepts goes into our Location header.
 *
 * With clang's libFuzzer:
 *   clang -g -fsanitize=fuzzer,address,undefined -DFUZZ_LIBFUZZER -I. -Isrc \
 *       tests/fuzz/fuzz_redirect.c src/http_redirect.c -lhttp_parser -o fuzz_redirect
 *   ./fuzz_redirect tests/fuzz/corpus/redirect
 * Besides memory errors it checks what the caller relies on: a 308's
 * Location holds no byte that could end the header or the host, and the
 * answer never depends on bytes after the head. */
#include "autoconf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "http_redirect.h"

static void
check_location(const char *resp)
{
    const char *loc = strstr(resp, "\r\nLocation: https://");

    if (loc == NULL)
        abort();
    for (const char *p = loc + 20; *p != '\r'; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            abort();                /* a control byte or space in Location */
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct redirect_req r, r2;
    enum redirect_verdict v = redirect_parse((const char *)data, size, &r);
    char resp[8192], *more;

    if (v == REDIRECT_OK) {
        if (r.target[0] != '/' || strchr(r.host, '/') != NULL)
            abort();
        if (redirect_response(v, &r, 8443, resp, sizeof(resp)) == 0)
            abort();
        check_location(resp);
    } else if (v != REDIRECT_MORE && redirect_response(v, &r, 443, resp, sizeof(resp)) == 0) {
        abort();
    }
    /* bytes after a complete head change nothing */
    if (v != REDIRECT_MORE && (more = malloc(size + 6)) != NULL) {
        memcpy(more, data, size);
        memcpy(more + size, "Host:x", 6);
        if (redirect_parse(more, size + 6, &r2) != v ||
            (v == REDIRECT_OK && (strcmp(r.host, r2.host) || strcmp(r.target, r2.target))))
            abort();
        free(more);
    }
    return 0;
}

#ifndef FUZZ_LIBFUZZER
const char fuzz_name[] = "redirect";
const struct fuzz_seed fuzz_seeds[] = {
    FUZZ_SEED("GET /a/b?x=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8\r\n\r\n"),
    FUZZ_SEED("HEAD / HTTP/1.0\r\nhost: [::1]:80\r\n\r\n"),
    FUZZ_SEED("GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
    FUZZ_SEED("GET\r\n/evil HTTP/1.1\r\nHost: a\r\n\r\n"),
    FUZZ_SEED("POST /form HTTP/1.1\r\nHost: 10.0.0.1:8080\r\nContent-Length: 3\r\n\r\nabc"),
};
const size_t fuzz_n_seeds = sizeof(fuzz_seeds) / sizeof(fuzz_seeds[0]);
const long fuzz_iterations = 200000;
#endif
