/* SPDX-License-Identifier: BSD-2-Clause */
/* tlsterm_everest_driver.h - a PSA transparent accelerator driver that runs
 * X25519 (PSA_ECC_FAMILY_MONTGOMERY, 255 bits) key generation, public key
 * export and ECDH on mbedTLS's Everest (HACL*) Curve25519 instead of the
 * generic ECP code.  Every other key type or algorithm answers
 * PSA_ERROR_NOT_SUPPORTED, so PSA falls back to its built-in code.
 *
 * Included by mbedTLS's psa_crypto_driver_wrappers.h when
 * TLSTERM_PSA_EVEREST_DRIVER is defined (see everest-driver.patch). */
#ifndef TLSTERM_EVEREST_DRIVER_H
#define TLSTERM_EVEREST_DRIVER_H

#ifndef PSA_CRYPTO_ACCELERATOR_DRIVER_PRESENT
#define PSA_CRYPTO_ACCELERATOR_DRIVER_PRESENT
#endif

#include <stddef.h>
#include <stdint.h>

#include <psa/crypto.h>

psa_status_t tlsterm_everest_generate_key(const psa_key_attributes_t *attributes,
                                          uint8_t *key_buffer, size_t key_buffer_size,
                                          size_t *key_buffer_length);

psa_status_t tlsterm_everest_export_public_key(const psa_key_attributes_t *attributes,
                                               const uint8_t *key_buffer,
                                               size_t key_buffer_size, uint8_t *data,
                                               size_t data_size, size_t *data_length);

psa_status_t tlsterm_everest_key_agreement(const psa_key_attributes_t *attributes,
                                           const uint8_t *key_buffer, size_t key_buffer_size,
                                           psa_algorithm_t alg, const uint8_t *peer_key,
                                           size_t peer_key_length, uint8_t *shared_secret,
                                           size_t shared_secret_size,
                                           size_t *shared_secret_length);

#endif
