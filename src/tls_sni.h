/* SPDX-License-Identifier: BSD-2-Clause */
/* tls_sni.h - server names to certificates: a hash of exact names and a
 * hash of wildcard suffixes, so lookup cost does not grow with the number
 * of certificates.  Pure data structure, no mbedTLS. */
#ifndef TLSTERM_TLS_SNI_H
#define TLSTERM_TLS_SNI_H

#include <stdbool.h>
#include <stddef.h>

/* One name can be served by an RSA and an ECDSA certificate (and a few
 * more); mbedTLS picks among them by what the client supports. */
#define SNI_MAX_CERTS_PER_NAME 4

struct sni_entry {
    char *key;                  /* lower case; for "*.a.b" the key is "a.b" */
    unsigned n;
    unsigned idx[SNI_MAX_CERTS_PER_NAME];
};

struct sni_table;

struct sni_table *sni_table_new(void);
void sni_table_free(struct sni_table *t);
/* What sni_table_add() says besides 0 (added). */
enum sni_add {
    SNI_ADD_NOMEM = -1,
    SNI_ADD_FULL = 1,           /* the name has SNI_MAX_CERTS_PER_NAME certificates */
    SNI_ADD_BAD_NAME = 2,       /* empty, a bare "*.", or longer than 255 bytes */
};
/* name is "host.example" or "*.example"; 0 or an enum sni_add. */
int sni_table_add(struct sni_table *t, const char *name, unsigned idx);
/* Exact match first, then "*." + the name minus its first label.  Case
 * does not matter.  NULL when nothing matches. */
const struct sni_entry *sni_table_find(const struct sni_table *t, const char *name,
                                       size_t len);
size_t sni_table_size(const struct sni_table *t);

/* The same rule for one pattern (routes), without a table. */
bool sni_match(const char *pattern, const char *name);

#endif
