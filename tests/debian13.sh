#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# The README's two quick-start commands, unchanged, on Debian 13 (trixie)
# with its own packages (mbedTLS 3.6, its OpenSSL, curl, GnuTLS, Python,
# nginx, testssl.sh), in a debootstrap root:
#   1. sh .ci/deps && ./autogen.sh && ./configure && make -j2 && make demo
#      (in the background until https://localhost:8443/ answers, then stopped)
#   2. sh .ci/run   (only the native builds: TLSTERM_CI_INNER=1)
# in the same copy of the checkout, one after the other, as a person would.
# Step 4 of tests/run-all.sh; on its own: `sh tests/debian13.sh` as root.
# run-all sets TLSTERM_DEBIAN13_COUNTS: the inner suite's pass/fail tally
# is appended to that file.
#
# The root is cached in $TLSTERM_DEBIAN13_ROOT and made with debootstrap when
# missing; apt lists are refreshed and .ci/deps installs packages each run.
# The checkout is copied in afresh (never bind-mounted: the build in the
# root must not touch this tree). Everything in the root runs in private
# mount and PID namespaces, so its mounts and processes end with it
# whatever happens, and the README commands run in a network namespace of
# their own (loopback only), so the demo's fixed ports 8443 and 8080 never
# meet anything on the host.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
root=${TLSTERM_DEBIAN13_ROOT:-/var/cache/tlsterm-ci/debian13}
copy=/root/tlsterm               # the checkout's copy, inside the root
cmd1='sh .ci/deps && ./autogen.sh && ./configure && make -j2 && make demo'
cmd2='sh .ci/run'

say() { echo "debian13: $*"; }
die() { echo "debian13: $*" >&2; exit 1; }
now() { date +%s; }

# ---- inside the root (run by the outer part, in the network namespace) ----

# Polls until the demo page is served over TLS, or the command died or the
# deadline passed (the first build in a fresh root takes a few minutes).
wait_for_demo() {
    deadline=$(($(now) + 900))
    while [ "$(now)" -lt "$deadline" ]; do
        if curl -ksf --max-time 5 https://localhost:8443/ 2>/dev/null |
                grep -q 'tlsterm demo'; then
            return 0
        fi
        kill -0 "$1" 2>/dev/null || return 1
        sleep 1
    done
    return 1
}

# Ends the process group that runs command 1 (make, demo.sh, its backend,
# tlsterm): TERM first, as Ctrl-C would, KILL if it is still there in 30 s.
stop_group() {
    # (no `--` before the negative PID: dash's kill takes it for a PID)
    kill -TERM "-$1" 2>/dev/null || true
    deadline=$(($(now) + 30))
    while kill -0 "-$1" 2>/dev/null && [ "$(now)" -lt "$deadline" ]; do
        sleep 0.2
    done
    kill -KILL "-$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

readme_command_1() {
    say "command 1: $cmd1"
    start=$(now)
    # setsid: its own process group, so stop_group ends everything it started
    setsid sh -c "$cmd1" >/tmp/command1.log 2>&1 &
    pid=$!
    if ! wait_for_demo "$pid"; then
        tail -n 60 /tmp/command1.log
        stop_group "$pid"
        die "command 1: https://localhost:8443/ never answered"
    fi
    say "command 1: https://localhost:8443/ answered after $(($(now) - start)) s:"
    curl -ksS https://localhost:8443/
    # curl -w has no TLS version; s_client -brief prints what was negotiated
    openssl s_client -brief -connect localhost:8443 </dev/null 2>&1 |
        grep -E 'Protocol version|Ciphersuite' | sed 's/^/debian13: command 1: /'
    stop_group "$pid"
    grep '^demo:' /tmp/command1.log | sed 's/^/debian13: command 1: /'
    say "command 1: stopped; tlsterm -V: $(./src/tlsterm -V 2>&1 | tr '\n' ' ')"
}

# The suite has IPv6 tests, which skip themselves when ::1 cannot be bound.
check_ipv6() {
    if python3 -c 'import socket; socket.socket(socket.AF_INET6).bind(("::1", 0))' 2>/dev/null
    then say "IPv6 loopback ::1 works in the network namespace"
    else say "WARNING: ::1 cannot be bound here; the IPv6 tests will skip"
    fi
}

inside() {
    cd "$copy"
    check_ipv6
    readme_command_1
    say "command 2: $cmd2"
    start=$(now)
    rc=0
    TLSTERM_CI_INNER=1 sh -c "$cmd2" || rc=$?
    say "command 2: exit $rc after $(($(now) - start)) s"
    return "$rc"
}

# ---- outside: the root, its namespaces, the copy ------------------------

# The first URIs of the host's apt entries for suite $1 (deb822 .sources
# first, then one-line sources.list), so the root uses the same mirror.
host_mirror() {
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk -v s="$1" '
            function flush() { if (ok && uri ~ /^https?:/) { print uri; exit } ok = 0; uri = "" }
            /^[ \t]*#/ { next }
            /^[ \t]*$/ { flush(); next }
            tolower($1) == "uris:" { uri = $2 }
            tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == s) ok = 1 }
            END { flush() }' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        awk -v s="$1" '$1 == "deb" {
                i = 2
                if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                if ($(i + 1) == s && $i ~ /^https?:/) print $i
            }' "$f"
    done
}

mirror_for() {
    m=$(host_mirror "$1" | head -n 1)
    echo "${m:-$2}"
}

# Fails when anything is still mounted under the root, or a process still
# runs in it: the namespaces should make both impossible.
check_leftovers() {
    left=$(awk -v r="$root" '$2 == r || index($2, r "/") == 1 { print $2 }' /proc/self/mounts)
    [ -z "$left" ] || die "still mounted under $root: $left"
    left=
    for p in /proc/[0-9]*; do
        case $(readlink "$p/root" 2>/dev/null) in
            "$root" | "$root"/*) left="$left ${p#/proc/}" ;;
        esac
    done
    [ -z "$left" ] || die "processes still running in $root:$left"
}

# Runs `sh -c SCRIPT` chrooted in the root, with its own /proc, /sys, /dev
# and a tmpfs /tmp, in private mount and PID namespaces: when it ends (or
# this script is killed: --kill-child) its mounts and every process it left
# go too. The root is bind-mounted on itself, so that / in the chroot is a
# mount point, as tests that make their own mount namespace need
# (test_logging). With --net, also in a new network namespace, loopback up.
# PID 1 there is a shell waiting for the chroot, so orphans are reaped.
in_root() {
    net=
    if [ "$1" = --net ]; then net=--net; shift; fi
    # shellcheck disable=SC2016,SC2086
    unshare --mount --propagation private --pid --fork --kill-child $net sh -c '
        set -e
        r=$1 net=$2 script=$3
        mount --bind "$r" "$r"     # a mount point as /: unshare --propagation works inside
        mount -t proc proc "$r/proc"
        mount --rbind /sys "$r/sys"
        mount --rbind /dev "$r/dev"
        mount -t tmpfs -o mode=1777 tmpfs "$r/tmp"
        if [ -n "$net" ]; then ip link set lo up; fi
        chroot "$r" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
            HOME=/root LANG=C.UTF-8 TERM="${TERM:-dumb}" CI="${CI:-}" sh -c "$script" &
        wait $!' in_root "$root" "$net" "$1"
}

# debootstrap into DIR.new, then rename: a half-made root is never taken
# for the cache. debootstrap's own mounts stay in a private namespace.
make_root() {
    [ -d "$root" ] && return 0
    mirror=$(mirror_for bookworm http://deb.debian.org/debian)
    say "making the root: debootstrap --variant=minbase trixie $root.new $mirror"
    start=$(now)
    mkdir -p "$(dirname "$root")"
    rm -rf --one-file-system "$root.new"
    if ! unshare --mount --propagation private \
            debootstrap --variant=minbase trixie "$root.new" "$mirror" >"$root.debootstrap.log" 2>&1; then
        tail -n 30 "$root.debootstrap.log"
        die "debootstrap failed (log: $root.debootstrap.log)"
    fi
    mv "$root.new" "$root"
    say "root made in $(($(now) - start)) s"
}

# What a Debian install has and a minbase root lacks, and this run's copy.
prepare_root() {
    mirror=$(mirror_for bookworm http://deb.debian.org/debian)
    security=$(mirror_for bookworm-security http://deb.debian.org/debian-security)
    # the root's own apt sources (never the host's), updates and security too
    printf 'deb %s trixie main\ndeb %s trixie-updates main\ndeb %s trixie-security main\n' \
        "$mirror" "$mirror" "$security" >"$root/etc/apt/sources.list"
    if [ -f /etc/resolv.conf ]; then
        rm -f "$root/etc/resolv.conf" && cat /etc/resolv.conf >"$root/etc/resolv.conf"
    fi
    printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
    # no package may ever start a service from the root (nginx on port 80)
    printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
    chmod 755 "$root/usr/sbin/policy-rc.d"
    rm -rf --one-file-system "$root$copy"
    mkdir -p "$root$copy"
    if git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        # tracked and untracked-but-not-ignored: uncommitted work, no build/
        git -C "$top" ls-files -z --cached --others --exclude-standard |
            (cd "$top" && tar --null --no-recursion --ignore-failed-read -T - -cf - 2>/dev/null) |
            tar -xf - -C "$root$copy"
    else
        (cd "$top" && tar --exclude=./build -cf - .) | tar -xf - -C "$root$copy"
    fi
    [ -f "$root$copy/configure.ac" ] || die "copying the checkout to $root$copy failed"
}

# With the host's network: finish an install an earlier run may have left
# half done, refresh the lists, bring the cached root up to date, then
# .ci/deps (from the copy) installs what is missing. systemd brings
# systemd-analyze, which test_systemd uses and minbase lacks.
install_packages() {
    start=$(now)
    in_root "set -e
        export DEBIAN_FRONTEND=noninteractive
        dpkg --configure -a
        apt-get update -q
        apt-get -y -q -o Dpkg::Options::=--force-confold full-upgrade
        cd $copy && sh .ci/deps
        apt-get -y -q --no-install-recommends install systemd" >"$root.apt.log" 2>&1 || {
        tail -n 40 "$root.apt.log"
        die "installing packages in the root failed (log: $root.apt.log; rm -rf $root remakes it)"
    }
    grep -E '^(installing:|[0-9]+ upgraded)' "$root.apt.log" | sed 's/^/debian13: apt: /' || true
    say "packages ready in $(($(now) - start)) s; versions in the root:"
    in_root "dpkg-query -W -f='\${Package} \${Version}\n' libmbedtls-dev openssl curl gnutls-bin \
        python3 nginx testssl.sh 2>&1" | sed 's/^/    /'
}

mbedtls_version() {
    in_root "dpkg-query -W -f='\${Version}' libmbedtls-dev" | sed 's/-.*//'
}

outside() {
    [ "$(id -u)" -eq 0 ] || die "run as root (debootstrap, chroot, namespaces)"
    for t in debootstrap unshare chroot ip tar; do
        command -v "$t" >/dev/null || die "$t is missing (sh .ci/deps installs it)"
    done
    label=${1:+$1 }
    echo "===== ${label}Debian 13 (trixie): the debootstrap root $root"
    check_leftovers
    make_root
    prepare_root
    install_packages
    echo "===== ${label}Debian 13 (mbedTLS $(mbedtls_version)): README commands in a debootstrap root"
    start=$(now)
    rc=0
    in_root --net "cd $copy && sh tests/debian13.sh --inside" || rc=$?
    check_leftovers
    # run-all's tally: this run's inner counts, read under the lock
    if [ -n "${TLSTERM_DEBIAN13_COUNTS:-}" ] && [ -f "$root$copy/build/counts" ]; then
        cat "$root$copy/build/counts" >>"$TLSTERM_DEBIAN13_COUNTS"
    fi
    say "README commands: exit $rc after $(($(now) - start)) s; logs under $root$copy/build"
    return "$rc"
}

# tests/debian-package.sh sources this file for the root and in_root.
[ -n "${TLSTERM_DEBIAN13_SOURCED:-}" ] && return 0

case ${1:-} in
    --inside) inside ;;
    --locked) shift; outside "$@" ;;
    *)  # one pass at a time per root: the copy and apt are shared
        [ "$(id -u)" -eq 0 ] || die "run as root (debootstrap, chroot, namespaces)"
        mkdir -p "$(dirname "$root")"
        if ! flock -n "$root.lock" true; then
            say "waiting for another Debian 13 pass on $root to finish"
        fi
        exec flock -w 3600 "$root.lock" sh "$0" --locked "$@" ;;
esac
