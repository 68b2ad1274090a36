#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Builds mbedTLS 3.6 LTS with tlsterm's configuration (tlsterm_config.h,
# beside this script) into DIR, for `./configure --with-mbedtls=DIR`.
#
#   build.sh --prefix DIR --source mbedtls-3.6.x.tar.bz2   a release tarball
#   build.sh --prefix DIR --debian                         Debian 13's source
#   build.sh --fetch DIR          only fetch Debian 13's upstream tarball into
#                                 DIR and print its path (CI hashes it first)
#
# DIR gets include/ (mbedtls/, psa/, everest/) and lib/ with the static
# libraries: libmbedtls.a, libmbedx509.a, libmbedcrypto.a and the two that
# libmbedcrypto.a needs from 3rdparty/: libeverest.a (X25519, used here)
# and libp256m.a (built by 3.6's cmake whatever the configuration; empty
# here, as p256-m is off).  Link order: -lmbedtls -lmbedx509 -lmbedcrypto
# -leverest -lp256m.  Objects are -O2 (mbedTLS's cmake Release flags;
# $CFLAGS is added) and position independent, so they link into Debian's
# default PIE executables.  The libraries' configuration is upstream's
# include/mbedtls/mbedtls_config.h followed by tlsterm_config.h: the
# script appends an #include of it to the tree's mbedtls_config.h before
# building, and installs both, so DIR/include always describes DIR/lib
# (see tlsterm_config.h for why that matters).
#
# --debian: Debian 13 (trixie) has mbedTLS 3.6 LTS.  Its source package is
# fetched with `apt-get source --download-only` through a private apt
# configuration (its own sources.list, lists, cache and state under a
# temporary directory), the mirror taken from this host's apt sources; the
# host's apt configuration and state are never written.  Only the package's
# .orig tarball is used, which is mbedTLS's release tarball, unpacked as
# such: Debian's patches are not applied.  debian/patches/
# cmake-disable-3rdparty removes 3rdparty/ (Everest, p256-m) from the cmake
# build, which is exactly what this build needs back; the other one
# (100-fix-gcc14-build) only silences a false gcc 14 -Warray-bounds
# warning, and this build does not turn warnings into errors
# (MBEDTLS_FATAL_WARNINGS=OFF).  apt verifies the tarball against the
# signed Sources index of the archive.
#
# Needs: cmake (installed with apt-get when missing and run as root), a C
# compiler, make, patch, bzip2/xz for the tarball.  Python is not needed:
# release tarballs ship the generated sources (library/error.c,
# psa_crypto_driver_wrappers.h, ...), so GEN_FILES stays off; a git
# checkout's tarball lacks them and is refused.  GEN_FILES must stay off
# anyway: everest_driver/psa-driver-wrappers.patch hooks tlsterm's PSA
# X25519 driver into the generated wrappers, which regenerating would drop.
#
# Environment: CC (compiler), CFLAGS (added to -O2), JOBS (make -j, default
# nproc), TLSTERM_APT_MIRROR (a Debian mirror URL, instead of the host's).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
config_h=$here/tlsterm_config.h
prefix= source= debian= fetch_dir=
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}

say() { echo "mbedtls-build: $*"; }
die() { echo "mbedtls-build: $*" >&2; exit 1; }
usage() {
    sed -n '5,9p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case $1 in
        --prefix) [ $# -ge 2 ] || usage; prefix=$2; shift 2 ;;
        --prefix=*) prefix=${1#*=}; shift ;;
        --source) [ $# -ge 2 ] || usage; source=$2; shift 2 ;;
        --source=*) source=${1#*=}; shift ;;
        --debian) debian=1; shift ;;
        --fetch) [ $# -ge 2 ] || usage; fetch_dir=$2; shift 2 ;;
        -h|--help) usage ;;
        *) echo "mbedtls-build: unknown argument $1" >&2; usage ;;
    esac
done

# ---- Debian 13's source, through a private apt configuration -------------

# The first http(s) URI of the host's apt entries for suite $1: deb822
# .sources files first, then one-line .list files.  (tests/debian13.sh
# reads it the same way for its root.)  The mirror that serves bookworm
# serves trixie too.
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
        awk -v s="$1" '$1 == "deb" || $1 == "deb-src" {
                i = 2
                if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                if ($(i + 1) == s && $i ~ /^https?:/) print $i
            }' "$f"
    done
}

debian_mirror() {
    [ -n "${TLSTERM_APT_MIRROR:-}" ] && { echo "$TLSTERM_APT_MIRROR"; return; }
    # the host's own release first (bookworm here), then trixie itself
    for suite in "$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")" trixie; do
        [ -n "$suite" ] || continue
        m=$(host_mirror "$suite" | head -n 1)
        [ -n "$m" ] && { echo "$m"; return; }
    done
    die "no Debian mirror in /etc/apt/sources.list{,.d}; set TLSTERM_APT_MIRROR"
}

# apt-get with everything it reads or writes under $1, except the trusted
# keys (the host's keyring verifies the archive) and dpkg's status (read).
private_apt() {
    a=$1; shift
    apt-get -q -o Dir::Etc::sourcelist="$a/sources.list" -o Dir::Etc::sourceparts=- \
        -o Dir::State="$a/state" -o Dir::State::status=/var/lib/dpkg/status \
        -o Dir::Cache="$a/cache" -o Dir::Etc::preferences="$a/preferences" \
        -o Dir::Etc::preferencesparts=- \
        -o APT::Sandbox::User=root "$@"
}

# Downloads the source package of mbedtls from trixie into $1 and prints
# the path of its .orig tarball (the upstream release).
fetch_debian() {
    out=$1
    mkdir -p "$out"
    out=$(cd "$out" && pwd)
    mirror=$(debian_mirror)
    a=$(mktemp -d "${TMPDIR:-/tmp}/tlsterm-apt.XXXXXX")
    mkdir -p "$a/state/lists/partial" "$a/cache/archives/partial"
    : >"$a/preferences"
    echo "deb-src $mirror trixie main" >"$a/sources.list"
    say "apt-get source mbedtls from $mirror trixie (private apt config in $a)" >&2
    if ! private_apt "$a" update >"$a/update.log" 2>&1; then
        cat "$a/update.log" >&2
        rm -rf "$a"
        die "apt-get update (private configuration) failed"
    fi
    if ! (cd "$out" && private_apt "$a" source --download-only mbedtls) >"$a/source.log" 2>&1
    then
        cat "$a/source.log" >&2
        rm -rf "$a"
        die "apt-get source mbedtls failed"
    fi
    rm -rf "$a"
    # the newest upstream version downloaded there
    orig=$(ls "$out"/mbedtls_3.6.*.orig.tar.* 2>/dev/null | sort -V | tail -n 1)
    [ -n "$orig" ] || die "no mbedtls_3.6.*.orig.tar.* in $out (is trixie's mbedtls still 3.6?)"
    echo "$orig"
}

if [ -n "$fetch_dir" ]; then
    fetch_debian "$fetch_dir"
    exit 0
fi

# ---- the build -----------------------------------------------------------

[ -n "$prefix" ] || usage
[ -n "$source$debian" ] || usage
[ -n "$source" ] && [ -n "$debian" ] && die "--source and --debian exclude each other"
[ -f "$config_h" ] || die "$config_h is missing"

if ! command -v cmake >/dev/null 2>&1; then
    [ "$(id -u)" -eq 0 ] || die "cmake is missing: apt-get install cmake (as root)"
    say "installing cmake"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends cmake >&2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/tlsterm-mbedtls.XXXXXX")
trap 'rm -rf "$work"' EXIT

if [ -n "$debian" ]; then
    source=$(fetch_debian "$work/dl")
fi
[ -f "$source" ] || die "no such tarball: $source"
say "unpacking $(basename "$source")"
mkdir -p "$work/src"
tar -xf "$source" -C "$work/src"
tree=$(find "$work/src" -mindepth 1 -maxdepth 1 -type d | head -n 1)
[ -n "$tree" ] && [ -f "$tree/include/mbedtls/mbedtls_config.h" ] ||
    die "$source is not an mbedTLS source tarball"
version=$(sed -n 's/^#define MBEDTLS_VERSION_STRING *"\(.*\)"/\1/p' \
    "$tree/include/mbedtls/build_info.h")
case $version in
    3.6.*) ;;
    *) die "$source is mbedTLS $version; tlsterm_config.h is written for 3.6 LTS" ;;
esac
[ -f "$tree/library/error.c" ] && [ -f "$tree/library/psa_crypto_driver_wrappers.h" ] ||
    die "$source lacks the generated sources: use a release tarball, not a git snapshot"
[ -f "$tree/3rdparty/everest/library/x25519.c" ] || die "$source has no 3rdparty/everest"
grep -q '^add_subdirectory(3rdparty)' "$tree/CMakeLists.txt" ||
    die "$source does not build 3rdparty/ (a patched tree?): Everest would be missing"

# X25519 through PSA (TLS 1.3) on Everest: tlsterm's transparent driver
# (everest_driver/), hooked into the generated driver wrappers.  A 3.6.x
# release that changes those lines makes patch fail: stop then, rather
# than build a library without the driver that tlsterm_config.h asks for.
command -v patch >/dev/null 2>&1 || die "patch is missing: apt-get install patch"
patch -d "$tree" -p1 --quiet --forward <"$here/everest_driver/psa-driver-wrappers.patch" ||
    die "everest_driver/psa-driver-wrappers.patch does not apply to mbedTLS $version"
cp "$here/everest_driver/tlsterm_everest_driver.c" \
    "$here/everest_driver/tlsterm_everest_driver.h" "$tree/library/"

# tlsterm's configuration: read after upstream's defaults, in the tree
# built and in the headers installed (tlsterm_config.h explains why).
cp "$config_h" "$tree/include/mbedtls/tlsterm_config.h"
printf '\n/* tlsterm: its changes to these defaults (src/mbedtls/build.sh) */\n%s\n' \
    '#include "tlsterm_config.h"' >>"$tree/include/mbedtls/mbedtls_config.h"

say "building mbedTLS $version with $(basename "$config_h") into $prefix"
mkdir -p "$prefix"
prefix=$(cd "$prefix" && pwd)
cmake -S "$tree" -B "$work/build" \
    -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_POSITION_INDEPENDENT_CODE=ON \
    -DCMAKE_INSTALL_PREFIX="$prefix" \
    -DCMAKE_INSTALL_LIBDIR=lib \
    -DUSE_STATIC_MBEDTLS_LIBRARY=ON \
    -DUSE_SHARED_MBEDTLS_LIBRARY=OFF \
    -DENABLE_PROGRAMS=OFF \
    -DENABLE_TESTING=OFF \
    -DGEN_FILES=OFF \
    -DMBEDTLS_FATAL_WARNINGS=OFF >"$work/cmake.log" 2>&1 ||
    { cat "$work/cmake.log" >&2; die "cmake failed"; }
cmake --build "$work/build" -j "$jobs" >"$work/make.log" 2>&1 ||
    { tail -n 40 "$work/make.log" >&2; die "the build failed"; }
cmake --install "$work/build" >"$work/install.log" 2>&1 ||
    { cat "$work/install.log" >&2; die "cmake --install failed"; }
for l in mbedtls mbedx509 mbedcrypto everest p256m; do
    [ -f "$prefix/lib/lib$l.a" ] || die "lib$l.a was not installed in $prefix/lib"
done
# What was built, from what: configure and CI can read it.
{
    echo "mbedtls_version=$version"
    echo "source=$(basename "$source")"
    echo "source_sha256=$(sha256sum "$source" | cut -d' ' -f1)"
    echo "config_sha256=$(sha256sum "$config_h" | cut -d' ' -f1)"
    echo "everest_driver_sha256=$(cat "$here"/everest_driver/* | sha256sum | cut -d' ' -f1)"
    echo "compiler=$(${CC:-cc} --version 2>/dev/null | head -n 1)"
    echo "cflags=-O2 -fPIC ${CFLAGS:-}"
} >"$prefix/tlsterm-mbedtls.txt"
say "done: $prefix (include/, lib/, tlsterm-mbedtls.txt)"
