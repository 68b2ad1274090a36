/* SPDX-License-Identifier: BSD-2-Clause */
/* tls_cert.h - loading one certificate chain and its key, with the checks
 * an operator wants at load time rather than from a client. */
#ifndef TLSTERM_TLS_CERT_H
#define TLSTERM_TLS_CERT_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>

#include "config.h"

#define TLS_CERT_EXPIRY_WARN_DAYS 14

struct tls_cert {
    mbedtls_x509_crt crt;       /* leaf first, then the chain */
    mbedtls_pk_context key;     /* mbedtls_pk_free() zeroizes it */
    char **names;               /* SAN DNS names (CN when no SAN), lower case */
    size_t n_names;
};

/* 0, or -1 after adding errors that name the file.  The first load of a
 * configuration checks everything and logs warnings (expiry); the loads
 * for further workers (first == false) only parse, since the same files
 * passed a moment ago: a key-pair check costs a scalar multiplication,
 * which adds up over 1000 certificates and N workers.  drbg: mbedTLS 3.6
 * needs randomness to check a key pair and to derive an EC public key a
 * key file leaves out. */
int tls_cert_load(struct tls_cert *c, const struct config *cfg,
                  const struct config_cert *cc, struct config_errors *errs, bool first,
                  mbedtls_ctr_drbg_context *drbg);
void tls_cert_free(struct tls_cert *c);
/* The expiry warning of start-up, reloads and the daily check (one
 * wording, so one grep finds them all); true when it warned. */
bool tls_cert_warn_expiry(const mbedtls_x509_crt *crt, const char *file, time_t now);
/* Fills out's names, serial and not_after from c. */
struct tls_cert_info;
void tls_cert_describe(const struct tls_cert *c, struct tls_cert_info *out);

#endif
