/* SPDX-License-Identifier: BSD-2-Clause */
/* hash.h - the 64-bit finaliser (MurmurHash3's fmix64) that the pool's
 * rendezvous hashing and the per-address table both mix their keys with. */
#ifndef TLSTERM_HASH_H
#define TLSTERM_HASH_H

#include <stdint.h>

static inline uint64_t
mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    return x ^ (x >> 33);
}

#endif
