/* SPDX-License-Identifier: BSD-2-Clause */
/* config_admin.c - the admin section: where the read-only HTTP listener
 * for /metrics, /healthz and /status listens (admin.c). */
#include "autoconf.h"

#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include <yaml.h>

#include "config.h"
#include "config_int.h"

static int
unix_addr(const char *s, struct config_addr *a, const char **why)
{
    struct sockaddr_un *un = (struct sockaddr_un *)&a->ss;
    const char *path = s + 5;

    if (path[0] != '/') {
        *why = "the socket's path must be absolute (unix:/run/tlsterm/admin.sock)";
        return -1;
    }
    if (strlen(path) >= sizeof(un->sun_path)) {
        *why = "the socket's path is too long";
        return -1;
    }
    memset(a, 0, sizeof(*a));
    un->sun_family = AF_UNIX;
    memcpy(un->sun_path, path, strlen(path) + 1);
    a->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);
    snprintf(a->text, sizeof(a->text), "%s", s);
    return 0;
}

static void
on_admin_listen(struct ctx *c, const struct key_spec *k, yaml_node_t *v, void *obj)
{
    struct config *cfg = obj;
    const char *s = cfg_want_text(c, k->name, v, "an address (\"127.0.0.1:9443\") or "
                              "\"unix:/path\"");
    const char *why = NULL;
    struct config_addr a;

    if (s == NULL)
        return;
    if (strncmp(s, "unix:", 5) == 0 ? unix_addr(s, &a, &why) != 0
                                    : config_parse_addr(s, false, &a, &why) != 0) {
        cfg_err(c, v, "invalid admin.listen \"%s\": %s", s, why);
        return;
    }
    a.pos = cfg_node_pos(v);
    cfg->admin.listen = a;
    cfg->admin.enabled = true;
}

const struct key_spec config_admin_keys[] = {
    { "listen", on_admin_listen, 0, NULL, true },
    { "allow_remote", cfg_on_bool, offsetof(struct config, admin.allow_remote), NULL, false },
    { NULL, NULL, 0, NULL, false },
};

static bool
is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_UNIX)
        return true;
    if (ss->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
    if (ss->ss_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) ||
               (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return false;
}

/* The admin listener has no authentication: anywhere but loopback it
 * takes the operator's explicit word. */
void
config_admin_check(struct ctx *c)
{
    const struct config *cfg = c->cfg;

    if (cfg->admin.enabled && !cfg->admin.allow_remote && !is_loopback(&cfg->admin.listen.ss))
        cfg_err_at(c, cfg->admin.listen.pos, "admin.listen \"%s\" is not a loopback address: the "
                "admin listener has no authentication; set admin.allow_remote: true to "
                "serve it there anyway", cfg->admin.listen.text);
}
