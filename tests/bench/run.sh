#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Side-by-side benchmark of tlsterm, hitch and HAProxy in front of nginx.
# usage: tests/bench/run.sh [--quick] [--tls 1.2|1.3] [TLSTERM_BIN]
# Writes docs/performance.md and tests/bench/results/latest.tsv (TLS 1.2, the
# default), or with --tls 1.3 docs/performance-tls13.md and
# tests/bench/results/latest-tls13.tsv (needs tlsterm built against mbedTLS
# 3.6).  See docs/performance.md for the method.  Loopback only; run as root.
here=$(cd "$(dirname "$0")" && pwd)
ulimit -n 400000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
exec python3 "$here/bench.py" "$@"
