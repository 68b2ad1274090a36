/* SPDX-License-Identifier: BSD-2-Clause */
/* http_redirect.c - a redirect listener's request (http_redirect.h).
 *
 * http-parser reads the request line and headers and stops at the end of
 * the head, so nothing after the blank line is looked at.  What it
 * accepts loosely (Debian builds it non-strict) is checked here: HTTP/1.0
 * or 1.1 only, an origin-form target of printable bytes without the
 * characters RFC 3986 never allows, one Host header that is a plausible
 * name or address, so a client cannot put its own text into our
 * Location header. */
#include "autoconf.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <http_parser.h>

#include "http_redirect.h"

struct parse {
    struct redirect_req *r;
    size_t target_len;
    bool too_long, in_host, host_seen, host_twice, done;
    char host_raw[REDIRECT_HOST_MAX + 8];
    size_t host_len;
    bool host_long;
    char field[8];
    size_t field_len;
    bool in_value;
};

static int
on_url(http_parser *p, const char *at, size_t len)
{
    struct parse *s = p->data;

    if (s->target_len + len > REDIRECT_TARGET_MAX) {
        s->too_long = true;
        return 0;
    }
    memcpy(s->r->target + s->target_len, at, len);
    s->target_len += len;
    s->r->target[s->target_len] = '\0';
    return 0;
}

static int
on_field(http_parser *p, const char *at, size_t len)
{
    struct parse *s = p->data;

    if (s->in_value)
        s->field_len = 0;
    s->in_value = false;
    for (size_t i = 0; i < len; i++) {
        if (s->field_len < sizeof(s->field) - 1)
            s->field[s->field_len++] = (char)tolower((unsigned char)at[i]);
        else
            s->field[0] = '\0';        /* longer than any name we look for */
    }
    if (s->field[0] != '\0')
        s->field[s->field_len] = '\0';
    return 0;
}

static int
on_value(http_parser *p, const char *at, size_t len)
{
    struct parse *s = p->data;

    if (!s->in_value && strcmp(s->field, "host") == 0) {
        s->host_twice |= s->host_seen;
        s->host_seen = true;
        s->host_len = 0;
    }
    s->in_value = true;
    if (strcmp(s->field, "host") != 0)
        return 0;
    if (s->host_len + len >= sizeof(s->host_raw)) {
        s->host_long = true;
        return 0;
    }
    memcpy(s->host_raw + s->host_len, at, len);
    s->host_len += len;
    s->host_raw[s->host_len] = '\0';
    return 0;
}

static int
on_headers_complete(http_parser *p)
{
    struct parse *s = p->data;

    s->done = true;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings settings = {
    .on_url = on_url,
    .on_header_field = on_field,
    .on_header_value = on_value,
    .on_headers_complete = on_headers_complete,
};

/* A name ("example.com", "_dmarc.x"), an IPv4 address or a bracketed
 * IPv6 one, then at most ":digits". */
static bool
host_ok(const char *raw, char *out)
{
    size_t n = raw[0] == '[' ? strcspn(raw, "]") + 1 : strcspn(raw, ":");
    const char *rest = raw + n;

    if (n == 0 || n > REDIRECT_HOST_MAX || (raw[0] == '[' && raw[n - 1] != ']'))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)raw[i]) && !strchr(raw[0] == '[' ? "[]:." : ".-_", raw[i]))
            return false;
    if (*rest == ':')
        rest += 1 + strspn(rest + 1, "0123456789");
    if (*rest != '\0')
        return false;
    memcpy(out, raw, n);
    out[n] = '\0';
    return true;
}

static bool
target_ok(const char *t)
{
    if (t[0] != '/')
        return false;
    for (const unsigned char *p = (const unsigned char *)t; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f || strchr("\"<>\\^`{|}", *p))
            return false;
    return true;
}

static enum redirect_verdict
bad(struct redirect_req *r, const char *why)
{
    r->why = why;
    return REDIRECT_BAD;
}

enum redirect_verdict
redirect_parse(const char *buf, size_t len, struct redirect_req *out)
{
    struct parse s = { .r = out };
    http_parser p;

    memset(out, 0, sizeof(*out));
    http_parser_init(&p, HTTP_REQUEST);
    p.data = &s;
    http_parser_execute(&p, &settings, buf, len);
    if (!s.done)
        return HTTP_PARSER_ERRNO(&p) == HPE_OK ? REDIRECT_MORE : bad(out, "malformed request");
    if (s.too_long)
        return REDIRECT_TOO_LONG;
    if (p.http_major != 1 || p.http_minor > 1)
        return bad(out, "not HTTP/1.0 or HTTP/1.1");
    if (!target_ok(out->target))
        return bad(out, "the target is not an absolute path of printable characters");
    if (!s.host_seen || s.host_twice || s.host_long)
        return bad(out, s.host_seen ? "more than one Host header, or too long" : "no Host header");
    if (!host_ok(s.host_raw, out->host))
        return bad(out, "the Host header is not a host name or address");
    return REDIRECT_OK;
}

size_t
redirect_response(enum redirect_verdict v, const struct redirect_req *r, unsigned https_port,
                  char *out, size_t cap)
{
    static const char *const errors[] = {
        [REDIRECT_BAD] = "400 Bad Request",
        [REDIRECT_TOO_LONG] = "414 URI Too Long",
    };
    char port[8] = "";
    int n;

    if (v == REDIRECT_OK) {
        if (https_port != 443)
            snprintf(port, sizeof(port), ":%u", https_port);
        n = snprintf(out, cap, "HTTP/1.1 308 Permanent Redirect\r\nLocation: https://%s%s%s\r\n"
                     "Content-Length: 0\r\nConnection: close\r\n\r\n", r->host, port, r->target);
    } else {
        n = snprintf(out, cap, "HTTP/1.1 %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                     errors[v == REDIRECT_TOO_LONG ? REDIRECT_TOO_LONG : REDIRECT_BAD]);
    }
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}
