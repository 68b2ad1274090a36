# SPDX-License-Identifier: BSD-2-Clause
"""Timeouts: a client that connects and says nothing is closed at the
handshake timeout; an established connection that goes quiet is closed at
the idle timeout."""

import socket
import time

import tlsterm_harness as h


def test_handshake_timeout(http_backend, tlsterm):
    d = tlsterm(h.one_listener(http_backend.port, timeouts={"handshake": "1s"}))
    s = socket.create_connection(d.addr(), timeout=h.T(5))
    try:
        port = s.getsockname()[1]
        t0 = time.monotonic()
        time.sleep(0.5)             # the client is silent on purpose
        s.setblocking(False)
        try:
            s.recv(1, socket.MSG_PEEK)
            raise AssertionError("closed before the handshake timeout")
        except BlockingIOError:
            pass                    # still open: good
        how = h.closed_by_peer(s, h.T(5))
        elapsed = time.monotonic() - t0
    finally:
        s.close()
    assert how in ("eof", "reset"), how
    assert 0.9 <= elapsed <= h.T(5), "closed after %.2fs" % elapsed
    line = d.wait_close(port=port)
    assert line["reason"] == "handshake timeout", line["line"]
    assert http_backend.conns == [], "a backend connection was opened"


def test_idle_timeout(certs, http_backend, tlsterm):
    d = tlsterm(h.one_listener(http_backend.port, timeouts={"idle": "1s"}))
    s = h.tls_connect(d.addr(), certs.rsa_cert, timeout=h.T(10))
    try:
        port = s.getsockname()[1]
        assert h.http11_exchange(s) == h.BODY
        t0 = time.monotonic()
        assert h.recv_all(s) == b""       # waits for tlsterm to close
        elapsed = time.monotonic() - t0
    finally:
        s.close()
    assert 0.9 <= elapsed <= h.T(5), "closed after %.2fs" % elapsed
    line = d.wait_close(port=port)
    assert line["reason"] == "idle timeout", line["line"]
