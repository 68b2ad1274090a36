#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# `make demo`: a self-signed certificate (made once, never committed), a
# plain-HTTP demo backend on 127.0.0.1:8080, and tlsterm in the foreground
# on conf/tlsterm.yaml (https://localhost:8443/).
set -eu
bin=$1
src=$2
conf=$src/conf
if [ ! -f "$conf/demo-key.pem" ] || [ ! -f "$conf/demo-cert.pem" ]; then
    echo "demo: generating a self-signed certificate for localhost in $conf"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -days 365 -subj /CN=localhost \
        -addext "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" \
        -keyout "$conf/demo-key.pem" -out "$conf/demo-cert.pem" 2>/dev/null
fi
webroot=$(mktemp -d)
printf '<!doctype html><title>tlsterm demo</title><p>Hello from the plain-HTTP backend behind tlsterm.</p>\n' \
    >"$webroot/index.html"
python3 -m http.server --bind 127.0.0.1 --directory "$webroot" 8080 >/dev/null 2>&1 &
backend=$!
# The backend often died of the same signal: a failed kill must not skip
# the rm (set -e).
trap 'kill "$backend" 2>/dev/null || true; rm -rf "$webroot"' EXIT INT TERM
echo "demo: backend on http://127.0.0.1:8080 (pid $backend); tlsterm on https://localhost:8443/"
echo "demo: try: curl -k https://localhost:8443/   (Ctrl-C stops both)"
"$bin" -c "$conf/tlsterm.yaml"
