#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# The tuned mbedTLS for CI (step 6 of tests/run-all.sh): prints the
# directory of an mbedTLS 3.6 built by src/mbedtls/build.sh with
# tlsterm_config.h, for `configure --with-mbedtls=DIR`; builds it first
# when the cache has none for this source and configuration.
#
# The source is Debian 13's mbedtls source package (its upstream tarball),
# fetched through build.sh's private apt configuration: the CI machine
# reaches Debian's archive only, and the host's apt sources are never
# touched.  The build is cached in
#   $TLSTERM_TUNED_CACHE/mbedtls-tuned-<sha256>/   (default /var/cache/tlsterm-ci)
# where <sha256> hashes the tarball and the files of src/mbedtls/
# (build.sh, tlsterm_config.h, ...), so a change to any of them builds
# afresh and an unchanged one costs a fetch (a few seconds).  One run at
# a time builds (flock); a build goes into a temporary directory renamed
# into place only once complete, so a killed run never leaves a half-built
# cache.  The three newest builds are kept.
#
# On its own: `sh tests/tuned.sh` (as root when cmake must be installed
# or the cache is under /var/cache).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cache=${TLSTERM_TUNED_CACHE:-/var/cache/tlsterm-ci}
build=$top/src/mbedtls/build.sh

say() { echo "tuned: $*" >&2; }
die() { echo "tuned: $*" >&2; exit 1; }
now() { date +%s; }

command -v flock >/dev/null || die "flock is missing (util-linux)"
mkdir -p "$cache/mbedtls-src"
exec 9>"$cache/mbedtls-tuned.lock"
flock 9

start=$(now)
if ! tarball=$(sh "$build" --fetch "$cache/mbedtls-src" 2>"$cache/mbedtls-fetch.log"); then
    cat "$cache/mbedtls-fetch.log" >&2
    # no archive now: the newest tarball fetched before still builds
    tarball=$(ls "$cache"/mbedtls-src/mbedtls_3.6.*.orig.tar.* 2>/dev/null | sort -V |
              tail -n 1) || true
    [ -n "$tarball" ] || die "fetching Debian 13's mbedtls source failed"
    say "WARNING: fetch failed; using $tarball fetched earlier"
fi
# the tarball and every file of src/mbedtls/ (build.sh, tlsterm_config.h
# and whatever they use: a patch, a driver), by name and content
key=$({ sha256sum "$tarball" | cut -d' ' -f1
        cd "$top" && find src/mbedtls -type f ! -name '*~' | LC_ALL=C sort |
            while read -r f; do sha256sum "$f"; done; } | sha256sum | cut -d' ' -f1)
dir=$cache/mbedtls-tuned-$key
say "$(basename "$tarball") + src/mbedtls/: sha256 $key"

if [ -f "$dir/lib/libmbedcrypto.a" ]; then
    say "cached: $dir (fetch and check took $(($(now) - start)) s)"
else
    tmp=$dir.tmp.$$
    rm -rf "$tmp"
    trap 'rm -rf "$tmp"' EXIT
    if ! CC=gcc sh "$build" --prefix "$tmp" --source "$tarball" >"$cache/mbedtls-build.log" 2>&1
    then
        tail -n 40 "$cache/mbedtls-build.log" >&2
        die "building the tuned mbedTLS failed (log: $cache/mbedtls-build.log)"
    fi
    rm -rf "$dir"
    mv "$tmp" "$dir"
    trap - EXIT
    say "built $dir in $(($(now) - start)) s"
    # keep the three newest builds (an older checkout may still want one)
    ls -1dt "$cache"/mbedtls-tuned-* 2>/dev/null | grep -v '\.tmp\.' | tail -n +4 |
        while read -r old; do say "removing old build $old"; rm -rf "$old"; done
fi
# the source packages: the three newest (three files each: .dsc, .orig, .debian)
ls -1t "$cache"/mbedtls-src/mbedtls_* 2>/dev/null | tail -n +10 | xargs -r rm -f
echo "$dir"
