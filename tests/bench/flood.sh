#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Handshake flood vs established connections (issue 13): tlsterm, hitch and
# HAProxy, one worker each on one CPU, in front of nginx.
# usage: tests/bench/flood.sh [--quick] [--runs N] [--baseline OTHER_TLSTERM_BIN] [TLSTERM_BIN]
# Writes docs/performance-flood.md and tests/bench/results/flood.tsv.
# Loopback only; run as root.
here=$(cd "$(dirname "$0")" && pwd)
ulimit -n 400000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
exec python3 "$here/flood.py" "$@"
