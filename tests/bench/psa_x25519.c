/* SPDX-License-Identifier: BSD-2-Clause */
/* psa_x25519.c - the server's X25519 work of one TLS 1.3 handshake through
 * PSA (psa_generate_key + psa_export_public_key + psa_raw_key_agreement +
 * psa_destroy_key, exactly the calls ssl_tls13_generic.c / ssl_tls13_keys.c
 * make), N times, for callgrind instruction counts.  Also counts
 * mbedtls_calloc calls (needs MBEDTLS_PLATFORM_MEMORY).
 *
 * usage: valgrind --tool=callgrind --toggle-collect=ops psa_x25519 [N]
 *   build: cc -O2 -DMBEDTLS_USER_CONFIG_FILE='"cfg.h"' -I DIR/include psa_x25519.c \
 *          DIR/lib/libmbedcrypto.a DIR/lib/libeverest.a DIR/lib/libp256m.a
 * (-DMBEDTLS_USER_CONFIG_FILE only for a DIR whose headers do not carry the
 * configuration; DIR from src/mbedtls/build.sh needs none.) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <psa/crypto.h>
#include <mbedtls/platform.h>

static unsigned long n_calloc, n_free;

static void *
count_calloc(size_t n, size_t s)
{
    n_calloc++;
    return calloc(n, s);
}

static void
count_free(void *p)
{
    if (p != NULL)
        n_free++;
    free(p);
}

static psa_key_attributes_t
x25519_attrs(void)
{
    psa_key_attributes_t a = PSA_KEY_ATTRIBUTES_INIT;

    psa_set_key_type(&a, PSA_KEY_TYPE_ECC_KEY_PAIR(PSA_ECC_FAMILY_MONTGOMERY));
    psa_set_key_bits(&a, 255);
    psa_set_key_usage_flags(&a, PSA_KEY_USAGE_DERIVE);
    psa_set_key_algorithm(&a, PSA_ALG_ECDH);
    return a;
}

/* One server-side X25519 exchange; returns the shared secret's first byte
 * or -1. */
static int
one(const unsigned char *peer, unsigned char *pub_out, unsigned char *sec_out)
{
    psa_key_attributes_t a = x25519_attrs();
    psa_key_id_t k;
    unsigned char pub[32], sec[32];
    size_t len;

    if (psa_generate_key(&a, &k) != PSA_SUCCESS)
        return -1;
    if (psa_export_public_key(k, pub, sizeof(pub), &len) != PSA_SUCCESS || len != 32)
        return -1;
    if (peer != NULL &&
        (psa_raw_key_agreement(PSA_ALG_ECDH, k, peer, 32, sec, sizeof(sec), &len) != PSA_SUCCESS ||
         len != 32))
        return -1;
    psa_destroy_key(k);
    if (pub_out != NULL)
        memcpy(pub_out, pub, 32);
    if (sec_out != NULL && peer != NULL)
        memcpy(sec_out, sec, 32);
    return 0;
}

static void
unhex(const char *h, unsigned char *out)
{
    for (int i = 0; i < 32; i++)
        sscanf(h + 2 * i, "%2hhx", &out[i]);
}

/* RFC 7748 section 6.1: Alice's key imported, her public key exported, the
 * shared secret with Bob's public key. */
static int
rfc7748(void)
{
    unsigned char priv[32], pub[32], bob[32], want[32], got[32];
    psa_key_attributes_t a = x25519_attrs();
    psa_key_id_t k;
    size_t len;
    int ok;

    unhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a", priv);
    unhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a", want);
    unhex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f", bob);
    if (psa_import_key(&a, priv, 32, &k) != PSA_SUCCESS)
        return -1;
    ok = psa_export_public_key(k, pub, 32, &len) == PSA_SUCCESS && len == 32 &&
         memcmp(pub, want, 32) == 0;
    unhex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742", want);
    ok = ok && psa_raw_key_agreement(PSA_ALG_ECDH, k, bob, 32, got, 32, &len) == PSA_SUCCESS &&
         len == 32 && memcmp(got, want, 32) == 0;
    /* An all-zero (small-order) peer point must be refused. */
    memset(bob, 0, 32);
    ok = ok && psa_raw_key_agreement(PSA_ALG_ECDH, k, bob, 32, got, 32, &len) != PSA_SUCCESS;
    psa_destroy_key(k);
    return ok ? 0 : -1;
}

__attribute__((noinline)) static int
ops(int n, const unsigned char *peer)
{
    int i;

    for (i = 0; i < n; i++)
        if (one(peer, NULL, NULL) != 0)
            return -1;
    return 0;
}

int
main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 10;
    unsigned char peer[32], pub[32], s1[32], s2[32];
    psa_key_attributes_t a = x25519_attrs();
    psa_key_id_t k;
    size_t len;
    unsigned long c0;

#if defined(MBEDTLS_PLATFORM_MEMORY)
    mbedtls_platform_set_calloc_free(count_calloc, count_free);
#else
    (void)count_calloc;
    (void)count_free;
    fprintf(stderr, "psa_x25519: no MBEDTLS_PLATFORM_MEMORY: calloc_per_exchange is not counted\n");
#endif
    if (psa_crypto_init() != PSA_SUCCESS)
        return 1;
    if (rfc7748() != 0) {
        fprintf(stderr, "psa_x25519: RFC 7748 test vector failed\n");
        return 1;
    }
    /* Correctness: both sides of an exchange agree (A's key through the
     * tested path, B's through an import of A's public value). */
    if (one(NULL, peer, NULL) != 0)
        return 1;
    if (psa_generate_key(&a, &k) != PSA_SUCCESS ||
        psa_export_public_key(k, pub, 32, &len) != PSA_SUCCESS)
        return 1;
    if (one(pub, peer, s1) != 0)  /* s1 = x(new) * pub(k); peer = pub(new) */
        return 1;
    if (psa_raw_key_agreement(PSA_ALG_ECDH, k, peer, 32, s2, 32, &len) != PSA_SUCCESS ||
        memcmp(s1, s2, 32) != 0) {
        fprintf(stderr, "psa_x25519: the two sides disagree\n");
        return 1;
    }
    psa_destroy_key(k);
    c0 = n_calloc;
    if (ops(n, peer) != 0) {
        fprintf(stderr, "psa_x25519: operation failed\n");
        return 1;
    }
    printf("exchanges\t%d\ncalloc_per_exchange\t%.1f\n", n, (double)(n_calloc - c0) / n);
    return 0;
}
