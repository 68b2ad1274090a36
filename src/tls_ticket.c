/* SPDX-License-Identifier: BSD-2-Clause */
/* tls_ticket.c - ticket key ring and the mbedTLS ticket callbacks. */
#include "autoconf.h"

#include <errno.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mbedtls/base64.h>
#include <mbedtls/entropy.h>
#include <mbedtls/gcm.h>
#include <mbedtls/platform_util.h>

#include "files.h"
#include "log.h"
#include "tls_compat.h"
#include "tls_ticket.h"

#define TICKET_NAME_LEN 16
#define TICKET_KEY_LEN 32
#define TICKET_IV_LEN 12
#define TICKET_TAG_LEN 16
#define TICKET_HEAD (TICKET_NAME_LEN + TICKET_IV_LEN)
#define TICKET_MAX_KEYS 8          /* in a file, or made in memory */
#define TICKET_MAX_RETIRED 8        /* left the file, kept to decrypt */
#define TICKET_MAX_LIFETIME_S (7 * 24 * 3600)

struct ticket_key {
    unsigned char name[TICKET_NAME_LEN];
    unsigned char key[TICKET_KEY_LEN];
    time_t created;
    time_t retired;             /* 0, or when it left the key file */
};

struct tls_tickets {
    pthread_rwlock_t lock;
    struct ticket_key keys[TICKET_MAX_KEYS + TICKET_MAX_RETIRED];  /* keys[0] encrypts */
    size_t n;
    size_t keep;                /* keys kept while rotating */
    int from_file;
    time_t rotate_s;
    uint32_t lifetime_s;
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;  /* makes keys; under the write lock */
};

/* ---- the key file -------------------------------------------------- */

static int
ticket_line(struct tls_tickets *r, const char *line, const char *file, int lineno,
            char *err, size_t errlen)
{
    unsigned char raw[64];
    size_t len = 0;

    if (mbedtls_base64_decode(raw, sizeof(raw), &len, (const unsigned char *)line,
                              strlen(line)) != 0 || len != TICKET_NAME_LEN + TICKET_KEY_LEN) {
        snprintf(err, errlen, "ticket key file %s line %d: expected base64 of 48 random "
                 "bytes (make one with: openssl rand -base64 48)", file, lineno);
        mbedtls_platform_zeroize(raw, sizeof(raw));
        return -1;
    }
    if (r->n == TICKET_MAX_KEYS) {
        snprintf(err, errlen, "ticket key file %s: more than %d keys", file, TICKET_MAX_KEYS);
        mbedtls_platform_zeroize(raw, sizeof(raw));
        return -1;
    }
    memcpy(r->keys[r->n].name, raw, TICKET_NAME_LEN);
    memcpy(r->keys[r->n].key, raw + TICKET_NAME_LEN, TICKET_KEY_LEN);
    r->keys[r->n++].created = time(NULL);
    mbedtls_platform_zeroize(raw, sizeof(raw));
    return 0;
}

static int
ticket_load_file(struct tls_tickets *r, const char *file, char *err, size_t errlen)
{
    struct file_buf b;
    char *line, *next;
    int lineno = 0, rc = files_read(file, &b);

    if (rc != 0) {
        snprintf(err, errlen, "cannot read ticket key file %s: %s", file,
                 files_strerror(-rc));
        return -1;
    }
    for (line = (char *)b.data; rc == 0 && line != NULL && *line != '\0'; line = next) {
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        lineno++;
        line[strcspn(line, "\r")] = '\0';
        if (line[0] != '\0' && line[0] != '#')
            rc = ticket_line(r, line, file, lineno, err, errlen);
    }
    files_free(&b);
    if (rc == 0 && r->n == 0) {
        snprintf(err, errlen, "ticket key file %s holds no key", file);
        rc = -1;
    }
    return rc;
}

/* prev's keys that r (just read from the file) does not hold, newest
 * first, while their tickets may still be valid. */
static void
ticket_keep_retired(struct tls_tickets *r, struct tls_tickets *prev)
{
    time_t now = time(NULL);
    size_t kept = 0;

    pthread_rwlock_rdlock(&prev->lock);
    for (size_t i = 0; i < prev->n && kept < TICKET_MAX_RETIRED; i++) {
        const struct ticket_key *k = &prev->keys[i];
        bool in_file = false;
        for (size_t j = 0; j < r->n && !in_file; j++)
            in_file = memcmp(r->keys[j].name, k->name, TICKET_NAME_LEN) == 0;
        if (in_file || (k->retired != 0 && now - k->retired > (time_t)r->lifetime_s))
            continue;
        r->keys[r->n] = *k;
        if (r->keys[r->n].retired == 0)
            r->keys[r->n].retired = now;
        r->n++;
        kept++;
    }
    pthread_rwlock_unlock(&prev->lock);
    if (kept > 0)
        log_info("ticket keys: %zu key(s) left the key file; kept to decrypt for the ticket "
                 "lifetime (%u s)", kept, r->lifetime_s);
}

/* ---- random keys ---------------------------------------------------- */

/* Caller holds the write lock (or is alone). */
static int
ticket_new_key(struct tls_tickets *r)
{
    struct ticket_key k = { 0 };

    if (mbedtls_ctr_drbg_random(&r->drbg, k.name, sizeof(k.name)) != 0 ||
        mbedtls_ctr_drbg_random(&r->drbg, k.key, sizeof(k.key)) != 0)
        return -1;
    k.created = time(NULL);
    if (r->n == r->keep)
        mbedtls_platform_zeroize(&r->keys[--r->n], sizeof(r->keys[0]));
    memmove(&r->keys[1], &r->keys[0], r->n * sizeof(r->keys[0]));
    r->keys[0] = k;
    r->n++;
    mbedtls_platform_zeroize(&k, sizeof(k));
    return 0;
}

static void
ticket_maybe_rotate(struct tls_tickets *r)
{
    time_t now = time(NULL);
    int due;

    if (r->from_file)
        return;
    pthread_rwlock_rdlock(&r->lock);
    due = now - r->keys[0].created >= r->rotate_s;
    pthread_rwlock_unlock(&r->lock);
    if (!due)
        return;
    pthread_rwlock_wrlock(&r->lock);
    if (now - r->keys[0].created >= r->rotate_s && ticket_new_key(r) == 0)
        log_info("session ticket key rotated (%zu key(s) accepted)", r->n);
    pthread_rwlock_unlock(&r->lock);
}

/* ---- callbacks -------------------------------------------------------- */

static int
ticket_seal(const struct ticket_key *k, const unsigned char *iv, unsigned char *p,
            size_t len, unsigned char *tag, int decrypt)
{
    mbedtls_gcm_context gcm;
    int ret;

    mbedtls_gcm_init(&gcm);
    ret = mbedtls_gcm_setkey(&gcm, MBEDTLS_CIPHER_ID_AES, k->key, TICKET_KEY_LEN * 8);
    if (ret == 0 && !decrypt)
        ret = mbedtls_gcm_crypt_and_tag(&gcm, MBEDTLS_GCM_ENCRYPT, len, iv, TICKET_IV_LEN,
                                        k->name, TICKET_NAME_LEN, p, p, TICKET_TAG_LEN, tag);
    else if (ret == 0)
        ret = mbedtls_gcm_auth_decrypt(&gcm, len, iv, TICKET_IV_LEN, k->name,
                                       TICKET_NAME_LEN, tag, TICKET_TAG_LEN, p, p);
    mbedtls_gcm_free(&gcm);
    return ret;
}

static int
ticket_write(void *p_ticket, const mbedtls_ssl_session *session, unsigned char *start,
             const unsigned char *end, size_t *tlen, uint32_t *lifetime)
{
    struct tls_ticket_user *u = p_ticket;
    struct tls_tickets *r = u->ring;
    size_t avail = (size_t)(end - start), clen = 0;
    mbedtls_ssl_session wall = *session;    /* shallow: only read below */
    struct ticket_key k = { 0 };
    int ret;

    if (avail < TICKET_HEAD + TICKET_TAG_LEN)
        return MBEDTLS_ERR_SSL_BUFFER_TOO_SMALL;
    ticket_maybe_rotate(r);
    pthread_rwlock_rdlock(&r->lock);
    k = r->keys[0];
    pthread_rwlock_unlock(&r->lock);
    tls_compat_ticket_to_wall(&wall);
    ret = mbedtls_ssl_session_save(&wall, start + TICKET_HEAD,
                                   avail - TICKET_HEAD - TICKET_TAG_LEN, &clen);
    if (ret == 0)
        ret = mbedtls_ctr_drbg_random(u->drbg, start + TICKET_NAME_LEN, TICKET_IV_LEN);
    if (ret == 0)
        ret = ticket_seal(&k, start + TICKET_NAME_LEN, start + TICKET_HEAD, clen,
                          start + TICKET_HEAD + clen, 0);
    memcpy(start, k.name, TICKET_NAME_LEN);
    mbedtls_platform_zeroize(&k, sizeof(k));
    *tlen = TICKET_HEAD + clen + TICKET_TAG_LEN;
    /* RFC 8446 caps a ticket's life at 7 days, and mbedTLS 3.6 fails the
     * whole TLS 1.3 handshake rather than send a longer one. */
    *lifetime = r->lifetime_s < TICKET_MAX_LIFETIME_S ? r->lifetime_s : TICKET_MAX_LIFETIME_S;
    return ret;
}

static int
ticket_find(struct tls_tickets *r, const unsigned char *name, struct ticket_key *out)
{
    int found = 0;

    time_t now = time(NULL);

    pthread_rwlock_rdlock(&r->lock);
    for (size_t i = 0; i < r->n && !found; i++) {
        if (memcmp(r->keys[i].name, name, TICKET_NAME_LEN) == 0 &&
            (r->keys[i].retired == 0 || now - r->keys[i].retired <= (time_t)r->lifetime_s)) {
            *out = r->keys[i];
            found = 1;
        }
    }
    pthread_rwlock_unlock(&r->lock);
    return found;
}

/* The creation time comes from inside the sealed ticket, but a key file
 * shared by instances whose clocks differ can still bring one from the
 * future: refuse it, rather than accept it for ever, and compare without
 * signed arithmetic on a value we did not make.  A good ticket's session
 * gets this host's clock back (tls_compat.h says why). */
static bool
ticket_age_ok(mbedtls_ssl_session *session, uint32_t lifetime_s)
{
    int64_t made_ms, now_ms = tls_compat_wall_ms();

    if (tls_compat_ticket_made_ms(session, &made_ms) != 0 || made_ms < 0 || made_ms > now_ms)
        return false;
    if ((uint64_t)(now_ms - made_ms) > (uint64_t)lifetime_s * 1000)
        return false;
    tls_compat_ticket_from_wall(session, now_ms - made_ms);
    return true;
}

int
tls_tickets_parse(void *p_ticket, mbedtls_ssl_session *session, unsigned char *buf, size_t len)
{
    struct tls_ticket_user *u = p_ticket;
    struct ticket_key k = { 0 };
    size_t clen;
    int ret;

    if (len < TICKET_HEAD + TICKET_TAG_LEN)
        return MBEDTLS_ERR_SSL_BAD_INPUT_DATA;
    if (!ticket_find(u->ring, buf, &k))
        return MBEDTLS_ERR_SSL_INVALID_MAC;     /* unknown key: full handshake */
    clen = len - TICKET_HEAD - TICKET_TAG_LEN;
    ret = ticket_seal(&k, buf + TICKET_NAME_LEN, buf + TICKET_HEAD, clen,
                      buf + TICKET_HEAD + clen, 1);
    mbedtls_platform_zeroize(&k, sizeof(k));
    if (ret != 0)
        return MBEDTLS_ERR_SSL_INVALID_MAC;
    ret = mbedtls_ssl_session_load(session, buf + TICKET_HEAD, clen);
    if (ret == 0 && !ticket_age_ok(session, u->ring->lifetime_s))
        ret = MBEDTLS_ERR_SSL_SESSION_TICKET_EXPIRED;
    return ret;
}

/* ---- life cycle -------------------------------------------------------- */

struct tls_tickets *
tls_tickets_new(const struct config *cfg, struct tls_tickets *prev, struct config_errors *errs)
{
    struct tls_tickets *r = calloc(1, sizeof(*r));
    uint64_t rotate = cfg->tls.tickets.rotate_ms / 1000;
    char err[512] = "";

    if (r == NULL)
        return NULL;
    pthread_rwlock_init(&r->lock, NULL);
    mbedtls_entropy_init(&r->entropy);
    mbedtls_ctr_drbg_init(&r->drbg);
    r->rotate_s = rotate > 0 ? (time_t)rotate : 1;
    r->lifetime_s = (uint32_t)(cfg->tls.tickets.lifetime_ms / 1000);
    r->keep = 1 + (size_t)((r->lifetime_s + (uint64_t)r->rotate_s - 1) / (uint64_t)r->rotate_s);
    if (r->keep > TICKET_MAX_KEYS)
        r->keep = TICKET_MAX_KEYS;
    if (cfg->tls.tickets.key_file != NULL) {
        r->from_file = 1;
        if (ticket_load_file(r, cfg->tls.tickets.key_file, err, sizeof(err)) != 0) {
            config_errors_add(errs, cfg->path, (struct config_pos){0, 0}, "%s", err);
            tls_tickets_free(r);
            return NULL;
        }
        if (prev != NULL)
            ticket_keep_retired(r, prev);
    } else if (mbedtls_ctr_drbg_seed(&r->drbg, mbedtls_entropy_func, &r->entropy,
                                     (const unsigned char *)"tickets", 7) != 0 ||
               ticket_new_key(r) != 0) {
        config_errors_add(errs, cfg->path, (struct config_pos){0, 0},
                          "cannot make a session ticket key");
        tls_tickets_free(r);
        return NULL;
    }
    return r;
}

void
tls_tickets_free(struct tls_tickets *r)
{
    if (r == NULL)
        return;
    mbedtls_platform_zeroize(r->keys, sizeof(r->keys));
    mbedtls_ctr_drbg_free(&r->drbg);
    mbedtls_entropy_free(&r->entropy);
    pthread_rwlock_destroy(&r->lock);
    free(r);
}

void
tls_tickets_conf(mbedtls_ssl_config *conf, struct tls_ticket_user *u)
{
    mbedtls_ssl_conf_session_tickets_cb(conf, ticket_write, tls_tickets_parse, u);
}

int
tls_tickets_seal(struct tls_ticket_user *u, const unsigned char *plain, size_t len,
                 unsigned char *out, size_t cap, size_t *olen)
{
    struct ticket_key k = { 0 };
    int ret;

    if (cap < TICKET_HEAD + TICKET_TAG_LEN || len > cap - TICKET_HEAD - TICKET_TAG_LEN)
        return MBEDTLS_ERR_SSL_BUFFER_TOO_SMALL;
    pthread_rwlock_rdlock(&u->ring->lock);
    k = u->ring->keys[0];
    pthread_rwlock_unlock(&u->ring->lock);
    memcpy(out, k.name, TICKET_NAME_LEN);
    memcpy(out + TICKET_HEAD, plain, len);
    ret = mbedtls_ctr_drbg_random(u->drbg, out + TICKET_NAME_LEN, TICKET_IV_LEN);
    if (ret == 0)
        ret = ticket_seal(&k, out + TICKET_NAME_LEN, out + TICKET_HEAD, len,
                          out + TICKET_HEAD + len, 0);
    mbedtls_platform_zeroize(&k, sizeof(k));
    *olen = TICKET_HEAD + len + TICKET_TAG_LEN;
    return ret;
}

size_t
tls_tickets_key_count(struct tls_tickets *r)
{
    size_t n;

    pthread_rwlock_rdlock(&r->lock);
    n = r->n;
    pthread_rwlock_unlock(&r->lock);
    return n;
}
