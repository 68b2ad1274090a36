#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Benchmarks: tlsterm side by side with hitch and HAProxy in front of nginx,
# and what tlsterm's metrics counters cost (--metrics-cost).
#
#   tests/bench/run.sh [--quick]
#       tlsterm on three mbedTLS builds (Debian 12's 2.28, Debian 13's 3.6 in
#       the Debian 13 root, the tuned 3.6 of src/mbedtls/) against hitch and
#       HAProxy, TLS 1.2 and 1.3, in one run (tests/bench/three_builds.py):
#       regenerates the section "Three mbedTLS builds side by side" of
#       docs/performance.md, docs/perf-*.svg and
#       tests/bench/results/three-builds.tsv.  About 12 minutes, --quick 3.
#   tests/bench/run.sh --single [--quick] [--tls 1.2|1.3] [TLSTERM_BIN]
#       one tlsterm binary, one TLS version (tests/bench/bench.py): writes the
#       whole of docs/performance.md and results/latest.tsv (TLS 1.2), or
#       docs/performance-tls13.md and results/latest-tls13.tsv (--tls 1.3).
#       `--tls` or a TLSTERM_BIN without --single selects this mode too.
#   tests/bench/run.sh --metrics-cost [--quick] BASELINE_BIN [AFTER_BIN]
#       what the per-worker metrics counters (issue 16) cost the hot path
#       (tests/bench/metrics_cost.py): proxy CPU per full TLS 1.2 handshake
#       and per keep-alive request, interleaved rounds, for BASELINE_BIN
#       (built without the counters), AFTER_BIN (default: this checkout,
#       built) and AFTER_BIN with a scraped admin listener; then the same
#       operations' instruction counts under callgrind.  Writes
#       tests/bench/results/metrics-cost.md.  About 7 minutes, --quick 2.
# See docs/performance.md for the method (--metrics-cost: the method is in
# its output, tests/bench/results/metrics-cost.md).  Loopback only; run as root.
here=$(cd "$(dirname "$0")" && pwd)
ulimit -n 400000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
for a in "$@"; do
    # metrics_cost.py takes (and ignores) --metrics-cost wherever it is
    [ "$a" = --metrics-cost ] && exec python3 "$here/metrics_cost.py" "$@"
done
single=
for a in "$@"; do
    case $a in
        --single | --tls | --tls=*) single=1 ;;
        --quick | --no-docs) ;;
        *) single=1 ;;
    esac
done
if [ -n "$single" ]; then
    [ "${1:-}" = --single ] && shift
    exec python3 "$here/bench.py" "$@"
fi
exec python3 "$here/three_builds.py" "$@"
