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
 *   MBEDTLS_SSL_IN_CONTENT_LEN,       see MBEDTLS_SSL_OUT_CONTENT_LEN below;
 *   MBEDTLS_SSL_VARIABLE_BUFFER_LENGTH
 *   MBEDTLS_PLATFORM_MEMORY           see the end of this file.
 * The driver, OUT_CONTENT_LEN and allocator figures are from
 * tests/bench/results/mbedtls-switches.md (methods and programs there). */
#ifndef TLSTERM_MBEDTLS_CONFIG_H
#define TLSTERM_MBEDTLS_CONFIG_H

/* Names this configuration, for tlsterm -V (src/tls.c) and anyone reading
 * DIR/include.  The number goes up whenever an option below changes. */
#define TLSTERM_MBEDTLS_TUNED 2

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
 * (TLSTERM_PSA_EVEREST_DRIVER below brings the TLS 1.3 path to Everest
 * speed as well.)  libeverest.a must be linked after libmbedcrypto.a. */
#define MBEDTLS_ECDH_VARIANT_EVEREST_ENABLED

/* X25519 for TLS 1.3 on Everest too.  TLS 1.3 reaches X25519 through PSA
 * (psa_generate_key, psa_export_public_key, psa_raw_key_agreement), whose
 * built-in Curve25519 computes the public key with the generic ECP code;
 * this turns on tlsterm's PSA transparent driver (src/mbedtls/
 * everest_driver/, hooked into the generated driver wrappers by build.sh's
 * patch), which serves those three for Curve25519 key pairs with Everest
 * and leaves every other key to PSA's built-in code.  Needs
 * MBEDTLS_ECDH_VARIANT_EVEREST_ENABLED.  Measured (callgrind, 3.6.6, this
 * library as build.sh makes it): the server's TLS 1.3 full handshake
 * (ECDSA P-256, X25519) 13.66 M -> 6.94 M instructions (-49%); PSA X25519
 * key pair + public key + shared secret 8.60 M -> 2.15 M, 3,146 -> 5
 * allocations; TLS 1.2 unchanged (6.81 M: it used Everest already). */
#define TLSTERM_PSA_EVEREST_DRIVER

/* Records tlsterm sends carry at most 8 KiB of plaintext, so the output
 * buffer of every connection is 8 KiB smaller.  The input buffer stays at
 * 16 KiB (MBEDTLS_SSL_IN_CONTENT_LEN left alone): clients may send full
 * records.  Measured: tlsterm's RSS per idle TLS connection at 2,000 of
 * them 38.4 -> 30.1 KB (TLS 1.2) and 45.4 -> 37.2 KB (TLS 1.3); bulk
 * sending +0.4-0.8% instructions per MiB and about +2% kernel CPU (one
 * send() per record: twice the calls).
 * Limit: mbedTLS writes each handshake message in one record, so the
 * server's Certificate message (the chain's DER, 3 bytes per certificate,
 * 5 in TLS 1.3, and 7-8 bytes of headers) must fit in 8,192 bytes, or
 * every handshake fails with MBEDTLS_ERR_SSL_BUFFER_TOO_SMALL (-0x6a00);
 * src/tls_cert.c refuses such a chain when the configuration is loaded.
 * 4096 would save 4 KB more but a 4.4 KB chain (RSA-4096 intermediate,
 * many SANs) then fails every handshake, and bulk costs ~10% more CPU.
 * Not MBEDTLS_SSL_VARIABLE_BUFFER_LENGTH: it shrinks nothing unless
 * max_fragment_length is negotiated (browsers never ask), and with OUT <
 * IN it shrinks the input buffer to OUT after a TLS 1.2 handshake, so a
 * client's full 16 KiB record (any upload) then ends the connection
 * (measured: -0x7100).  tests/bench/results/mbedtls-switches.md, part 3. */
#define MBEDTLS_SSL_OUT_CONTENT_LEN 8192

/* Not MBEDTLS_PLATFORM_MEMORY: a per-thread pool allocator behind it saves
 * 0.9% (TLS 1.2) / 1.3% (TLS 1.3) of a full handshake's instructions with
 * the options above: 510 / 823 allocations per handshake are left, and
 * glibc's tcache serves them cheaply (mbedtls-switches.md, part 2). */

#endif
