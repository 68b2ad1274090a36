/* SPDX-License-Identifier: BSD-2-Clause */
/* tls_ticket.h - session-ticket keys shared by every worker of a process,
 * and optionally by several processes through a key file.
 *
 * Tickets are AES-256-GCM: key name (16) | IV (12) | sealed session | tag
 * (16), with the key name as additional data.  The key file holds one
 * base64 line per key (48 bytes: 16-byte name, 32-byte AES key), newest
 * first; the first encrypts, all decrypt.  Without a file, random keys are
 * made in-process and rotated every `rotate`, keeping the older keys for
 * as long as tickets made with them may live. */
#ifndef TLSTERM_TLS_TICKET_H
#define TLSTERM_TLS_TICKET_H

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ssl.h>

#include "config.h"

struct tls_tickets;

/* The per-worker side: its RNG makes the IVs. */
struct tls_ticket_user {
    struct tls_tickets *ring;
    mbedtls_ctr_drbg_context *drbg;
};

/* With a key file, prev's keys that the file no longer holds stay, to
 * decrypt only, for the ticket lifetime after this load: mbedTLS sends no
 * new ticket on a TLS 1.2 resumption, so a client keeps the ticket of its
 * full handshake, sealed with a key that two rotations take out of the
 * file while the ticket is still valid. */
struct tls_tickets *tls_tickets_new(const struct config *cfg, struct tls_tickets *prev,
                                    struct config_errors *errs);
void tls_tickets_free(struct tls_tickets *ring);
void tls_tickets_conf(mbedtls_ssl_config *conf, struct tls_ticket_user *u);
size_t tls_tickets_key_count(struct tls_tickets *ring);
/* mbedTLS's ticket parse callback (p_ticket: a struct tls_ticket_user). */
int tls_tickets_parse(void *p_ticket, mbedtls_ssl_session *session, unsigned char *buf,
                      size_t len);
/* Seals len bytes as a ticket under the key in use: the fuzz target's way
 * past the AEAD to what a ticket's plaintext reaches (the session parser,
 * the age check), which a client can only reach with a key it stole. */
int tls_tickets_seal(struct tls_ticket_user *u, const unsigned char *plain, size_t len,
                     unsigned char *out, size_t cap, size_t *olen);

#endif
