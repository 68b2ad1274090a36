#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Runs the integration suite (real daemon, real clients, loopback) from
# `make check`.  Debian's pytest lives with /usr/bin/python3, which may not
# be the first python3 on PATH.
set -u
here=$(cd "$(dirname "$0")" && pwd)
: "${TLSTERM_BIN:?set by make check}"
py=/usr/bin/python3
[ -x "$py" ] || py=python3
cd "$here" || exit 99
export PYTHONDONTWRITEBYTECODE=1
"$py" -m pytest -p no:cacheprovider -ra -q ${PYTEST_ARGS:-} .
rc=$?
# pytest's 5 means "no tests ran": that is a failure here, never a pass.
[ "$rc" -eq 5 ] && { echo "run-pytest: no tests were collected" >&2; exit 1; }
exit "$rc"
