/* SPDX-License-Identifier: BSD-2-Clause */
/* conn_proxy.c - the PROXY protocol on a connection: the header sent
 * first to a backend with proxy_protocol, and the one read from a trusted
 * load balancer on a proxy_protocol_in listener. */
#include "autoconf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "conn_int.h"
#include "gen.h"
#include "log.h"
#include "proxy_proto.h"
#include "server.h"
#include "tls.h"
#include "worker.h"

bool
conn_trusted(const struct config_listener *lc, const struct sockaddr_storage *peer)
{
    for (size_t i = 0; i < lc->n_trusted; i++)
        if (config_cidr_match(&lc->trusted[i], (const struct sockaddr *)peer))
            return true;
    return false;
}

void
conn_local_addr(const struct conn *c, struct sockaddr_storage *ss)
{
    socklen_t len = sizeof(*ss);

    if (c->local_ss.ss_family != AF_UNSPEC)
        *ss = c->local_ss;                      /* from an inbound PROXY header */
    else if (getsockname(c->cfd, (struct sockaddr *)ss, &len) != 0)
        memset(ss, 0, sizeof(*ss));
}

/* "CN=alice, O=x" -> "alice" in out; "" when there is none. */
static void
conn_cert_cn(const char *subject, char *out, size_t len)
{
    const char *cn = strstr(subject, "CN=");
    size_t n;

    out[0] = '\0';
    if (cn == NULL || (cn != subject && cn[-1] != ' ' && cn[-1] != ','))
        return;
    cn += 3;
    n = strcspn(cn, ",");
    if (n >= len)
        n = len - 1;
    memcpy(out, cn, n);
    out[n] = '\0';
}

static const char *
dash_null(const char *s)
{
    return strcmp(s, "-") == 0 ? NULL : s;
}

/* The PROXY header goes first into the client-to-backend buffer, so it
 * reaches the backend before any payload and through the same flush. */
int
conn_proxy_header(struct conn *c)
{
    const struct tls_peer *peer = tls_peer(c->tls);
    struct sockaddr_storage local;
    uint8_t uid[16];
    char cn[65];
    struct pp_info in = {
        .src = (struct sockaddr *)&c->peer_ss, .dst = (struct sockaddr *)&local,
        .alpn = dash_null(tls_alpn(c->tls)), .authority = dash_null(tls_sni(c->tls)),
        .ssl = true, .ssl_version = tls_version(c->tls), .ssl_cipher = tls_cipher(c->tls),
        .cert_presented = peer != NULL, .cert_verified = peer && strcmp(peer->verify, "ok") == 0,
        .cert_cn = cn, .unique_id = uid, .unique_id_len = sizeof(uid),
    };
    ssize_t n;

    conn_local_addr(c, &local);                 /* unknown: sent as UNKNOWN */
    conn_cert_cn(peer ? peer->subject : "", cn, sizeof(cn));
    memcpy(uid, c->w->srv->instance_id, 8);
    for (int i = 0; i < 8; i++)
        uid[8 + i] = (uint8_t)(c->id >> (56 - 8 * i));
    if (half_buffer(c, &c->up) != 0)
        return -1;
    n = c->be->proxy_protocol == 1
        ? pp_encode_v1(&in, c->up.buf, c->g->cfg->limits.buffer_size)
        : pp_encode_v2(&in, (uint8_t *)c->up.buf, c->g->cfg->limits.buffer_size);
    if (n < 0) {
        conn_close(c, "PROXY header does not fit in limits.buffer_size");
        return -1;
    }
    c->up.len = c->pp_len = (size_t)n;
    return 0;
}

/* ---- inbound PROXY header ------------------------------------------ */

#define CONN_PP_MAX 1024        /* longest inbound header we accept */

static int
conn_proxy_apply(struct conn *c, const struct pp_header *h)
{
    char via[64];

    if (!h->local) {
        memcpy(via, c->peer, sizeof(via));
        c->peer_ss = h->src;
        c->local_ss = h->dst;
        conn_format_peer(c->peer, sizeof(c->peer), &c->peer_ss);
        log_debug("conn=%llu client=%s via=%s PROXY v%d header", (unsigned long long)c->id,
                  c->peer, via, h->version);
    }
    /* LOCAL: the sender's own health check, not a client */
    switch (h->local ? ADDR_UNTRACKED
                     : conn_addr_admit(c->w, c->g->cfg, c->lc->name, &c->peer_ss)) {
    case ADDR_TOO_MANY:
    case ADDR_TOO_FAST:
        c->refused = true;
        atomic_fetch_sub(&c->w->srv->n_accepted, 1);     /* refused, not served */
        metrics_add(&conn_ml(c)->refused[REFUSED_PER_ADDRESS], 1);
        conn_close(c, "refused by a per_address limit");
        return -1;
    case ADDR_ADMIT:
        c->addr_counted = true;
        break;
    default:
        break;
    }
    free(c->pp_buf);
    c->pp_buf = NULL;
    c->pp_in = PP_IN_NONE;
    return 1;
}

/* Bytes are peeked, and consumed only as far as they belong to the
 * header, so the TLS bytes behind it stay in the socket for mbedTLS.
 * Returns 1 when done, 0 to wait for more, -1 when closed. */
int
conn_proxy_in(struct conn *c)
{
    struct pp_header h;
    const char *why;
    ssize_t n;

    if (c->pp_buf == NULL && (c->pp_buf = malloc(CONN_PP_MAX)) == NULL) {
        conn_close(c, "out of memory for the PROXY header");
        return -1;
    }
    n = recv(c->cfd, c->pp_buf + c->pp_have, CONN_PP_MAX - c->pp_have, MSG_PEEK);
    if (n <= 0) {
        if (n == 0 || (errno != EAGAIN && errno != EINTR))
            conn_close(c, n != 0 ? "client read error before the PROXY header"
                          : c->state == CONN_PROXY_IN ? "client closed inside the PROXY header"
                                        : "client closed before sending anything");
        return n == 0 || (errno != EAGAIN && errno != EINTR) ? -1 : 0;
    }
    c->state = CONN_PROXY_IN;
    switch (pp_decode(c->pp_buf, c->pp_have + (size_t)n, &h, &why)) {
    case PP_OK:
        if (recv(c->cfd, c->pp_buf + c->pp_have, h.len - c->pp_have, 0) !=
            (ssize_t)(h.len - c->pp_have)) {
            conn_close(c, "client read error inside the PROXY header");
            return -1;
        }
        return conn_proxy_apply(c, &h);
    case PP_NEED_MORE:
        if (c->pp_have + (size_t)n == CONN_PP_MAX) {
            conn_closef(c, "PROXY header longer than %d bytes", CONN_PP_MAX);
            return -1;
        }
        /* a valid prefix: take it, or a level-triggered loop would spin on it */
        c->pp_have += (size_t)recv(c->cfd, c->pp_buf + c->pp_have, (size_t)n, 0);
        return 0;
    default:
        metrics_add(&conn_ml(c)->refused[REFUSED_PROXY], 1);
        conn_closef(c, "bad PROXY header from a trusted address: %s", why);
        return -1;
    }
}

/* On a proxy_protocol_in listener, a peer outside "trusted" talks TLS
 * directly; a PROXY header from it is a spoofing attempt. */
int
conn_proxy_forbidden(struct conn *c)
{
    char b;

    if (recv(c->cfd, &b, 1, MSG_PEEK) == 1 && (b == 'P' || b == '\r')) {
        c->state = CONN_PROXY_IN;
        metrics_add(&conn_ml(c)->refused[REFUSED_PROXY], 1);
        conn_close(c, "PROXY header from an address not in trusted");
        return -1;
    }
    c->pp_in = PP_IN_NONE;
    return 1;
}
