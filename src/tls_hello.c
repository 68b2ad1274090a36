/* SPDX-License-Identifier: BSD-2-Clause */
/* tls_hello.c - the protocol versions a ClientHello offers (RFC 8446 4.1.2,
 * 4.2.1; RFC 5246 7.4.1.2).  Every length is checked against what is left
 * before it is used. */
#include "autoconf.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "tls_hello.h"

#define EXT_SERVER_NAME 0
#define EXT_SUPPORTED_VERSIONS 43

struct rd {
    const unsigned char *p;
    size_t left;
};

static int
rd_skip(struct rd *r, size_t n)
{
    if (n > r->left)
        return -1;
    r->p += n;
    r->left -= n;
    return 0;
}

static int
rd_int(struct rd *r, size_t n, size_t *v)
{
    *v = 0;
    if (n > r->left)
        return -1;
    for (size_t i = 0; i < n; i++)
        *v = (*v << 8) | r->p[i];
    return rd_skip(r, n);
}

/* A vector with an n-byte length: r2 covers its body, r moves past it. */
static int
rd_vec(struct rd *r, size_t n, struct rd *body)
{
    size_t len;

    if (rd_int(r, n, &len) != 0 || len > r->left)
        return -1;
    body->p = r->p;
    body->left = len;
    return rd_skip(r, len);
}

/* Only 3.1 to 3.4 count; GREASE (0x?a?a) and unknown values are skipped. */
static unsigned
version_bit(size_t v)
{
    return (v >> 8) == 3 && (v & 0xff) >= 1 && (v & 0xff) <= 4 ? TLS_HELLO_V(v & 0xff) : 0;
}

static unsigned
supported_versions(struct rd ext)
{
    struct rd list;
    unsigned set = 0;
    size_t v;

    if (rd_vec(&ext, 1, &list) != 0 || (list.left & 1) != 0)
        return 0;
    while (rd_int(&list, 2, &v) == 0)
        set |= version_bit(v);
    return set;
}

/* Without supported_versions a client offers every version up to its
 * legacy_version (TLS 1.2 and older negotiate that way). */
static unsigned
versions_up_to(size_t legacy)
{
    unsigned set = 0;

    if ((legacy >> 8) != 3)
        return 0;
    for (size_t m = 1; m <= (legacy & 0xff) && m <= 3; m++)
        set |= TLS_HELLO_V(m);
    return set;
}

static unsigned
hello_extensions(struct rd exts, size_t legacy, struct tls_hello *h)
{
    unsigned versions = 0;
    bool seen = false;
    struct rd ext;
    size_t type;

    while (rd_int(&exts, 2, &type) == 0) {
        if (rd_vec(&exts, 2, &ext) != 0)
            return 0;
        if (type == EXT_SUPPORTED_VERSIONS && !seen) {
            versions = supported_versions(ext);
            seen = true;
        }
        h->early_data |= type == TLS_HELLO_EXT_EARLY_DATA;
        h->sni |= type == EXT_SERVER_NAME;
    }
    if (exts.left != 0)
        return 0;
    return seen ? versions : versions_up_to(legacy);
}

static unsigned
hello_body(struct rd r, struct tls_hello *h)
{
    struct rd skip, suites, exts;
    size_t legacy;

    if (rd_int(&r, 2, &legacy) != 0 || rd_skip(&r, 32) != 0 ||
        rd_vec(&r, 1, &skip) != 0 || rd_vec(&r, 2, &suites) != 0 ||
        (suites.left & 1) != 0 || rd_vec(&r, 1, &skip) != 0)
        return 0;
    h->suites = suites.p;
    h->n_suites = suites.left / 2;
    if (r.left == 0)
        return versions_up_to(legacy);          /* no extensions at all */
    if (rd_vec(&r, 2, &exts) != 0)
        return 0;
    return hello_extensions(exts, legacy, h);
}

unsigned
tls_hello_read(const unsigned char *buf, size_t len, struct tls_hello *h)
{
    struct rd r = { buf, len }, rec, hs;
    size_t type, ver, hs_type;

    memset(h, 0, sizeof(*h));
    if (rd_int(&r, 1, &type) != 0 || type != 22 || rd_int(&r, 2, &ver) != 0 ||
        (ver >> 8) != 3 || rd_vec(&r, 2, &rec) != 0)
        return 0;
    if (rd_int(&rec, 1, &hs_type) != 0 || hs_type != 1 || rd_vec(&rec, 3, &hs) != 0)
        return 0;
    h->versions = hello_body(hs, h);
    if (h->versions == 0)
        memset(h, 0, sizeof(*h));
    return h->versions;
}

unsigned
tls_hello_versions(const unsigned char *buf, size_t len)
{
    struct tls_hello h;

    return tls_hello_read(buf, len, &h);
}

bool
tls_hello_offers_suite(const struct tls_hello *h, const int *ids)
{
    for (size_t i = 0; i < h->n_suites; i++) {
        int id = h->suites[2 * i] << 8 | h->suites[2 * i + 1];
        for (const int *p = ids; *p != 0; p++)
            if (*p == id)
                return true;
    }
    return false;
}

bool
tls_hello_plain_http(const unsigned char *buf, size_t len)
{
    size_t n = 0;

    while (n < len && n <= 20 && ((buf[n] >= 'A' && buf[n] <= 'Z') || buf[n] == '-' ||
                                  buf[n] == '_'))
        n++;
    if (n == 0 || n > 20 || n + 2 > len || buf[n] != ' ')
        return false;
    if (n == 5 && memcmp(buf, "PROXY", 5) == 0)
        return false;
    return buf[n + 1] == '/' || buf[n + 1] == '*' ||
           (buf[n + 1] >= 'a' && buf[n + 1] <= 'z') || (buf[n + 1] >= 'A' && buf[n + 1] <= 'Z');
}

const char *
tls_hello_describe(unsigned versions, char *out, size_t len)
{
    size_t used = 0;
    int n_said = 0;

    out[0] = '\0';
    for (unsigned m = 1; m <= 4 && used < len; m++) {
        int n;
        if (!(versions & TLS_HELLO_V(m)))
            continue;
        n = snprintf(out + used, len - used, "%sTLS 1.%u", n_said++ ? ", " : "", m - 1);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    return out;
}
