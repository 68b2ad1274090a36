/* SPDX-License-Identifier: BSD-2-Clause */
#include "autoconf.h"
/* config_parse.c - the value parsers of the config file: durations, sizes,
 * integers and addresses.  Pure functions (addresses may resolve a host
 * name), unit-tested directly by tests/unit/test_parse.c. */

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#include "config.h"

#define DIGITS "0123456789"

static int
fail(const char **why, const char *reason)
{
    *why = reason;
    return -1;
}

/* ---- value parsers ------------------------------------------------------ */

/* Decimal digits only.  -1: no digit at *sp; -2: does not fit. */
static int
digits_parse(const char **sp, uint64_t *out)
{
    const char *s = *sp;
    uint64_t v = 0;

    if (!isdigit((unsigned char)*s))
        return -1;
    for (; isdigit((unsigned char)*s); s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -2;
        v = v * 10 + d;
    }
    *sp = s;
    *out = v;
    return 0;
}

int
config_parse_uint(const char *s, uint64_t *out)
{
    return digits_parse(&s, out) == 0 && *s == '\0' ? 0 : -1;
}

struct duration_unit {
    const char *name;
    uint64_t ms;
};

/* Largest first: combined durations must follow this order. */
static const struct duration_unit duration_units[] = {
    { "d", 24 * 3600 * 1000 }, { "h", 3600 * 1000 }, { "m", 60 * 1000 },
    { "s", 1000 }, { "ms", 1 },
};
#define DURATION_UNIT_S 3

static int
duration_unit(const char **sp, size_t *unit, const char **why)
{
    const char *s = *sp;
    size_t len = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ");

    if (len == 0 && *s == '\0')
        return fail(why, "every number needs a unit in a combined duration (e.g. 1m30s)");
    for (size_t i = 0; i < sizeof(duration_units) / sizeof(duration_units[0]); i++) {
        if (strlen(duration_units[i].name) == len &&
            strncmp(s, duration_units[i].name, len) == 0) {
            *unit = i;
            *sp = s + len;
            return 0;
        }
    }
    return fail(why, *s == ' ' ? "no space between the number and its unit (write 10s)"
                               : "unknown unit (use ms, s, m, h or d)");
}

static int
mul_add(uint64_t *total, uint64_t n, uint64_t mult)
{
    if (n > (UINT64_MAX - *total) / mult)
        return -1;
    *total += n * mult;
    return 0;
}

int
config_parse_duration(const char *s, uint64_t *ms, const char **why)
{
    uint64_t total = 0, n;
    size_t next = 0, unit = DURATION_UNIT_S;
    bool bare;

    if (s == NULL || *s == '\0')
        return fail(why, "empty duration");
    if (*s == '-')
        return fail(why, "negative durations are not allowed");
    bare = s[strspn(s, DIGITS)] == '\0';
    while (*s != '\0') {
        int rc = digits_parse(&s, &n);
        if (rc != 0)
            return fail(why, rc == -2 ? "duration is too large"
                                      : "expected a number with a unit, e.g. 10s");
        if (*s == '.')
            return fail(why, "fractions are not supported (write 1500ms, not 1.5s)");
        if (!bare && duration_unit(&s, &unit, why) != 0)
            return -1;
        if (unit < next)
            return fail(why, "units must go from largest to smallest, each once (e.g. 1h30m)");
        if (mul_add(&total, n, duration_units[unit].ms) != 0)
            return fail(why, "duration is too large");
        next = unit + 1;
    }
    *ms = total;
    return 0;
}

/* "", "b", "k", "kb", "kib" (any case) and the same for m and g. */
static int
size_suffix(const char *s, uint64_t *mult)
{
    static const char units[] = "kmg";
    const char *u = *s != '\0' ? strchr(units, tolower((unsigned char)*s)) : NULL;

    *mult = 1;
    if (u != NULL) {
        *mult = 1ULL << (10 * (u - units + 1));
        s++;
    }
    if (*s == '\0' || strcasecmp(s, "b") == 0)
        return 0;
    return u != NULL && strcasecmp(s, "ib") == 0 ? 0 : -1;
}

int
config_parse_size(const char *s, uint64_t *bytes, const char **why)
{
    uint64_t n, mult;
    int rc;

    if (s == NULL || *s == '\0')
        return fail(why, "empty size");
    if (*s == '-')
        return fail(why, "negative sizes are not allowed");
    rc = digits_parse(&s, &n);
    if (rc != 0)
        return fail(why, rc == -2 ? "size is too large" : "expected a number, e.g. 16k");
    if (*s == '.')
        return fail(why, "fractions are not supported (write 1536k, not 1.5m)");
    if (size_suffix(s, &mult) != 0)
        return fail(why, *s == ' ' ? "no space between the number and its suffix (write 16k)"
                                   : "unknown suffix (use k, m or g)");
    if (n > UINT64_MAX / mult)
        return fail(why, "size is too large");
    *bytes = n * mult;
    return 0;
}

/* ---- addresses ---------------------------------------------------------- */

/* Splits "HOST:PORT" / "[V6]:PORT" into host (copied) and port text. */
static int
addr_split(const char *s, char *host, size_t size, const char **port,
           bool *v6, const char **why)
{
    const char *end, *colon;

    *v6 = s[0] == '[';
    if (*v6) {
        end = strchr(++s, ']');
        if (end == NULL)
            return fail(why, "missing \"]\" after the IPv6 address");
        colon = end + 1;
        if (*colon != ':')
            return fail(why, *colon == '\0' ? "missing port (expected [IPV6]:PORT)"
                                            : "expected \":PORT\" after \"]\"");
    } else {
        colon = end = strrchr(s, ':');
        if (colon == NULL && s[strspn(s, "0123456789")] == '\0' && *s != '\0')
            return fail(why, "a port alone is not an address: write HOST:PORT, e.g. "
                        "\"0.0.0.0:443\" or \"[::1]:8080\"");
        if (colon == NULL)
            return fail(why, *s == '\0' ? "empty address" : "missing port (expected HOST:PORT)");
        if (strchr(s, ':') != colon)
            return fail(why, "IPv6 addresses must be in brackets, e.g. \"[::1]:443\"");
    }
    if (end == s)
        return fail(why, "missing host before \":PORT\"");
    if ((size_t)(end - s) >= size)
        return fail(why, "host name is too long");
    memcpy(host, s, (size_t)(end - s));
    host[end - s] = '\0';
    *port = colon + 1;
    return 0;
}

static int
port_parse(const char *p, unsigned *port, const char **why)
{
    unsigned long v = 0;

    if (*p == '\0')
        return fail(why, "missing port");
    if (!isdigit((unsigned char)*p))
        return fail(why, "port must be a decimal number");
    for (; isdigit((unsigned char)*p); p++) {
        if (v <= 65535)
            v = v * 10 + (unsigned long)(*p - '0');
    }
    if (*p == '-' && isdigit((unsigned char)p[1]))
        return fail(why, "port ranges are not supported");
    if (*p != '\0')
        return fail(why, "unexpected text after the port number");
    if (v == 0 || v > 65535)
        return fail(why, "port must be between 1 and 65535");
    *port = (unsigned)v;
    return 0;
}

static const char *
resolve_error(int rc)
{
    switch (rc) {
    case EAI_NONAME: return "cannot resolve host name: not found";
#ifdef EAI_NODATA
    case EAI_NODATA: return "cannot resolve host name: no address for it";
#endif
    case EAI_AGAIN: return "cannot resolve host name: temporary DNS failure";
    default: return "cannot resolve host name";
    }
}

/* Resolved once, at load: workers never wait on DNS. */
static int
host_resolve(const char *host, struct config_addr *out, const char **why)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &res);

    if (rc != 0)
        return fail(why, resolve_error(rc));
    if (res->ai_addrlen > sizeof(out->ss)) {
        freeaddrinfo(res);
        return fail(why, "cannot resolve host name: unusable address");
    }
    memcpy(&out->ss, res->ai_addr, res->ai_addrlen);
    out->len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static int
host_fill(const char *host, bool v6, bool resolve, struct config_addr *out,
          const char **why)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)&out->ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->ss;

    if (v6) {
        if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
            return fail(why, "invalid IPv6 address");
        sin6->sin6_family = AF_INET6;
        out->len = sizeof(*sin6);
        return 0;
    }
    if (strcmp(host, "*") == 0 && resolve)
        return fail(why, "\"*\" is only allowed in listen addresses");
    if (strcmp(host, "*") == 0 || inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;      /* "*": sin_addr stays INADDR_ANY (0) */
        out->len = sizeof(*sin);
        return 0;
    }
    if (host[strspn(host, DIGITS ".")] == '\0')
        return fail(why, "invalid IPv4 address");
    if (!resolve)
        return fail(why, "listen addresses must be numeric IP addresses");
    return host_resolve(host, out, why);
}

static void
addr_finish(struct config_addr *a, unsigned port)
{
    char ip[INET6_ADDRSTRLEN];

    if (a->ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->ss;
        sin6->sin6_port = htons((uint16_t)port);
        inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
        snprintf(a->text, sizeof(a->text), "[%s]:%u", ip, port);
    } else {
        struct sockaddr_in *sin = (struct sockaddr_in *)&a->ss;
        sin->sin_port = htons((uint16_t)port);
        inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
        snprintf(a->text, sizeof(a->text), "%s:%u", ip, port);
    }
}

/* "unix:/run/app.sock": absolute, and short enough for sun_path. */
static int
unix_addr(const char *path, struct config_addr *out, const char **why)
{
    struct sockaddr_un *sun = (struct sockaddr_un *)&out->ss;

    if (path[0] != '/')
        return fail(why, "a unix socket path must be absolute");
    if (strlen(path) >= sizeof(sun->sun_path))
        return fail(why, "unix socket path longer than 107 bytes");
    sun->sun_family = AF_UNIX;
    memcpy(sun->sun_path, path, strlen(path) + 1);
    out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);
    snprintf(out->text, sizeof(out->text), "unix:%s", path);
    return 0;
}

int
config_parse_addr(const char *s, bool resolve, struct config_addr *out,
                  const char **why)
{
    char host[256];
    const char *port_text;
    unsigned port;
    bool v6;

    memset(out, 0, sizeof(*out));
    if (s == NULL)
        return fail(why, "empty address");
    if (strncmp(s, "unix:", 5) == 0)
        return resolve ? unix_addr(s + 5, out, why)
                       : fail(why, "unix sockets are only for backend servers");
    if (addr_split(s, host, sizeof(host), &port_text, &v6, why) != 0 ||
        port_parse(port_text, &port, why) != 0 ||
        host_fill(host, v6, resolve, out, why) != 0)
        return -1;
    addr_finish(out, port);
    return 0;
}

int
config_addr_from_sockaddr(const struct sockaddr *sa, socklen_t len, struct config_addr *out)
{
    unsigned port;

    memset(out, 0, sizeof(*out));
    if ((sa->sa_family != AF_INET && sa->sa_family != AF_INET6) || len > sizeof(out->ss))
        return -1;
    memcpy(&out->ss, sa, len);
    out->len = len;
    port = ntohs(sa->sa_family == AF_INET6 ? ((const struct sockaddr_in6 *)sa)->sin6_port
                                           : ((const struct sockaddr_in *)sa)->sin_port);
    addr_finish(out, port);
    return 0;
}

int
config_parse_cidr(const char *s, struct config_cidr *out, const char **why)
{
    char ip[INET6_ADDRSTRLEN + 1];
    const char *slash = strchr(s, '/');
    size_t n = slash ? (size_t)(slash - s) : strlen(s);
    unsigned max;
    uint64_t bits;

    memset(out, 0, sizeof(*out));
    if (n == 0 || n >= sizeof(ip))
        return fail(why, "expected ADDRESS or ADDRESS/BITS");
    memcpy(ip, s, n);
    ip[n] = '\0';
    if (inet_pton(AF_INET, ip, &((struct sockaddr_in *)&out->addr)->sin_addr) == 1) {
        out->addr.ss_family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, ip, &((struct sockaddr_in6 *)&out->addr)->sin6_addr) == 1) {
        out->addr.ss_family = AF_INET6;
        max = 128;
    } else {
        return fail(why, "not a numeric IPv4 or IPv6 address");
    }
    bits = max;
    if (slash != NULL && (config_parse_uint(slash + 1, &bits) != 0 || bits > max))
        return fail(why, max == 32 ? "prefix length must be 0 to 32" : "prefix length must be 0 to 128");
    out->bits = (unsigned)bits;
    snprintf(out->text, sizeof(out->text), "%s/%u", ip, out->bits);
    return 0;
}

static const uint8_t *
cidr_bytes(const struct sockaddr *sa)
{
    return sa->sa_family == AF_INET
           ? (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr
           : (const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
}

bool
config_cidr_match(const struct config_cidr *c, const struct sockaddr *sa)
{
    const uint8_t *a = cidr_bytes((const struct sockaddr *)&c->addr), *b = cidr_bytes(sa);
    unsigned full = c->bits / 8, rest = c->bits % 8;

    if (sa->sa_family != c->addr.ss_family)
        return false;
    if (memcmp(a, b, full) != 0)
        return false;
    return rest == 0 || ((a[full] ^ b[full]) & (uint8_t)(0xff << (8 - rest))) == 0;
}
