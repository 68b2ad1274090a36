/* SPDX-License-Identifier: BSD-2-Clause */
/* alloc.c - calloc() for the whole process, in terms of malloc().
 *
 * mbedTLS's bignum code allocates with calloc() a few thousand times per
 * full handshake (every mbedtls_mpi_grow()).  glibc 2.36's calloc() skips
 * the per-thread cache that malloc() uses and takes the arena lock each
 * time, which in our threaded workers cost ~6% of a full ECDSA handshake
 * (tests/bench: ~1,800 -> ~1,700 us/conn).  Debian's mbedTLS is built
 * without MBEDTLS_PLATFORM_MEMORY, so the allocator cannot be handed to it;
 * defining calloc here, in the executable, is what the dynamic linker binds
 * its calls to.  Memory still comes from and goes back to glibc's
 * malloc/free, so nothing else changes.
 *
 * Sanitizer builds keep the runtime's own calloc (it must see every
 * allocation the way it expects). */
#include "autoconf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TLSTERM_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define TLSTERM_ASAN 1
#endif

#ifndef TLSTERM_ASAN
/* Built with -fno-builtin (Makefile.am), or gcc turns the body back into a
 * call to calloc(). */
void *
calloc(size_t n, size_t size)
{
    size_t total;
    void *p;

    if (__builtin_mul_overflow(n, size, &total))
        return NULL;
    p = malloc(total);
    if (p != NULL)
        memset(p, 0, total);
    return p;
}
#endif
