/* SPDX-License-Identifier: BSD-2-Clause */
/* tls_cert.c - certificate and key loading and checking. */
#include "autoconf.h"

#include <ctype.h>
#include <stdbool.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <mbedtls/ecdsa.h>
#include <mbedtls/error.h>
#include <mbedtls/oid.h>
#include <mbedtls/pkcs5.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/ssl.h>
#include <mbedtls/version.h>

#include "files.h"
#include "log.h"
#include "tls.h"
#include "tls_cert.h"
#include "tls_compat.h"

static void
cert_err(struct config_errors *errs, const struct config *cfg, const struct config_cert *cc,
         const char *what, const char *file, int ret)
{
    char msg[200];

    mbedtls_strerror(ret, msg, sizeof(msg));
    config_errors_add(errs, cfg->path, cc->pos, "%s %s: %s", what, file, msg);
}

/* mbedTLS reports a missing file as "Read/write of file failed"; say
 * what the operator needs to know instead. */
static int
cert_read(struct config_errors *errs, const struct config *cfg, const struct config_cert *cc,
          const char *what, const char *file, struct file_buf *out)
{
    int rc = files_read(file, out);

    if (rc == -EISDIR)
        config_errors_add(errs, cfg->path, cc->pos, "cannot read %s %s: it is a directory; "
                          "name the file in it", what, file);
    else if (rc != 0)
        config_errors_add(errs, cfg->path, cc->pos, "cannot read %s %s: %s", what, file,
                          files_strerror(-rc));
    return rc;
}

/* Whether a PEM file holds marker: an encrypted key, a certificate in
 * the key file or the reverse. */
static bool
file_has(const struct file_buf *b, const char *marker)
{
    return strstr((const char *)b->data, marker) != NULL;
}

static bool
files_swapped(const struct config *cfg, const struct config_cert *cc,
              const struct file_buf *crt, const struct file_buf *key,
              struct config_errors *errs)
{
    /* one combined file (certificates: {dir: ...}) holds both by design */
    if (strcmp(cc->cert_file, cc->key_file) == 0 || !file_has(crt, "PRIVATE KEY-----") ||
        !file_has(key, "-----BEGIN CERTIFICATE-----"))
        return false;
    config_errors_add(errs, cfg->path, cc->pos, "certificate %s holds a private key and key %s "
                      "a certificate: cert and key are swapped", cc->cert_file, cc->key_file);
    return true;
}

/* The first line of the file, without its newline; zeroized by caller. */
static int
cert_passphrase(char *out, size_t len, const struct config *cfg,
                const struct config_cert *cc, struct config_errors *errs)
{
    struct file_buf b;
    int rc = files_read(cc->key_passphrase_file, &b);
    size_t n;

    if (rc != 0) {
        config_errors_add(errs, cfg->path, cc->pos, "cannot read key_passphrase_file %s: %s",
                          cc->key_passphrase_file, files_strerror(-rc));
        return -1;
    }
    n = strcspn((const char *)b.data, "\r\n");
    n = n < len - 1 ? n : len - 1;
    memcpy(out, b.data, n);
    out[n] = '\0';
    files_free(&b);
    return 0;
}

/* mbedTLS spots a wrong passphrase by the first bytes of what it
 * decrypted; about once in 500 they happen to look like a key and the
 * parse fails later, as a malformed key.  For an encrypted key with a
 * passphrase that is still the wrong passphrase. */
static bool
cert_wrong_passphrase(int ret, const struct config_cert *cc, const struct file_buf *key)
{
    if (ret == MBEDTLS_ERR_PK_PASSWORD_MISMATCH)
        return true;
    return cc->key_passphrase_file != NULL &&
           (-ret & 0xFF80) == -MBEDTLS_ERR_PK_KEY_INVALID_FORMAT &&
           file_has(key, "ENCRYPTED");   /* "Proc-Type: 4,ENCRYPTED", or
                                                    "BEGIN ENCRYPTED PRIVATE KEY" */
}

static int
cert_load_key(struct tls_cert *c, const struct config *cfg, const struct config_cert *cc,
              const struct file_buf *key, struct config_errors *errs,
              mbedtls_ctr_drbg_context *drbg)
{
    char pass[1024] = "";
    int ret;

    if (cc->key_passphrase_file != NULL &&
        cert_passphrase(pass, sizeof(pass), cfg, cc, errs) != 0)
        return -1;
    ret = tls_compat_pk_parse_key(&c->key, key->data, files_parse_len(key),
                                  cc->key_passphrase_file ? (const unsigned char *)pass : NULL,
                                  strlen(pass),
                                  mbedtls_ctr_drbg_random, drbg);
    mbedtls_platform_zeroize(pass, sizeof(pass));
    if (ret == MBEDTLS_ERR_PK_PASSWORD_REQUIRED) {
        config_errors_add(errs, cfg->path, cc->pos, "private key %s is encrypted: add "
                          "key_passphrase_file", cc->key_file);
        return -1;
    }
    if (cert_wrong_passphrase(ret, cc, key)) {
        config_errors_add(errs, cfg->path, cc->pos, "private key %s: wrong passphrase in %s",
                          cc->key_file, cc->key_passphrase_file);
        return -1;
    }
    if (ret == MBEDTLS_ERR_PKCS5_FEATURE_UNAVAILABLE ||
        ret == MBEDTLS_ERR_PK_FEATURE_UNAVAILABLE + MBEDTLS_ERR_PKCS5_FEATURE_UNAVAILABLE) {
        config_errors_add(errs, cfg->path, cc->pos, "private key %s is encrypted with a "
                          "cipher mbedTLS %s cannot decrypt (PKCS#8 with AES); re-encrypt it "
                          "as traditional PEM: openssl pkey -in KEY -aes256 -traditional "
                          "-out NEWKEY", cc->key_file, MBEDTLS_VERSION_STRING);
        return -1;
    }
    if (ret != 0) {
        cert_err(errs, cfg, cc, "cannot load private key", cc->key_file, ret);
        return -1;
    }
    return 0;
}

static time_t
cert_time(const mbedtls_x509_time *t)
{
    struct tm tm = { 0 };

    tm.tm_year = t->year - 1900;
    tm.tm_mon = t->mon - 1;
    tm.tm_mday = t->day;
    tm.tm_hour = t->hour;
    tm.tm_min = t->min;
    tm.tm_sec = t->sec;
    return timegm(&tm);
}

bool
tls_cert_warn_expiry(const mbedtls_x509_crt *crt, const char *file, time_t now)
{
    const mbedtls_x509_time *to = &crt->valid_to;
    double days = difftime(cert_time(to), now) / 86400.0;

    if (days < 0)
        log_warn("certificate %s has expired (%04d-%02d-%02d); clients refuse it until a "
                 "renewed certificate is loaded (SIGHUP)", file, to->year, to->mon, to->day);
    else if (days < TLS_CERT_EXPIRY_WARN_DAYS)
        log_warn("certificate %s expires in %.1f days (%04d-%02d-%02d)", file, days,
                 to->year, to->mon, to->day);
    return days < TLS_CERT_EXPIRY_WARN_DAYS;
}

void
tls_cert_describe(const struct tls_cert *c, struct tls_cert_info *out)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t off = 0;

    out->names[0] = '\0';
    for (size_t i = 0; i < c->n_names; i++) {
        int n = snprintf(out->names + off, sizeof(out->names) - off, "%s%s", i ? "," : "",
                         c->names[i]);
        if (n < 0 || (size_t)n >= sizeof(out->names) - off)
            break;
        off += (size_t)n;
    }
    off = 0;
    for (size_t i = 0; i < c->crt.serial.len && off + 2 < sizeof(out->serial); i++) {
        out->serial[off++] = hex[c->crt.serial.p[i] >> 4];
        out->serial[off++] = hex[c->crt.serial.p[i] & 15];
    }
    out->serial[off] = '\0';
    out->not_after = cert_time(&c->crt.valid_to);
}

static int
cert_check_dates(const struct tls_cert *c, const struct config *cfg,
                 const struct config_cert *cc, struct config_errors *errs)
{
    const mbedtls_x509_time *to = &c->crt.valid_to, *from = &c->crt.valid_from;
    time_t now = time(NULL);

    if (mbedtls_x509_time_is_future(from)) {
        config_errors_add(errs, cfg->path, cc->pos, "certificate %s is not valid before "
                          "%04d-%02d-%02d %02d:%02d:%02d UTC", cc->cert_file, from->year,
                          from->mon, from->day, from->hour, from->min, from->sec);
        return -1;
    }
    if (cert_time(to) < now && !cc->allow_expired) {
        config_errors_add(errs, cfg->path, cc->pos, "certificate %s expired on "
                          "%04d-%02d-%02d %02d:%02d:%02d UTC (set allow_expired: true to "
                          "serve it anyway)", cc->cert_file, to->year, to->mon, to->day,
                          to->hour, to->min, to->sec);
        return -1;
    }
    if (cert_time(to) < now)
        log_warn("certificate %s expired on %04d-%02d-%02d; serving it (allow_expired)",
                 cc->cert_file, to->year, to->mon, to->day);
    else
        tls_cert_warn_expiry(&c->crt, cc->cert_file, now);
    return 0;
}

/* Each certificate of the chain must be issued by the one after it. */
static int
cert_check_chain(const struct tls_cert *c, const struct config *cfg,
                 const struct config_cert *cc, struct config_errors *errs)
{
    int i = 1;

    for (const mbedtls_x509_crt *x = &c->crt; x->next && x->next->raw.p; x = x->next, i++) {
        if (x->issuer_raw.len == x->next->subject_raw.len &&
            memcmp(x->issuer_raw.p, x->next->subject_raw.p, x->issuer_raw.len) == 0)
            continue;
        char issuer[200], next[200];
        mbedtls_x509_dn_gets(issuer, sizeof(issuer), &x->issuer);
        mbedtls_x509_dn_gets(next, sizeof(next), &x->next->subject);
        config_errors_add(errs, cfg->path, cc->pos, "certificate chain in %s is out of "
                          "order: certificate %d is issued by \"%s\" but certificate %d is "
                          "\"%s\" (put the leaf first, then each issuer)", cc->cert_file,
                          i, issuer, i + 1, next);
        return -1;
    }
    return 0;
}

/* mbedTLS writes a handshake message into its output buffer whole and
 * sends it as one record: over TCP it never fragments one (only DTLS
 * does), so the server's Certificate message must fit in
 * MBEDTLS_SSL_OUT_CONTENT_LEN bytes or every handshake fails with
 * MBEDTLS_ERR_SSL_BUFFER_TOO_SMALL, while tlsterm starts without
 * complaint.  16384 (the default, Debian's packages) holds any sane
 * chain; tlsterm's tuned build sends 8 KiB records (src/mbedtls/
 * tlsterm_config.h), where a long chain no longer fits.  The sizes are
 * those of mbedtls_ssl_write_certificate() (TLS 1.2: handshake header 4,
 * list length 3, each certificate's length 3) and
 * ssl_tls13_write_certificate_body() (TLS 1.3: header 4, an empty
 * certificate_request_context 1, list length 3, each certificate's
 * length 3 and its empty extensions 2). */
static size_t
cert_msg_len(const mbedtls_x509_crt *crt, int tls_minor)
{
    size_t n = tls_minor >= 4 ? 4 + 1 + 3 : 4 + 3;

    for (const mbedtls_x509_crt *x = crt; x != NULL && x->raw.p != NULL; x = x->next)
        n += x->raw.len + (tls_minor >= 4 ? 3 + 2 : 3);
    return n;
}

static int
cert_check_record_size(const struct tls_cert *c, const struct config *cfg,
                       const struct config_cert *cc, struct config_errors *errs)
{
    /* the larger framing of the versions this configuration speaks */
    int minor = cfg->tls.max_version >= 4 ? 4 : 3;
    size_t len = cert_msg_len(&c->crt, minor);

    if (len <= MBEDTLS_SSL_OUT_CONTENT_LEN)
        return 0;
    config_errors_add(errs, cfg->path, cc->pos, "certificate chain in %s is too large: its "
                      "TLS 1.%d Certificate message is %zu bytes, more than the %d bytes of "
                      "one record this mbedTLS (%s) sends (MBEDTLS_SSL_OUT_CONTENT_LEN), so "
                      "every handshake would fail; use a shorter chain (leave out the root, "
                      "fewer or smaller certificates) or an mbedTLS built with a larger "
                      "MBEDTLS_SSL_OUT_CONTENT_LEN", cc->cert_file, minor - 1, len,
                      (int)MBEDTLS_SSL_OUT_CONTENT_LEN, MBEDTLS_VERSION_STRING);
    return -1;
}

static int
cert_add_name(struct tls_cert *c, const unsigned char *p, size_t len)
{
    char **names = realloc(c->names, (c->n_names + 1) * sizeof(*names));
    char *s = malloc(len + 1);

    if (names == NULL || s == NULL) {
        free(s);
        if (names != NULL)
            c->names = names;
        return -1;
    }
    for (size_t i = 0; i < len; i++)
        s[i] = (char)tolower(p[i]);
    s[len] = '\0';
    names[c->n_names++] = s;
    c->names = names;
    return 0;
}

/* -1 without memory, -2 for a DNS name with a NUL byte (a name that
 * would match something else once cut at the NUL: refused, not cut). */
static int
cert_collect_names(struct tls_cert *c)
{
    for (const mbedtls_x509_sequence *s = &c->crt.subject_alt_names; s && s->buf.p; s = s->next)
        if ((s->buf.tag & MBEDTLS_ASN1_TAG_VALUE_MASK) == MBEDTLS_X509_SAN_DNS_NAME &&
            (s->buf.tag & MBEDTLS_ASN1_CONTEXT_SPECIFIC)) {
            if (memchr(s->buf.p, 0, s->buf.len) != NULL)
                return -2;
            if (cert_add_name(c, s->buf.p, s->buf.len) != 0)
                return -1;
        }
    if (c->n_names > 0)
        return 0;
    for (const mbedtls_x509_name *n = &c->crt.subject; n && n->oid.p; n = n->next)
        if (MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &n->oid) == 0)
            return cert_add_name(c, n->val.p, n->val.len);
    return 0;
}

/* mbedTLS 2.28 signs with an ECKEY-type key by copying it into a
 * temporary ECDSA context, which throws away the precomputed table of the
 * curve's base point every time: each handshake paid for building it
 * again (a signature cost 2.2x what it should).  An ECDSA-type key keeps
 * the table in its own group after the first signature. */
static int
cert_key_as_ecdsa(struct tls_cert *c)
{
    mbedtls_pk_context ecdsa;
    int ret;

    if (mbedtls_pk_get_type(&c->key) != MBEDTLS_PK_ECKEY)
        return 0;
    mbedtls_pk_init(&ecdsa);
    ret = mbedtls_pk_setup(&ecdsa, mbedtls_pk_info_from_type(MBEDTLS_PK_ECDSA));
    if (ret == 0)
        ret = mbedtls_ecdsa_from_keypair(mbedtls_pk_ec(ecdsa), mbedtls_pk_ec(c->key));
    if (ret != 0) {
        mbedtls_pk_free(&ecdsa);
        return ret;
    }
    mbedtls_pk_free(&c->key);       /* zeroizes the ECKEY copy */
    c->key = ecdsa;
    return 0;
}

static int
cert_load_files(struct tls_cert *c, const struct config *cfg, const struct config_cert *cc,
                struct config_errors *errs, bool first, mbedtls_ctr_drbg_context *drbg,
                const struct file_buf *crt, const struct file_buf *key)
{
    int ret = mbedtls_x509_crt_parse(&c->crt, crt->data, files_parse_len(crt));

    if (ret != 0) {
        if (!files_swapped(cfg, cc, crt, key, errs))
            cert_err(errs, cfg, cc, "cannot load certificate", cc->cert_file, ret);
        return -1;
    }
    /* Chain order first: with the chain reversed the "leaf" is an issuer,
     * and "key does not match" would send the operator the wrong way. */
    if ((first && (cert_check_chain(c, cfg, cc, errs) != 0 ||
                   cert_check_record_size(c, cfg, cc, errs) != 0)) ||
        cert_load_key(c, cfg, cc, key, errs, drbg) != 0)
        return -1;
    if (first && tls_compat_check_pair(&c->crt.pk, &c->key, mbedtls_ctr_drbg_random, drbg) != 0) {
        config_errors_add(errs, cfg->path, cc->pos, "private key %s does not match "
                          "certificate %s", cc->key_file, cc->cert_file);
        return -1;
    }
    if (first && cert_check_dates(c, cfg, cc, errs) != 0)
        return -1;
    if ((ret = cert_key_as_ecdsa(c)) != 0) {
        cert_err(errs, cfg, cc, "cannot use private key", cc->key_file, ret);
        return -1;
    }
    if ((ret = cert_collect_names(c)) == -2)
        config_errors_add(errs, cfg->path, cc->pos, "certificate %s has a DNS name with a NUL "
                          "byte in it; refused", cc->cert_file);
    else if (ret != 0)
        config_errors_add(errs, cfg->path, cc->pos, "out of memory");
    if (ret != 0)
        return -1;
    return 0;
}

int
tls_cert_load(struct tls_cert *c, const struct config *cfg, const struct config_cert *cc,
              struct config_errors *errs, bool first, mbedtls_ctr_drbg_context *drbg)
{
    struct file_buf crt = { 0 }, key = { 0 };
    int ret = -1;

    mbedtls_x509_crt_init(&c->crt);
    mbedtls_pk_init(&c->key);
    if (cert_read(errs, cfg, cc, "certificate", cc->cert_file, &crt) == 0 &&
        cert_read(errs, cfg, cc, "private key", cc->key_file, &key) == 0)
        ret = cert_load_files(c, cfg, cc, errs, first, drbg, &crt, &key);
    files_free(&crt);
    files_free(&key);
    return ret;
}

void
tls_cert_free(struct tls_cert *c)
{
    mbedtls_x509_crt_free(&c->crt);
    mbedtls_pk_free(&c->key);
    for (size_t i = 0; i < c->n_names; i++)
        free(c->names[i]);
    free(c->names);
    c->names = NULL;
    c->n_names = 0;
}
