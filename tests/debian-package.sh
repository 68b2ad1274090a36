#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# The Debian package (debian/), as an operator gets it:
#   1. built on this host (Debian 12): dpkg-buildpackage -us -uc -b, lintian;
#   2. built in tests/debian13.sh's Debian 13 root (cached), lintian;
#   3. the Debian 13 package installed with apt on a fresh copy of a clean
#      minbase trixie root (systemd, curl, openssl, python3 and nothing of
#      tlsterm's; cached in $TLSTERM_CLEAN_ROOT), then, in a network
#      namespace of its own: what the package installed (binary, man pages,
#      units, the tlsterm user, the conffile), that nothing was enabled or
#      started and that `tlsterm -t` names the missing certificate; then a
#      real certificate, the unit's own ExecStartPre= and ExecStart= lines,
#      a TLS request to a python3 http.server backend through it, SIGTERM;
#      then a reinstall and an upgrade that changes the shipped conffile:
#      the operator's edited tlsterm.yaml survives both (dpkg asks).
# Step 5 of tests/run-all.sh; on its own: `sh tests/debian-package.sh` as
# root. Each check counts as one test: the tally goes to $TLSTERM_COUNTS
# (run-all's build/counts) and the last line says "tests: N passed, M failed".
set -eu

# ---- inside the installed root (--test; run in a network namespace) ------

t_out=/tmp/check.out
# t NAME COMMAND...: one check; its output is shown when it fails.
t() {
    name=$1
    shift
    if "$@" >"$t_out" 2>&1; then
        echo "ok $name"
    else
        echo "FAIL $name"
        tail -n 20 "$t_out" | sed 's/^/    /'
    fi
}

unit=
conf=/etc/tlsterm/tlsterm.yaml
installed_files() {
    test -x /usr/sbin/tlsterm &&
        test -f /usr/share/man/man8/tlsterm.8.gz &&
        test -f /usr/share/man/man5/tlsterm.yaml.5.gz &&
        test -f "$unit" && test -f "${unit%.service}.socket" &&
        test -f /usr/lib/sysusers.d/tlsterm.conf &&
        test -f "$conf.example"
}
system_user() {
    getent passwd tlsterm | grep -q ':/usr/sbin/nologin$' && getent group tlsterm
}
conffile() {
    dpkg-query -W -f='${Conffiles}\n' tlsterm | grep " $conf "
}
not_enabled() {
    # is-enabled works without a running systemd: it reads the symlinks
    s=$(systemctl is-enabled tlsterm.service || true)
    k=$(systemctl is-enabled tlsterm.socket || true)
    echo "service: $s, socket: $k"
    [ "$s" = disabled ] && [ "$k" = disabled ] && ! grep -lx tlsterm /proc/[0-9]*/comm
}
one_path() {
    /usr/sbin/tlsterm -h 2>&1 | grep "(default $conf)" &&
        grep -x "ExecStart=/usr/sbin/tlsterm -c $conf" "$unit"
}
names_missing_certificate() {
    if /usr/sbin/tlsterm -t -c "$conf"; then return 1; fi
    /usr/sbin/tlsterm -t -c "$conf" 2>&1 | grep 'cannot read certificate /etc/tlsterm/server.pem'
}
make_certificate() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
        -subj /CN=localhost -addext 'subjectAltName=DNS:localhost,IP:127.0.0.1' \
        -keyout /etc/tlsterm/server.key -out /etc/tlsterm/server.pem 2>&1 &&
        chown root:tlsterm /etc/tlsterm/server.key && chmod 0640 /etc/tlsterm/server.key
}
# the unit's own lines, as systemd would run them
exec_line() {
    sed -n "s/^$1=//p" "$unit" | head -n 1
}
check_as_tlsterm() {
    pre=$(exec_line ExecStartPre)
    # shellcheck disable=SC2086 # the unit's command line, split as systemd does
    runuser -u tlsterm -- /usr/sbin/tlsterm -t -c "$conf" && $pre
}
wait_served() {
    i=0
    while [ "$i" -lt 100 ]; do
        if curl -sS --max-time 5 --cacert /etc/tlsterm/server.pem https://localhost/ \
                >/tmp/page 2>&1 && grep -q 'tlsterm package test' /tmp/page; then
            cat /tmp/page
            return 0
        fi
        kill -0 "$1" 2>/dev/null || return 1
        i=$((i + 1))
        sleep 0.2
    done
    cat /tmp/page
    return 1
}
wait_backend() {
    i=0
    until curl -sf --max-time 2 -o /dev/null http://127.0.0.1:8080/; do
        kill -0 "$1" 2>/dev/null && [ "$i" -lt 100 ] || return 1
        i=$((i + 1))
        sleep 0.1
    done
}
runs_as_tlsterm() {
    grep '^Uid:' "/proc/$1/status" &&
        [ "$(awk '/^Uid:/ { print $3 }' "/proc/$1/status")" = "$(id -u tlsterm)" ]
}
s_client_line() {
    openssl s_client -brief -connect localhost:443 -CAfile /etc/tlsterm/server.pem \
        </dev/null 2>&1 | grep -E 'Verification|Protocol version'
}
stops_on_term() {
    kill -TERM "$1" && wait "$1"
}
reinstall_keeps() {
    echo '# edited by the operator' >>"$conf"
    dpkg -i /root/pkg/tlsterm_*.deb && grep -x '# edited by the operator' "$conf"
}
# An upgrade whose shipped tlsterm.yaml changed: dpkg asks, "N" keeps the
# operator's file and puts the package's beside it as tlsterm.yaml.dpkg-dist.
upgrade_asks() {
    rm -rf /tmp/up && dpkg-deb -R /root/pkg/tlsterm_*.deb /tmp/up &&
        sed -i 's/^Version: .*/&+upgrade1/' /tmp/up/DEBIAN/control &&
        echo '# changed in the next release' >>/tmp/up$conf &&
        dpkg-deb -b /tmp/up /tmp/upgrade.deb >/dev/null &&
        echo N | dpkg -i /tmp/upgrade.deb >/tmp/upgrade.out 2>&1 &&
        grep -A2 "Configuration file '$conf'" /tmp/upgrade.out &&
        grep -x '# edited by the operator' "$conf" &&
        grep -x '# changed in the next release' "$conf.dpkg-dist" &&
        dpkg-query -W -f='${Version}\n' tlsterm | grep 'upgrade1$'
}

inside_test() {
    for unit in /usr/lib/systemd/system/tlsterm.service /lib/systemd/system/tlsterm.service; do
        [ -f "$unit" ] && break
    done
    echo "package: $(dpkg-query -W -f='${Package} ${Version}' tlsterm), unit $unit"
    t "installed: binary, man pages, units, sysusers.d, example" installed_files
    t "system user and group tlsterm" system_user
    t "$conf is a conffile" conffile
    t "service and socket neither enabled nor started" not_enabled
    t "tlsterm -h and the unit name $conf" one_path
    t "tlsterm -t without a certificate names it" names_missing_certificate
    t "a real certificate (openssl), key root:tlsterm 0640" make_certificate
    t "tlsterm -t as user tlsterm, then the unit's ExecStartPre" check_as_tlsterm
    mkdir -p /tmp/www
    echo '<title>tlsterm package test</title>' >/tmp/www/index.html
    python3 -m http.server --bind 127.0.0.1 --directory /tmp/www 8080 >/dev/null 2>&1 &
    backend=$!
    t "backend python3 -m http.server on 127.0.0.1:8080" wait_backend "$backend"
    run=$(exec_line ExecStart)
    # shellcheck disable=SC2086
    $run 2>/tmp/tlsterm.log &
    pid=$!
    t "TLS request through the unit's ExecStart (curl --cacert)" wait_served "$pid"
    t "the daemon runs as tlsterm" runs_as_tlsterm "$pid"
    s_client_line | sed 's/^/    s_client: /'
    t "SIGTERM: drains and exits 0" stops_on_term "$pid"
    kill "$backend" 2>/dev/null || true
    sed 's/^/    log: /' /tmp/tlsterm.log | head -n 8
    t "reinstall keeps the operator's tlsterm.yaml" reinstall_keeps
    t "upgrade with a new conffile: dpkg asks, keeps the operator's" upgrade_asks
}

if [ "${1:-}" = --test ]; then
    inside_test
    exit 0
fi

# ---- outside -------------------------------------------------------------

top=$(cd "$(dirname "$0")/.." && pwd)
# the Debian 13 build root, its mirror lookup and in_root (runs in $root)
TLSTERM_DEBIAN13_SOURCED=1 . "$top/tests/debian13.sh"
d13=$root
clean=${TLSTERM_CLEAN_ROOT:-/var/cache/tlsterm-ci/debian13-clean}
work=${TLSTERM_PKG_WORK:-/var/cache/tlsterm-ci/package}
passed=0
failed=0

say() { echo "debian-package: $*"; }
die() { echo "debian-package: $*" >&2; exit 1; }

tally() {
    passed=$((passed + $(grep -c '^ok ' "$1" || true)))
    failed=$((failed + $(grep -c '^FAIL ' "$1" || true)))
}

# one result line, counted like the checks in the root
result() {
    if [ "$1" -eq 0 ]; then echo "ok $2"; else echo "FAIL $2"; fi >>"$work/results"
    tail -n 1 "$work/results"
}

# The checkout as tests/debian13.sh copies it (uncommitted work too).
copy_tree() {
    rm -rf --one-file-system "$1" && mkdir -p "$1"
    if git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        git -C "$top" ls-files -z --cached --others --exclude-standard |
            (cd "$top" && tar --null --no-recursion --ignore-failed-read -T - -cf - 2>/dev/null) |
            tar -xf - -C "$1"
    else
        (cd "$top" && tar --exclude=./build -cf - .) | tar -xf - -C "$1"
    fi
}

# lintian's tags that are not overridden, and its exit status (errors and
# warnings fail); overrides are in debian/tlsterm.lintian-overrides.
lint() {
    rc=0
    $1 "lintian --fail-on error,warning --display-info --pedantic $2" >"$3" 2>&1 || rc=$?
    grep -v 'running with root privileges' "$3" | sed 's/^/    lintian: /' || true
    return "$rc"
}
on_host() { sh -c "$1"; }

host_tools() {
    missing=
    for p in dpkg-dev debhelper lintian fakeroot systemd; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
            missing="$missing $p"
    done
    [ -z "$missing" ] && return 0
    say "installing:$missing"
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing \
        >"$work/apt.log" 2>&1 || { tail -n 20 "$work/apt.log"; return 1; }
}

build_host() {
    start=$(now)
    rc=0
    host_tools || rc=$?
    copy_tree "$work/host/tlsterm"
    if [ "$rc" -eq 0 ]; then
        (cd "$work/host/tlsterm" && dpkg-checkbuilddeps) >"$work/host/deps.log" 2>&1 ||
            DEBIAN_FRONTEND=noninteractive apt-get build-dep -y -q "$work/host/tlsterm" \
                >>"$work/host/deps.log" 2>&1 || rc=$?
    fi
    if [ "$rc" -eq 0 ]; then
        (cd "$work/host/tlsterm" && dpkg-buildpackage -us -uc -b -Jauto) \
            >"$work/host/build.log" 2>&1 || { rc=$?; tail -n 30 "$work/host/build.log"; }
    fi
    result "$rc" "Debian 12: dpkg-buildpackage -us -uc -b ($(($(now) - start)) s)"
    grep -E '^# (PASS|FAIL): ' "$work/host/build.log" | tr '\n' ' ' | sed 's/^/    unit tests: /'
    echo
    [ "$rc" -eq 0 ] || return 0
    dpkg-deb -f "$work"/host/tlsterm_*.deb Package Version Depends | sed 's/^/    /'
    rc=0
    lint on_host "$work"/host/tlsterm_*_*.changes "$work/host/lintian.log" || rc=$?
    result "$rc" "Debian 12: lintian clean"
}

build_d13() {
    start=$(now)
    check_leftovers
    make_root
    copy_tree "$d13/root/tlsterm-package/tlsterm"
    rc=0
    # with the network: the build tools and build dependencies
    in_root "set -e
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q
        apt-get install -y -q --no-install-recommends dpkg-dev debhelper lintian
        cd /root/tlsterm-package/tlsterm && apt-get build-dep -y -q ." \
        >"$work/d13-deps.log" 2>&1 || { rc=$?; tail -n 30 "$work/d13-deps.log"; }
    if [ "$rc" -eq 0 ]; then
        in_root --net "cd /root/tlsterm-package/tlsterm && dpkg-buildpackage -us -uc -b -Jauto" \
            >"$work/d13-build.log" 2>&1 || { rc=$?; tail -n 30 "$work/d13-build.log"; }
    fi
    result "$rc" "Debian 13: dpkg-buildpackage -us -uc -b ($(($(now) - start)) s)"
    grep -E '^# (PASS|FAIL): ' "$work/d13-build.log" | tr '\n' ' ' | sed 's/^/    unit tests: /'
    echo
    [ "$rc" -eq 0 ] || return 0
    rm -rf "$work/d13" && mkdir -p "$work/d13"
    cp "$d13"/root/tlsterm-package/tlsterm_*.deb "$work/d13/"
    rc=0
    lint in_root "/root/tlsterm-package/tlsterm_*_*.changes" "$work/d13-lintian.log" || rc=$?
    result "$rc" "Debian 13: lintian clean"
    rm -rf --one-file-system "$d13/root/tlsterm-package"
    check_leftovers
}

# The clean root: minbase trixie with what a Debian server has (systemd)
# and the test's own tools; never tlsterm's libraries.
make_clean_root() {
    [ -d "$clean" ] && return 0
    # the host's mirror (it serves trixie too), as tests/debian13.sh does
    mirror=$(mirror_for bookworm http://deb.debian.org/debian)
    say "making the clean root: debootstrap --variant=minbase trixie $clean"
    rm -rf --one-file-system "$clean.new"
    if ! unshare --mount --propagation private debootstrap --variant=minbase \
            --include=systemd,curl,openssl,python3 trixie "$clean.new" "$mirror" \
            >"$clean.debootstrap.log" 2>&1; then
        tail -n 30 "$clean.debootstrap.log"
        die "debootstrap failed (log: $clean.debootstrap.log)"
    fi
    security=$(mirror_for bookworm-security http://deb.debian.org/debian-security)
    printf 'deb %s trixie main\ndeb %s trixie-updates main\ndeb %s trixie-security main\n' \
        "$mirror" "$mirror" "$security" >"$clean.new/etc/apt/sources.list"
    printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' \
        >"$clean.new/etc/hosts"
    mv "$clean.new" "$clean"
}

install_and_test() {
    [ -n "$(ls "$work"/d13/tlsterm_*.deb 2>/dev/null)" ] || {
        result 1 "Debian 13: no package to install"
        return 0
    }
    start=$(now)
    make_clean_root
    root=$work/root
    rm -rf --one-file-system "$root"
    cp -a "$clean" "$root"
    if [ -f /etc/resolv.conf ]; then
        rm -f "$root/etc/resolv.conf" && cat /etc/resolv.conf >"$root/etc/resolv.conf"
    fi
    mkdir -p "$root/root/pkg"
    cp "$work"/d13/tlsterm_*.deb "$0" "$root/root/pkg/"
    rc=0
    in_root "set -e
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q
        apt-get install -y -q --no-install-recommends /root/pkg/tlsterm_*.deb" \
        >"$work/install.log" 2>&1 || { rc=$?; tail -n 30 "$work/install.log"; }
    result "$rc" "Debian 13 clean root: apt-get install ./tlsterm_*.deb"
    grep -E '^(Setting up|Creating)' "$work/install.log" | sed 's/^/    /' | head -n 12
    if [ "$rc" -eq 0 ]; then
        in_root --net "sh /root/pkg/debian-package.sh --test" >"$work/test.log" 2>&1 || true
        cat "$work/test.log"
        grep -E '^(ok|FAIL) ' "$work/test.log" >>"$work/results"
    fi
    check_leftovers
    rm -rf --one-file-system "$root"
    root=$d13
    say "clean-root install and checks took $(($(now) - start)) s"
}

main() {
    [ "$(id -u)" -eq 0 ] || die "run as root (apt, debootstrap, chroot, namespaces)"
    echo "===== ${1:+$1 }Debian package: build on Debian 12 and 13, install on a clean root"
    start_all=$(now)
    mkdir -p "$work"
    : >"$work/results"
    build_host
    build_d13
    install_and_test
    tally "$work/results"
    if [ -n "${TLSTERM_COUNTS:-}" ]; then
        printf 'pass %s\nfail %s\n' "$passed" "$failed" >>"$TLSTERM_COUNTS"
    fi
    say "took $(($(now) - start_all)) s; packages in $work/host and $work/d13"
    echo "tests: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

case ${1:-} in
    --locked) shift; main "$@" ;;
    *)  # the Debian 13 root's lock (its apt and packages), then our own
        [ "$(id -u)" -eq 0 ] || die "run as root (apt, debootstrap, chroot, namespaces)"
        mkdir -p "$(dirname "$d13")" "$(dirname "$work")"
        exec flock -w 3600 "$d13.lock" flock -w 3600 "$work.lock" sh "$0" --locked "$@" ;;
esac
