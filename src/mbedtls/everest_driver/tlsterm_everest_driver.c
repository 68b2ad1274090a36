/* SPDX-License-Identifier: BSD-2-Clause */
/* tlsterm_everest_driver.c - X25519 through PSA on Everest (HACL*).
 *
 * mbedTLS 3.6 with MBEDTLS_ECDH_VARIANT_EVEREST_ENABLED uses Everest for
 * the TLS 1.2 ECDHE path (mbedtls_ecdh_*), but TLS 1.3 calls
 * psa_generate_key + psa_export_public_key + psa_raw_key_agreement, and
 * PSA's built-in public key export runs the generic ECP code (a Montgomery
 * ladder on bignums: 7.5 M instructions and ~3,100 allocations, against
 * Everest's 1.07 M and none).  This transparent driver answers those three
 * entry points for Curve25519 key pairs (measurements:
 * tests/bench/results/mbedtls-switches.md).
 *
 * Key representation (PSA's export format for Montgomery keys, RFC 7748):
 * the private key is 32 bytes, little-endian, stored clamped as mbedTLS's
 * own generator stores it; the public key is the 32-byte u-coordinate. */
#include <psa/crypto.h>         /* mbedTLS's configuration first */

#if defined(TLSTERM_PSA_EVEREST_DRIVER)
#if !defined(MBEDTLS_ECDH_VARIANT_EVEREST_ENABLED)
#error "TLSTERM_PSA_EVEREST_DRIVER needs MBEDTLS_ECDH_VARIANT_EVEREST_ENABLED"
#endif

#include "tlsterm_everest_driver.h"

#include <string.h>

#include <mbedtls/ecp.h>
#include <mbedtls/platform_util.h>
#include <everest/x25519.h>     /* needs mbedtls/ecp.h first */

#define X25519_BYTES 32

static int
is_x25519_pair(const psa_key_attributes_t *attributes)
{
    return psa_get_key_type(attributes) ==
               PSA_KEY_TYPE_ECC_KEY_PAIR(PSA_ECC_FAMILY_MONTGOMERY) &&
           psa_get_key_bits(attributes) == 255;
}

psa_status_t
tlsterm_everest_generate_key(const psa_key_attributes_t *attributes, uint8_t *key_buffer,
                             size_t key_buffer_size, size_t *key_buffer_length)
{
    psa_status_t st;

    if (!is_x25519_pair(attributes))
        return PSA_ERROR_NOT_SUPPORTED;
    if (key_buffer_size < X25519_BYTES)
        return PSA_ERROR_BUFFER_TOO_SMALL;
    st = psa_generate_random(key_buffer, X25519_BYTES);
    if (st != PSA_SUCCESS)
        return st;
    key_buffer[0] &= 248;       /* RFC 7748 section 5 */
    key_buffer[31] &= 127;
    key_buffer[31] |= 64;
    *key_buffer_length = X25519_BYTES;
    return PSA_SUCCESS;
}

/* mbedtls_x25519_make_public() takes its secret from an RNG callback; this
 * one hands it the stored private key, so the public key is computed from
 * that key with Everest's public API alone (no HACL* internals). */
static int
stored_secret(void *key, unsigned char *out, size_t len)
{
    if (len != X25519_BYTES)
        return MBEDTLS_ERR_ECP_BAD_INPUT_DATA;
    memcpy(out, key, X25519_BYTES);
    return 0;
}

psa_status_t
tlsterm_everest_export_public_key(const psa_key_attributes_t *attributes,
                                  const uint8_t *key_buffer, size_t key_buffer_size,
                                  uint8_t *data, size_t data_size, size_t *data_length)
{
    mbedtls_x25519_context ctx;
    unsigned char point[X25519_BYTES + 1];      /* length byte + u */
    size_t olen = 0;
    int ret;

    /* A public key is exported as stored: the core's copy does that. */
    if (!is_x25519_pair(attributes))
        return PSA_ERROR_NOT_SUPPORTED;
    if (key_buffer_size != X25519_BYTES)
        return PSA_ERROR_INVALID_ARGUMENT;
    if (data_size < X25519_BYTES)
        return PSA_ERROR_BUFFER_TOO_SMALL;
    mbedtls_x25519_init(&ctx);
    ret = mbedtls_x25519_make_public(&ctx, &olen, point, sizeof(point), stored_secret,
                                     (void *)key_buffer);
    mbedtls_x25519_free(&ctx);          /* wipes the copy of the secret */
    if (ret != 0 || olen != sizeof(point))
        return PSA_ERROR_INVALID_ARGUMENT;
    memcpy(data, point + 1, X25519_BYTES);
    *data_length = X25519_BYTES;
    return PSA_SUCCESS;
}

psa_status_t
tlsterm_everest_key_agreement(const psa_key_attributes_t *attributes,
                              const uint8_t *key_buffer, size_t key_buffer_size,
                              psa_algorithm_t alg, const uint8_t *peer_key,
                              size_t peer_key_length, uint8_t *shared_secret,
                              size_t shared_secret_size, size_t *shared_secret_length)
{
    mbedtls_x25519_context ctx;
    size_t olen = 0;
    int ret;

    if (!is_x25519_pair(attributes) || alg != PSA_ALG_ECDH)
        return PSA_ERROR_NOT_SUPPORTED;
    if (key_buffer_size != X25519_BYTES || peer_key_length != X25519_BYTES)
        return PSA_ERROR_INVALID_ARGUMENT;
    if (shared_secret_size < X25519_BYTES)
        return PSA_ERROR_BUFFER_TOO_SMALL;
    mbedtls_x25519_init(&ctx);
    memcpy(ctx.our_secret, key_buffer, X25519_BYTES);
    memcpy(ctx.peer_point, peer_key, X25519_BYTES);
    /* Wipes our_secret; fails on an all-zero result (a small-order peer
     * point), as the built-in path does. */
    ret = mbedtls_x25519_calc_secret(&ctx, &olen, shared_secret, shared_secret_size, NULL,
                                     NULL);
    mbedtls_x25519_free(&ctx);
    if (ret != 0 || olen != X25519_BYTES) {
        mbedtls_platform_zeroize(shared_secret, shared_secret_size);
        return PSA_ERROR_INVALID_ARGUMENT;
    }
    *shared_secret_length = X25519_BYTES;
    return PSA_SUCCESS;
}

#endif /* TLSTERM_PSA_EVEREST_DRIVER */
