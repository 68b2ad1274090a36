/* SPDX-License-Identifier: BSD-2-Clause */
/* http_redirect.h - the request of a redirect_to_https listener, parsed
 * by http-parser (no hand-written HTTP parsing) and answered with a 308
 * to the same host and target over https.  Pure: bytes in, bytes out. */
#ifndef TLSTERM_HTTP_REDIRECT_H
#define TLSTERM_HTTP_REDIRECT_H

#include <stddef.h>

/* Longer targets get 414 rather than a Location cut short. */
#define REDIRECT_TARGET_MAX 2048
#define REDIRECT_HOST_MAX 255

enum redirect_verdict {
    REDIRECT_MORE,              /* the head is not complete yet */
    REDIRECT_OK,                /* host and target are set */
    REDIRECT_BAD,               /* 400 */
    REDIRECT_TOO_LONG,          /* 414: the target is over REDIRECT_TARGET_MAX */
};

struct redirect_req {
    char host[REDIRECT_HOST_MAX + 1];       /* from Host, without the port */
    char target[REDIRECT_TARGET_MAX + 1];   /* origin-form: path and query */
    const char *why;                        /* REDIRECT_BAD: what was wrong */
};

/* The request head in buf[0..len); bytes after the head are ignored. */
enum redirect_verdict redirect_parse(const char *buf, size_t len, struct redirect_req *out);

/* The whole response for a verdict other than REDIRECT_MORE into out
 * (cap bytes); https_port 443 is left out of the Location.  Returns its
 * length, or 0 when it does not fit. */
size_t redirect_response(enum redirect_verdict v, const struct redirect_req *r,
                         unsigned https_port, char *out, size_t cap);

#endif
