#!/bin/sh
# Side-by-side benchmark of tlsterm, hitch and HAProxy in front of nginx.
# usage: tests/bench/run.sh [--quick] [TLSTERM_BIN]
# Writes docs/performance.md and tests/bench/results/latest.tsv.  See
# docs/performance.md for the method.  Loopback only; run as root.
here=$(cd "$(dirname "$0")" && pwd)
ulimit -n 400000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
exec python3 "$here/bench.py" "$@"
