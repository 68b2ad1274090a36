/* SPDX-License-Identifier: BSD-2-Clause */
/* crypto_floor.c - what the mbedTLS build tlsterm links against costs for
 * the primitives of one TLS 1.2 handshake and one record, in CPU time.
 * The proxy can never be cheaper than this; the benchmark compares its
 * measured CPU per handshake and per GiB with these floors.
 *
 * usage: crypto_floor [seconds-per-primitive]   (default 1)
 * output: TSV lines "primitive<TAB>unit<TAB>value" */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mbedtls/chachapoly.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecdh.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/entropy.h>
#include <mbedtls/gcm.h>
#include <mbedtls/rsa.h>
#include <mbedtls/sha256.h>

#include "tls_compat.h"

#define RECORD 16384

static mbedtls_ctr_drbg_context drbg;

static double
cpu_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef int (*op_fn)(void *arg);

/* Runs op until budget CPU seconds are spent; returns CPU seconds per op. */
static double
measure(op_fn op, void *arg, double budget)
{
    double start = cpu_now(), now = start;
    long n = 0;

    while (now - start < budget) {
        if (op(arg) != 0) {
            fprintf(stderr, "crypto_floor: operation failed\n");
            exit(1);
        }
        n++;
        if ((n & 7) == 0)
            now = cpu_now();
    }
    now = cpu_now();
    return (now - start) / (double)n;
}

static int
op_ecdsa_sign(void *arg)
{
    mbedtls_ecdsa_context *k = arg;
    unsigned char hash[32] = { 1 }, sig[MBEDTLS_ECDSA_MAX_LEN];
    size_t len;

    return tls_compat_ecdsa_sign(k, MBEDTLS_MD_SHA256, hash, sizeof(hash), sig, &len,
                                 mbedtls_ctr_drbg_random, &drbg);
}

/* The server's share of one ECDHE: a fresh key pair, its public value
 * written out, and the shared secret with a client key made beforehand. */
struct ecdhe {
    mbedtls_ecp_group_id gid;
    unsigned char peer[80];     /* the client's public value, TLS format */
    size_t peer_len;
};

static int
ecdhe_client(struct ecdhe *e)
{
    mbedtls_ecdh_context c;
    int ret;

    mbedtls_ecdh_init(&c);
    ret = mbedtls_ecdh_setup(&c, e->gid) ||
          mbedtls_ecdh_make_public(&c, &e->peer_len, e->peer, sizeof(e->peer),
                                   mbedtls_ctr_drbg_random, &drbg);
    mbedtls_ecdh_free(&c);
    return ret;
}

static int
op_ecdhe(void *arg)
{
    struct ecdhe *e = arg;
    mbedtls_ecdh_context s;
    unsigned char buf[256], sec[80];
    size_t len, slen;
    int ret;

    mbedtls_ecdh_init(&s);
    ret = mbedtls_ecdh_setup(&s, e->gid) ||
          mbedtls_ecdh_make_params(&s, &len, buf, sizeof(buf), mbedtls_ctr_drbg_random, &drbg) ||
          mbedtls_ecdh_read_public(&s, e->peer, e->peer_len) ||
          mbedtls_ecdh_calc_secret(&s, &slen, sec, sizeof(sec), mbedtls_ctr_drbg_random, &drbg);
    mbedtls_ecdh_free(&s);
    return ret;
}

static int
op_rsa_sign(void *arg)
{
    mbedtls_rsa_context *rsa = arg;
    unsigned char hash[32] = { 1 }, sig[512];

    return tls_compat_rsa_sign(rsa, mbedtls_ctr_drbg_random, &drbg, MBEDTLS_MD_SHA256, 32,
                               hash, sig);
}

struct aead {
    mbedtls_gcm_context gcm;
    mbedtls_chachapoly_context cp;
    unsigned char buf[RECORD];
};

static int
op_gcm(void *arg)
{
    struct aead *a = arg;
    unsigned char iv[12] = { 0 }, aad[13] = { 0 }, tag[16];

    return mbedtls_gcm_crypt_and_tag(&a->gcm, MBEDTLS_GCM_ENCRYPT, RECORD, iv, 12, aad, 13,
                                     a->buf, a->buf, 16, tag);
}

static int
op_chachapoly(void *arg)
{
    struct aead *a = arg;
    unsigned char iv[12] = { 0 }, aad[13] = { 0 }, tag[16];

    return mbedtls_chachapoly_encrypt_and_tag(&a->cp, RECORD, iv, aad, 13, a->buf, a->buf,
                                              tag);
}

static void
report(const char *name, double sec_per_op, int bulk)
{
    if (bulk)
        printf("%s\tcpu_s_per_GiB\t%.3f\n", name, sec_per_op * (1 << 30) / RECORD);
    else
        printf("%s\tcpu_us_per_op\t%.1f\n", name, sec_per_op * 1e6);
    fflush(stdout);
}

static void
bench_asym(double budget)
{
    mbedtls_ecdsa_context ec;
    mbedtls_rsa_context rsa;
    struct ecdhe x25519 = { .gid = MBEDTLS_ECP_DP_CURVE25519 };
    struct ecdhe p256 = { .gid = MBEDTLS_ECP_DP_SECP256R1 };

    mbedtls_ecdsa_init(&ec);
    mbedtls_ecdsa_genkey(&ec, MBEDTLS_ECP_DP_SECP256R1, mbedtls_ctr_drbg_random, &drbg);
    report("ecdsa_p256_sign", measure(op_ecdsa_sign, &ec, budget), 0);
    mbedtls_ecdsa_free(&ec);
    if (ecdhe_client(&x25519) != 0 || ecdhe_client(&p256) != 0)
        exit(1);
    report("ecdhe_x25519", measure(op_ecdhe, &x25519, budget), 0);
    report("ecdhe_secp256r1", measure(op_ecdhe, &p256, budget), 0);
    tls_compat_rsa_init(&rsa);
    mbedtls_rsa_gen_key(&rsa, mbedtls_ctr_drbg_random, &drbg, 2048, 65537);
    report("rsa2048_sign", measure(op_rsa_sign, &rsa, budget), 0);
    mbedtls_rsa_free(&rsa);
}

static void
bench_aead(double budget)
{
    static struct aead a;
    unsigned char key[32] = { 7 };

    mbedtls_gcm_init(&a.gcm);
    mbedtls_gcm_setkey(&a.gcm, MBEDTLS_CIPHER_ID_AES, key, 128);
    report("aes128_gcm_16k", measure(op_gcm, &a, budget), 1);
    mbedtls_gcm_free(&a.gcm);
    mbedtls_chachapoly_init(&a.cp);
    mbedtls_chachapoly_setkey(&a.cp, key);
    report("chacha20_poly1305_16k", measure(op_chachapoly, &a, budget), 1);
    mbedtls_chachapoly_free(&a.cp);
}

int
main(int argc, char **argv)
{
    mbedtls_entropy_context entropy;
    double budget = argc > 1 ? atof(argv[1]) : 1.0;

    mbedtls_entropy_init(&entropy);
    mbedtls_ctr_drbg_init(&drbg);
    if (mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy, NULL, 0) != 0)
        return 1;
    bench_asym(budget);
    bench_aead(budget);
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_entropy_free(&entropy);
    return 0;
}
