#!/bin/sh
# The whole test suite, as CI runs it: install what is missing, then
#   1. a normal gcc build: make distcheck (build, make check, install and
#      uninstall from the release tarball);
#   2. a clang build with -Werror (compile only: proves both compilers);
#   3. an AddressSanitizer + UndefinedBehaviorSanitizer build: make check.
# Each build lives in its own directory under build/.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
sh .ci/deps
./autogen.sh >/dev/null 2>&1 || ./autogen.sh
jobs=$(nproc 2>/dev/null || echo 2)
status=0

show_logs() {
    # pytest's and cmocka's closing lines, so the summary is in the output
    find "$1" -name '*.log' -path '*tests*' ! -name 'test-suite.log' | sort |
        while read -r f; do echo "== $f"; tail -n 15 "$f"; done
}

step() {
    echo "===== $*"
}

step "1/3 gcc: make distcheck"
rm -rf build/gcc && mkdir -p build/gcc && cd build/gcc
"$top/configure" -q CC=gcc
make -s -j"$jobs"
if ! make -s distcheck DISTCHECK_CONFIGURE_FLAGS="CC=gcc"; then status=1; fi
show_logs . || true
cd "$top"

step "2/3 clang: build with -Werror"
rm -rf build/clang && mkdir -p build/clang && cd build/clang
"$top/configure" -q CC=clang
if ! make -s -j"$jobs" all; then status=1; fi
make -s -j"$jobs" tests/unit/test_config tests/unit/test_parse || status=1
cd "$top"

step "3/3 gcc + ASan + UBSan: make check"
rm -rf build/asan && mkdir -p build/asan && cd build/asan
"$top/configure" -q CC=gcc --enable-sanitizers
make -s -j"$jobs"
if ! ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
     make -s check; then status=1; fi
show_logs . || true
cd "$top"

if [ "$status" -eq 0 ]; then echo "run-all: all builds and tests passed"; else echo "run-all: FAILED"; fi
exit "$status"
