#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# The whole test suite, as CI runs it: install what is missing, then
#   1. a normal gcc build: make distcheck (build, make check, install and
#      uninstall from the release tarball);
#   2. a clang build with -Werror and without libsystemd (proves both
#      compilers; runs the systemd protocol tests against that build);
#   3. an AddressSanitizer + UndefinedBehaviorSanitizer build: make check;
#   4. the README's two commands, then this whole suite (steps 1-3), on
#      Debian 13 in a debootstrap root (tests/debian13.sh). That inner run
#      sets TLSTERM_CI_INNER=1, so it does not start another Debian 13 pass;
#   5. the Debian package: built on this host and in that Debian 13 root,
#      lintian, installed on a clean Debian 13 root and serving a TLS
#      request there (tests/debian-package.sh; also only from the outer run).
#   6. tlsterm on mbedTLS 3.6 built with tlsterm's own configuration
#      (src/mbedtls/build.sh from Debian 13's source package, cached by the
#      hash of source and configuration: tests/tuned.sh), gcc: make check,
#      all of it, TLS 1.3 included (also only from the outer run).
#   7. every fuzz target under libFuzzer + ASan + UBSan for FUZZ_SECONDS
#      each, 30 s by default (tests/fuzz/libfuzzer.sh; also only from the
#      outer run).
# Each build lives in its own directory under build/.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
sh .ci/deps
# The README's first command configures in place; VPATH builds under build/
# refuse a configured source tree, so the README's two commands in a row
# need it cleaned first.
if [ -f config.status ]; then
    echo "run-all: this checkout is configured in place (./configure); make distclean first"
    make -s distclean >/dev/null
fi
./autogen.sh >/dev/null 2>&1 || ./autogen.sh
jobs=$(nproc 2>/dev/null || echo 2)
status=0

show_logs() {
    # pytest's and cmocka's closing lines, so the summary is in the output
    find "$1" -name '*.log' -path '*tests*' ! -name 'test-suite.log' | sort |
        while read -r f; do echo "== $f"; tail -n 15 "$f"; done
}

# Adds up the individual tests of one build (cmocka and pytest logs).
count_tests() {
    find "$1" -name '*.log' -path '*tests*' ! -name 'test-suite.log' -exec cat {} + |
        awk '/^\[  PASSED  \] [0-9]+ test/ { print "pass", $4 }
             /^\[  FAILED  \] [0-9]+ test/ { print "fail", $4 }
             / in [0-9.]+s/ && /(passed|failed|error)/ {
                 for (i = 1; i < NF; i++) {
                     w = $(i + 1); gsub(/[^a-z]/, "", w)
                     if ($i ~ /^[0-9]+$/ && w == "passed") print "pass", $i
                     if ($i ~ /^[0-9]+$/ && w == "failed") print "fail", $i
                     # a pytest error (in a fixture, a timeout) is a failed test too
                     if ($i ~ /^[0-9]+$/ && (w == "error" || w == "errors")) print "fail", $i
                 }
             }' >>"$top/build/counts"
}

# Debian 13 and the package (steps 4, 5) only from the outermost run
if [ -n "${TLSTERM_CI_INNER:-}" ]; then steps=3; else steps=7; fi
step() {
    echo "===== $*"
}

rm -rf build && mkdir -p build && : >build/counts

step "1/$steps gcc: make check, then make distcheck"
mkdir -p build/gcc && cd build/gcc
"$top/configure" -q CC=gcc
make -s -j"$jobs"
# the 60-second soak (tests/bench/soak.py) runs in this build only
if ! TLSTERM_SOAK=${TLSTERM_SOAK:-60} make -s check; then status=1; fi
show_logs . || true
count_tests .
if ! make -s distcheck DISTCHECK_CONFIGURE_FLAGS="CC=gcc"; then status=1; fi
cd "$top"

step "2/$steps clang, without libsystemd: build with -Werror, systemd protocol tests"
mkdir -p build/clang && cd build/clang
"$top/configure" -q CC=clang --without-systemd
if ! make -s -j"$jobs" all; then status=1; fi
# every unit test and fuzz target compiles with clang too (built, not run)
make -s -j"$jobs" check TESTS= || status=1
# the notify / socket-activation wire protocol spoken without libsystemd
if ! TLSTERM_BIN="$PWD/src/tlsterm" TLSTERM_SRCDIR="$top" PYTEST_ARGS="-k test_systemd" \
     sh "$top/tests/integration/run-pytest.sh" >systemd-tests.log 2>&1; then status=1; fi
tail -n 3 systemd-tests.log
count_tests .
cd "$top"

step "3/$steps gcc + ASan + UBSan: make check"
mkdir -p build/asan && cd build/asan
"$top/configure" -q CC=gcc --enable-sanitizers
make -s -j"$jobs"
if ! ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
     make -s check; then status=1; fi
show_logs . || true
count_tests .
cd "$top"

if [ "$steps" -ge 4 ]; then
    start=$(date +%s)
    # it adds the inner run-all's own tally of its builds to ours
    if ! TLSTERM_DEBIAN13_COUNTS="$top/build/counts" \
         sh "$top/tests/debian13.sh" "4/$steps"; then status=1; fi
    echo "run-all: Debian 13 pass took $(($(date +%s) - start)) s"
fi

if [ "$steps" -ge 5 ]; then
    start=$(date +%s)
    # it adds one pass or fail per check (build, lintian, install, request)
    if ! TLSTERM_COUNTS="$top/build/counts" \
         sh "$top/tests/debian-package.sh" "5/$steps"; then status=1; fi
    echo "run-all: Debian package step took $(($(date +%s) - start)) s"
fi

if [ "$steps" -ge 6 ]; then
    step "6/$steps gcc on the tuned mbedTLS 3.6 (src/mbedtls/build.sh): make check"
    start=$(date +%s)
    if tuned=$(sh "$top/tests/tuned.sh"); then
        echo "run-all: tuned mbedTLS: $tuned (ready after $(($(date +%s) - start)) s)"
        mkdir -p build/tuned && cd build/tuned
        if "$top/configure" -q CC=gcc --with-mbedtls="$tuned" && make -s -j"$jobs"; then
            ./src/tlsterm -V | sed -n 's/^mbedTLS /run-all: tuned build: /p'
            if ! make -s check; then status=1; fi
            show_logs . || true
            count_tests .
        else
            status=1
        fi
        cd "$top"
    else
        status=1
    fi
    echo "run-all: tuned mbedTLS step took $(($(date +%s) - start)) s"
fi

if [ "$steps" -ge 7 ]; then
    step "7/$steps libFuzzer + ASan + UBSan: every fuzz target for ${FUZZ_SECONDS:-30} s"
    start=$(date +%s)
    # one pass or fail per target, as the fuzz lines say
    if FUZZ_SECONDS=${FUZZ_SECONDS:-30} sh "$top/tests/fuzz/libfuzzer.sh" build/fuzz \
            >build/fuzz.out 2>&1; then :; else status=1; fi
    grep '^fuzz ' build/fuzz.out || tail -20 build/fuzz.out
    awk '/^fuzz .*: ok$/ { print "pass", 1 } /^fuzz .*FINDING/ { print "fail", 1 }' \
        build/fuzz.out >>build/counts
    echo "run-all: libFuzzer step took $(($(date +%s) - start)) s"
fi

passed=$(awk '$1 == "pass" { n += $2 } END { print n + 0 }' build/counts)
failed=$(awk '$1 == "fail" { n += $2 } END { print n + 0 }' build/counts)
[ "$status" -ne 0 ] && [ "$failed" -eq 0 ] && failed=1   # a build or harness failure
if [ "$status" -eq 0 ]; then echo "run-all: all builds and tests passed"; else echo "run-all: FAILED"; fi
echo "tests: $passed passed, $failed failed"
exit "$status"
