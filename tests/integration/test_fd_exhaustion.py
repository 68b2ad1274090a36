# SPDX-License-Identifier: BSD-2-Clause
"""accept() failing with EMFILE backs off instead of spinning: tlsterm runs
with a tiny open-file limit, more clients connect than it has descriptors
for, it logs the back-off once a second, burns almost no CPU while the
limit holds, and serves again as soon as descriptors are free."""

import os
import shutil
import socket
import time

import pytest

import tlsterm_harness as h

NOFILE = 48
CLIENTS = 80


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.skipif(shutil.which("prlimit") is None, reason="prlimit (util-linux) missing")
def test_emfile_backs_off(certs, http_backend, tlsterm):
    d = tlsterm(h.one_listener(http_backend.port, workers=1,
                               limits={"max_connections": 1000}),
                wrapper=["prlimit", "--nofile=%d:%d" % (NOFILE, NOFILE), "--"])
    assert "open-file limit %d is below" % NOFILE in d.log()
    held = [socket.create_connection(d.addr(), timeout=h.T(5)) for _ in range(CLIENTS)]
    try:
        d.wait_log(r"accept: Too many open files; pausing accepts for 100 ms")
        before = cpu_seconds(d.pid)
        time.sleep(1.0)     # a window to measure, not synchronisation
        spent = cpu_seconds(d.pid) - before
        assert spent < 0.3 * h.SCALE, "tlsterm spun on accept: %.2fs CPU in 1s" % spent
        pauses = d.log().count("pausing accepts")
        assert pauses <= 3, "back-off warnings are not rate-limited: %d" % pauses
    finally:
        for s in held:
            s.close()
    # descriptors come back as the held clients go away: served again
    h.wait_until(lambda: _get_ok(d, certs), h.T(10), "a GET after the fd pressure")


def _get_ok(d, certs):
    try:
        return h.https_get(d.addr(), certs.rsa_cert, timeout=h.T(2))[1] == h.BODY
    except (OSError, AssertionError):
        return False
