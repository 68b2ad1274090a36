#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Builds every fuzz target with clang's libFuzzer under ASan + UBSan and
# runs each for FUZZ_SECONDS (default 30) on a copy of its corpus
# (tests/fuzz/corpus/<name>/); reports executions per second and coverage
# per target, and fails on any finding, keeping the input that caused it
# in OUT/<name>-crash-* (add it to the corpus as a regression input once
# fixed: make check then runs it every time).
#   tests/fuzz/libfuzzer.sh OUT [TARGET...]
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:?usage: libfuzzer.sh OUTDIR [TARGET...]}
shift
secs=${FUZZ_SECONDS:-30}
mkdir -p "$out"
out=$(cd "$out" && pwd)         # the runs cd into it: a relative OUT breaks
cc="clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -DFUZZ_LIBFUZZER -I$out/cfg -I$top/src -I$top/tests/fuzz"
# autoconf.h: configure's own (without libsystemd, so nothing more to link)
if [ ! -f "$out/cfg/autoconf.h" ]; then
    mkdir -p "$out/cfg"
    (cd "$out/cfg" && "$top/configure" -q CC=clang --without-systemd >/dev/null)
fi

sources() {
    case $1 in
        redirect) echo "src/http_redirect.c -lhttp_parser" ;;
        proxy) echo "src/proxy_proto.c" ;;
        sni) echo "src/tls_sni.c" ;;
        config) echo "src/config.c src/config_core.c src/config_admin.c src/config_backend.c src/config_limits.c \
            src/config_listener.c src/config_merge.c src/config_parse.c src/files.c src/log.c \
            src/tls_names.c -lyaml -lmbedtls -lmbedcrypto" ;;
        ticket) echo "src/tls_ticket.c src/config.c src/config_core.c src/config_admin.c src/config_backend.c \
            src/config_limits.c src/config_listener.c src/config_merge.c src/config_parse.c \
            src/files.c src/log.c src/tls_names.c -lyaml -lmbedtls -lmbedx509 -lmbedcrypto" ;;
        http_fwd) echo "src/http_fwd.c -lhttp_parser" ;;
        tls_hello) echo "src/tls_hello.c" ;;
        # the whole daemon but main(): gen_load(), the TLS contexts and callbacks
        tls_server) echo "$(cd "$top" && ls src/*.c | grep -v -e src/main.c -e src/alloc.c) \
            -levent -levent_pthreads -lyaml -lhttp_parser -lmbedtls -lmbedx509 -lmbedcrypto \
            -lpthread" ;;
        *) return 1 ;;
    esac
}

targets=${*:-"redirect proxy sni config ticket tls_server http_fwd tls_hello"}
status=0
for t in $targets; do
    src=$(sources "$t")
    (cd "$top" && $cc "tests/fuzz/fuzz_$t.c" $src -o "$out/fuzz_$t") || { status=1; continue; }
    rm -rf "$out/corpus-$t" && mkdir -p "$out/corpus-$t"
    if [ -d "$top/tests/fuzz/corpus/$t" ]; then cp "$top/tests/fuzz/corpus/$t/"* "$out/corpus-$t/"; fi
    log="$out/fuzz_$t.log"
    if (cd "$out" && "./fuzz_$t" -max_total_time="$secs" -print_final_stats=1 \
            -artifact_prefix="$out/$t-" "corpus-$t" >"$log" 2>&1); then
        result=ok
    else
        result="FINDING (input kept as $out/$t-crash-*; see $log)"
        status=1
    fi
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    echo "fuzz $t: ${secs}s, ${runs:-?} runs, ${eps:-?} exec/s, ${cov:-cov: ?}: $result"
done
exit $status
