# SPDX-License-Identifier: BSD-2-Clause
"""accept() failing with EMFILE backs off instead of spinning: tlsterm runs
with a tiny open-file limit, more clients connect than it has descriptors
for, it logs the back-off once a second, burns almost no CPU while the
limit holds, and serves again as soon as descriptors are free.

Out of descriptors on the backend side (socket() for the backend fails
with EMFILE) is this host's shortage, not the server's: the request fails
with a reason that says so, the listeners back off, the server is not
marked down, and the next request after the pressure is served at once."""

import datetime
import os
import re
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


# ---------------------------------------------------------------- the backend side

BACKEND_NOFILE = 64


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def connected_sockets(pid):
    """How many of pid's descriptors are TCP sockets that are not listening."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    n = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for row in f.read().splitlines()[1:]:
                cols = row.split()
                n += cols[9] in inodes and cols[3] != "0A"     # 0A: LISTEN
    return n


@pytest.mark.skipif(shutil.which("prlimit") is None, reason="prlimit (util-linux) missing")
@pytest.mark.parametrize("forwarded", [False, True], ids=["plain", "forwarded_headers"])
def test_backend_socket_emfile_leaves_server_health_alone(certs, http_backend, tlsterm,
                                                          forwarded):
    """The last descriptor goes to the client's accept, so socket() for the
    backend fails with EMFILE: that is this host's shortage, not the
    server's.  The request fails with the reason, the listeners back off,
    the server is not marked down, and once descriptors are free the next
    request is served at once (long before fail_timeout would end)."""
    cfg = h.one_listener(http_backend.port, workers=1, timeouts={"handshake": "120s"})
    cfg["backends"]["app"]["fail_timeout"] = "60s"
    cfg["backends"]["app"]["forwarded_headers"] = forwarded
    d = tlsterm(cfg, wrapper=["prlimit", "--nofile=%d:%d" % (BACKEND_NOFILE, BACKEND_NOFILE),
                              "--"])
    server = "127.0.0.1:%d" % http_backend.port
    held = []
    try:
        # the start-up probe is logged closed just before its descriptor is
        h.wait_until(lambda: connected_sockets(d.pid) == 0, h.T(10),
                     "tlsterm to close its start-up probe connection")
        # clients that send nothing take every descriptor but one
        spare = BACKEND_NOFILE - 1 - fd_count(d.pid)
        assert spare > 0, "tlsterm uses %d descriptors already" % fd_count(d.pid)
        for _ in range(spare):
            held.append(socket.create_connection(d.addr(), timeout=h.T(5)))
        h.wait_until(lambda: fd_count(d.pid) == BACKEND_NOFILE - 1, h.T(10),
                     "tlsterm to hold %d descriptors" % (BACKEND_NOFILE - 1))
        c = h.MemTLS(d.addr(), certs.rsa_cert)      # its accept takes the last one
        try:
            port = c.local_port
            # ... and the accept after it finds none (Linux takes the
            # descriptor before it looks at the queue)
            m = d.wait_log(r"^(\S+) warn listener=https addr=\S+: accept: Too many open files; "
                           r"pausing accepts for 100 ms$")
            # that warning holds the listener's back-off line for the rest of
            # its second: the backend's must come in the next one
            logged = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%fZ")
            logged = int(logged.replace(tzinfo=datetime.timezone.utc).timestamp())
            h.wait_until(lambda: time.time() >= logged + 1, h.T(3), "the next second")
            c.handshake()
            c.write(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
            try:
                raw = c.read_all()
            except ConnectionResetError:
                raw = b""
        finally:
            c.close()
        line = d.wait_close(port=port)
        assert not re.search(r"backend=app server=\S+ is down", d.log()), \
            "a local shortage marked the server down:\n" + d.log_tail()
        assert line["reason"] == (("answered 503: " if forwarded else "") +
                                  "backend app: local shortage, no socket for %s: Too many open "
                                  "files (server health unchanged)" % server), line["line"]
        if forwarded:
            assert raw.startswith(b"HTTP/1.1 503 Service Unavailable\r\n"), raw[:200]
        else:
            assert raw == b"", raw[:200]
        d.wait_log(r" warn listener=https addr=127\.0\.0\.1:%d: backend socket: Too many open "
                   r"files; pausing accepts for 100 ms$" % d.port())
        assert http_backend.conns == [], "the backend got a connection"
    finally:
        for s in held:
            s.close()
    # descriptors are back: served at once, by the same server (one server,
    # and a rest would have been 60 s)
    h.wait_until(lambda: _get_ok(d, certs), h.T(5), "a GET once descriptors are free")
    log = d.log()
    assert not re.search(r"backend=app server=\S+ is (down|up again)", log), d.log_tail()
    assert "no server available" not in log, d.log_tail()
