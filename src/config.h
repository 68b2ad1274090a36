/* SPDX-License-Identifier: BSD-2-Clause */
/* config.h - the YAML config file as plain, validated data.
 *
 * config_load() parses the file with libyaml, checks every key and value,
 * and either returns a complete struct config or collects every problem as
 * "FILE:LINE:COL: message" (1-based line and column).  It does no I/O
 * besides reading the file and resolving host names of backend servers.
 * The result is immutable once loaded. */
#ifndef TLSTERM_CONFIG_H
#define TLSTERM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "log.h"

struct config_pos {
    int line;   /* 1-based; 0 when unknown */
    int col;    /* 1-based */
};

struct config_addr {
    struct sockaddr_storage ss;
    socklen_t len;
    char text[128];             /* canonical "1.2.3.4:443", "[::1]:443", "unix:/path" */
    struct config_pos pos;
};

struct config_cert {
    char *cert_file;            /* made absolute against the config's dir */
    char *key_file;
    char *key_passphrase_file;  /* NULL: the key is not encrypted */
    bool allow_expired;         /* load an expired certificate anyway */
    struct config_pos pos;      /* position of the list entry */
};

/* An address block: "10.0.0.0/8", "2001:db8::/32", or one address. */
struct config_cidr {
    struct sockaddr_storage addr;
    unsigned bits;
    char text[64];
};

enum config_client_auth { CLIENT_AUTH_NONE = 0, CLIENT_AUTH_OPTIONAL, CLIENT_AUTH_REQUIRED };

struct config_route {
    char *sni;                  /* exact name or "*.suffix", lower case */
    char *backend_name;
    const struct config_backend *backend;
    struct config_pos pos;
};

enum config_balance { BALANCE_ROUND_ROBIN = 0, BALANCE_LEAST_CONN, BALANCE_SOURCE_HASH };

struct config_server_opts {
    unsigned weight;            /* 1..1000, default 1 */
    unsigned max_connections;   /* 0: no limit */
    bool backup;                /* used only while no other server is available */
};

#define CONFIG_SERVERS_MAX 64   /* per backend: a retry remembers servers in a bitmask */

enum config_health_type { HEALTH_NONE = 0, HEALTH_TCP, HEALTH_HTTP };

/* Active health checks of every server of a backend. */
struct config_health {
    enum config_health_type type;   /* NONE: no active checks */
    uint64_t interval_ms;       /* default 2s */
    uint64_t timeout_ms;        /* default 1s */
    unsigned rise;              /* successes that bring a down server up, default 2 */
    unsigned fall;              /* failures that take an up server down, default 3 */
    char *path;                 /* http: default "/" */
    unsigned expect_status;     /* http: default 200 */
};

struct config_backend {
    char *name;
    struct config_addr *servers;
    struct config_server_opts *opts;    /* [n_servers] */
    size_t n_servers;
    size_t first;               /* index of servers[0] among all servers of the config */
    enum config_balance balance;
    uint64_t fail_timeout_ms;   /* a server that failed to connect rests this long */
    struct config_health health;
    int proxy_protocol;         /* 0: off, 1 or 2: header version sent first */
    struct {
        bool enabled;           /* forwarded_headers: rewrite HTTP/1.x request heads */
        bool rfc7239;           /* also send Forwarded */
        bool client_cert;       /* also send X-SSL-Client-* */
        char *hsts;             /* Strict-Transport-Security value; NULL: none */
        bool allow_connect;     /* CONNECT becomes a tunnel after a 2xx; else 501 */
        size_t max_head;        /* request head limit, default 64k */
    } http;
    struct config_pos pos;
};

struct config_listener {
    char *name;
    struct config_addr *listen;
    size_t n_listen;
    struct config_cert *certs;  /* certs[0] is the default certificate */
    size_t n_certs;
    char *backend_name;
    const struct config_backend *backend;   /* resolved from backend_name */
    char **alpn;                /* NULL-terminated, server preference; NULL: off */
    bool sni_strict;            /* unknown or missing SNI fails the handshake */
    struct {
        enum config_client_auth mode;
        char *ca_file;          /* required unless mode is none */
        char *crl_file;         /* optional */
        unsigned verify_depth;  /* default 5 */
    } client_auth;
    struct config_route *routes;
    size_t n_routes;
    bool redirect_to_https;     /* plain HTTP: answer 308 to https, no TLS, no backend */
    unsigned https_port;        /* port in the Location, default 443 (left out) */
    bool proxy_protocol_in;     /* trusted peers must start with a PROXY header */
    struct config_cidr *trusted;
    size_t n_trusted;
    struct config_pos pos;
};

struct config_tls {
    int min_version;            /* TLS minor: 3 = TLS 1.2, 4 = TLS 1.3; default 3 */
    int max_version;            /* default: the newest the library has */
    int *ciphersuites;          /* TLS 1.2: mbedTLS ids, 0-terminated, server order */
    int *suites13;              /* TLS 1.3: IANA ids (0x1301...), 0-terminated */
    int *curves;                /* IANA TLS group ids (x25519 = 29), 0-terminated */
    struct {
        bool enabled;           /* default true */
        char *key_file;         /* NULL: random keys, rotated in-process */
        uint64_t rotate_ms;     /* default 12h */
        uint64_t lifetime_ms;   /* ticket validity, at least 1s; default: rotate */
    } tickets;
    struct {
        unsigned size;          /* entries; 0 disables; default 20000 */
        uint64_t timeout_ms;    /* default 10m */
    } session_cache;
};

struct config {
    char *path;                 /* as given on the command line */
    unsigned workers;           /* 0 = auto (one per CPU) */
    enum log_level log_level;
    enum log_target log_target; /* default stderr */
    char *log_file;             /* set exactly when log_target is file */
    bool log_access;            /* one info line per connection; default true */
    enum log_format log_format; /* default text */
    struct {
        char *user;             /* NULL: keep the identity we started with */
        char *group;            /* NULL: the user's primary group */
        uid_t uid;              /* resolved at load time */
        gid_t gid;
    } run_as;
    struct {
        uint64_t handshake_ms;  /* default 10s */
        uint64_t idle_ms;       /* default 300s */
        uint64_t connect_ms;    /* default 5s */
        uint64_t drain_ms;      /* SIGTERM grace for open connections, default 30s */
        uint64_t drain_notice_ms;   /* before the drain: /healthz fails, still accepting */
    } timeouts;
    struct {
        unsigned max_connections;   /* default 100000 */
        size_t buffer_size;         /* relay buffer per direction, default 16k */
        unsigned max_handshakes;    /* in progress, whole process; default 2048, 0: none */
        unsigned worker_max_handshakes; /* 0: max_handshakes / workers, rounded up */
        struct config_per_address {
            unsigned connections;   /* open at once per client address; 0: no limit */
            unsigned handshakes_per_second; /* new connections, token bucket; 0: none */
            unsigned handshake_burst;   /* bucket size; 0: handshakes_per_second */
            struct config_cidr *exempt; /* addresses the limits above skip */
            size_t n_exempt;
        } per_address;
    } limits;
    struct config_tls tls;
    struct {
        bool enabled;               /* default true: certificate, key, CRL, ticket-key files */
        uint64_t debounce_ms;       /* quiet time after a change before the reload; 1s */
    } watch;
    struct {
        bool enabled;               /* admin.listen is set */
        struct config_addr listen;  /* "127.0.0.1:9443" or "unix:/path" */
        bool allow_remote;          /* a non-loopback address is allowed */
    } admin;
    struct config_listener *listeners;
    size_t n_listeners;
    struct config_backend *backends;
    size_t n_backends;
    size_t n_servers_total;     /* over all backends */
};

struct config_errors {
    char **msgs;                /* each "FILE:LINE:COL: message" */
    size_t n;
};

struct config *config_load(const char *path, struct config_errors *errs);
void config_free(struct config *cfg);

void config_errors_add(struct config_errors *errs, const char *file,
                       struct config_pos pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void config_errors_free(struct config_errors *errs);

/* Value parsers, exported for tests.  Each returns 0 on success, or -1 and
 * sets *why to a static human-readable reason. */
int config_parse_duration(const char *s, uint64_t *ms, const char **why);
int config_parse_size(const char *s, uint64_t *bytes, const char **why);
/* Decimal digits only, no sign. */
int config_parse_uint(const char *s, uint64_t *out);
/* "1.2.3.4:443", "[::1]:443", "host:443", and for backends (resolve true)
 * "unix:/path".  Names are resolved only when resolve is true; listeners
 * take numeric addresses or "*". */
int config_parse_addr(const char *s, bool resolve, struct config_addr *out,
                      const char **why);
int config_parse_cidr(const char *s, struct config_cidr *out, const char **why);
bool config_cidr_match(const struct config_cidr *c, const struct sockaddr *sa);
/* The same canonical text for a socket's address (socket activation). */
int config_addr_from_sockaddr(const struct sockaddr *sa, socklen_t len,
                              struct config_addr *out);

#endif
