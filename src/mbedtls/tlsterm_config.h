/* SPDX-License-Identifier: BSD-2-Clause */
/* tlsterm_config.h - tlsterm's changes to mbedTLS 3.6's default
 * configuration, for the tuned build made by src/mbedtls/build.sh.
 *
 * A user configuration, not a full one: it is read after mbedTLS's own
 * include/mbedtls/mbedtls_config.h (build.sh appends
 * `#include "tlsterm_config.h"` to that file in the source tree it builds,
 * and installs both), so it holds only what tlsterm changes, each with
 * why and what it was measured to do.  A full MBEDTLS_CONFIG_FILE would
 * repeat the ~4,400 lines of upstream defaults, and silently keep old
 * ones when a 3.6.x release changes a default for a security reason.
 *
 * Why appended to the installed mbedtls_config.h instead of passed as
 * -DMBEDTLS_USER_CONFIG_FILE: the options change struct layouts (the
 * ECDH context with Everest, mutexes in the session cache and RNG with
 * threading), so every file compiled against these headers must see
 * exactly the configuration the libraries were built with.  With the
 * include inside the installed mbedtls_config.h, DIR/include describes
 * DIR/lib by itself: tlsterm, tests/bench/crypto_floor.c or any other
 * program needs no extra -D, and cannot pick up a newer copy of this file
 * than the one the libraries were built with.
 *
 * Figures: callgrind instructions (valgrind 3.19; Debian 12, gcc 12, -O2;
 * mbedTLS 3.6.6), this build against the same build without the option.
 * "ECDHE" is the server's share of one exchange: a fresh key pair, its
 * public value, the shared secret; through the ECDH API as TLS 1.2 calls
 * it, and through PSA (psa_generate_key, psa_export_public_key,
 * psa_raw_key_agreement) as TLS 1.3 calls it.  "Handshake" is tlsterm's
 * whole process per full handshake (1 worker, ECDSA P-256 certificate,
 * openssl s_client -groups X25519:P-256, difference between 12 and 2
 * handshakes, divided by 10).
 *
 * Left at their defaults here on purpose (the figures: issue 15):
 *   MBEDTLS_PSA_P256M_DRIVER_ENABLED  p256-m is a code-size driver: P-256
 *                                     about 7x slower than the default ECP.
 *   MBEDTLS_USE_PSA_CRYPTO            RSA-2048 signatures +60% (32.0 M ->
 *                                     51 M): the PK layer goes through
 *                                     PSA's key slots.  TLS 1.3 does not
 *                                     need it: it needs MBEDTLS_PSA_CRYPTO_C
 *                                     (on by default; check_config.h), and
 *                                     this build speaks TLS 1.3 without it,
 *                                     as Debian's package does.
 *   MBEDTLS_ECP_WINDOW_SIZE, MBEDTLS_MPI_WINDOW_SIZE, MBEDTLS_ECP_FIXED_POINT_OPTIM,
 *   MBEDTLS_GCM_LARGE_TABLE           no measurable gain.
 *   MBEDTLS_SSL_EARLY_DATA            off, as in Debian's package, so that
 *                                     the three builds behave alike; on, 3.6
 *                                     would skip a client's rejected 0-RTT
 *                                     records as RFC 8446 4.2.10 asks
 *                                     (test_tls13_early_data's xfail).
 *                                     Not a speed option.
 *   DTLS, PSK, DHE, other curves...   compiled in but never configured by
 *                                     tlsterm: only code size, no speed.
 *   MBEDTLS_SSL_IN_CONTENT_LEN, MBEDTLS_SSL_OUT_CONTENT_LEN,
 *   MBEDTLS_PLATFORM_MEMORY, a PSA driver for X25519
 *                                     measured separately (issue 15);
 *                                     added here from those results. */
#ifndef TLSTERM_MBEDTLS_CONFIG_H
#define TLSTERM_MBEDTLS_CONFIG_H

/* Names this configuration, for tlsterm -V (src/tls.c) and anyone reading
 * DIR/include.  The number goes up whenever an option below changes. */
#define TLSTERM_MBEDTLS_TUNED 1

/* Required, not a tuning: workers share the session cache and a worker's
 * two threads share its RNG, relying on mbedTLS's own locks
 * (src/tls_compat.h refuses a build without them).  Off in upstream's
 * default; Debian's package turns both on too. */
#define MBEDTLS_THREADING_C
#define MBEDTLS_THREADING_PTHREAD

/* X25519 through Everest (HACL*, formally verified, 64-bit code) instead
 * of the generic ECP Montgomery ladder.  Debian's package leaves it out
 * (its patch cmake-disable-3rdparty drops 3rdparty/ from the build).
 * Measured:
 *   ECDHE X25519, TLS 1.2 path    15.77 M -> 2.15 M  (7.3x fewer)
 *   ECDHE X25519, TLS 1.3 (PSA)   15.91 M -> 8.88 M  (PSA generates the key
 *                                 with the generic ECP code; only the shared
 *                                 secret goes through Everest)
 *   tlsterm, TLS 1.2 handshake    19.93 M -> 6.82 M  (-66%)
 *   tlsterm, TLS 1.3 handshake    20.13 M -> 13.39 M (-33%)
 *   P-256 ECDHE                   11.7 M either way (ECDSA, RSA and the
 *                                 ciphers are the same code with or without)
 * libeverest.a must be linked after libmbedcrypto.a. */
#define MBEDTLS_ECDH_VARIANT_EVEREST_ENABLED

#endif
