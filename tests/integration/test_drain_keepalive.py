# SPDX-License-Identifier: BSD-2-Clause
"""A stop with forwarded_headers ends keep-alive connections where requests
end instead of waiting out timeouts.drain: an idle one is closed at once
(close_notify), one with a request in flight gets "Connection: close" on
that request's response and closes after it, and a connection that starts
during the drain is served one request the same way.  Without
forwarded_headers the drain still waits (test_shutdown.py)."""

import asyncio
import signal
import socket
import threading
import time

import tlsterm_harness as h
from test_forwarded import fwd_config, read_response


class Gated(h.Backend):
    """Keep-alive 200s that say so (Connection: keep-alive, Keep-Alive);
    a request for /slow is answered only once self.release is set."""

    ANSWER = (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n"
              b"Keep-Alive: timeout=5\r\n\r\nok")

    def __init__(self, **kw):
        super().__init__(**kw)
        self.heads = []
        self.release = threading.Event()

    async def handle(self, reader, writer, conn):
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return
            self.heads.append(head)
            if head.startswith(b"GET /slow "):
                while not self.release.is_set():
                    await asyncio.sleep(0.01)       # polling the test's gate
            writer.write(self.ANSWER)
            await writer.drain()


def drain_config(port, drain="30s"):
    cfg = fwd_config(port)
    cfg["timeouts"] = {"drain": drain}
    return cfg


def get(path):
    return b"GET %s HTTP/1.1\r\nHost: a\r\n\r\n" % path


def sigterm(d, open_conns):
    """SIGTERM; returns its time once the daemon says it drains."""
    t0 = time.monotonic()
    d.send_signal(signal.SIGTERM)
    d.wait_log(r"stopping; %d connection\(s\) open, draining for up to 30000 ms" % open_conns)
    return t0


def stopped_soon(d, t0, open_conns):
    """The daemon exits by itself, well before the 30 s drain ends."""
    d.expect_open_at_stop = open_conns
    problems = d.stop(send=False, timeout=h.T(5))
    assert not problems, problems
    assert time.monotonic() - t0 < h.T(5)
    assert "all connections finished" in d.log() and "drain timeout" not in d.log()


def test_idle_keepalive_is_closed_at_once(certs, backend, tlsterm):
    b = backend(Gated)
    d = tlsterm(drain_config(b.port))
    c = h.MemTLS(d.addr(), certs.rsa_cert)
    try:
        c.handshake()
        c.write(get(b"/"))
        assert c.read_until(b"ok").startswith(b"HTTP/1.1 200 OK\r\n")
        t0 = sigterm(d, 1)
        assert c.read_all() == b""
        assert c.got_close_notify
        stopped_soon(d, t0, 1)
    finally:
        c.close()
    (line,) = d.close_lines()
    assert line["reason"] == "done (idle keep-alive closed for shutdown)", line["line"]


def test_request_in_flight_ends_with_connection_close(certs, backend, tlsterm):
    b = backend(Gated)
    d = tlsterm(drain_config(b.port))
    c = h.MemTLS(d.addr(), certs.rsa_cert)
    try:
        c.handshake()
        c.write(get(b"/slow"))
        h.wait_until(lambda: len(b.heads) == 1, h.T(10), "the request at the backend")
        t0 = sigterm(d, 1)
        b.release.set()
        got = c.read_all()
        assert c.got_close_notify
        stopped_soon(d, t0, 1)
    finally:
        c.close()
    head, body = got.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and body == b"ok", got
    assert h.header_values(head + b"\r\n\r\n", "connection") == ["close"], head
    assert h.header_values(head + b"\r\n\r\n", "keep-alive") == [], head
    (line,) = d.close_lines()
    assert line["reason"] == "done (Connection: close for shutdown)", line["line"]
    assert " req=1 " in d.log() and " path=\"/slow\" status=200 " in d.log()


def test_pipelined_requests_in_flight_close_after_the_last(certs, backend, tlsterm):
    """Both were forwarded before the stop: both are answered, and only the
    second answer says Connection: close (RFC 9112 9.6)."""
    b = backend(Gated)
    d = tlsterm(drain_config(b.port))
    s = h.tls_connect(d.addr(), certs.rsa_cert)
    f = s.makefile("rb")
    try:
        s.sendall(get(b"/slow") + get(b"/second"))
        # one TLS record: tlsterm rewrites and sends both heads in one go,
        # so the first at the backend means both were forwarded
        h.wait_until(lambda: len(b.heads) == 1, h.T(10), "the first request at the backend")
        t0 = sigterm(d, 1)
        b.release.set()
        first = read_response(f)
        second = read_response(f)
        assert f.read() == b""
        stopped_soon(d, t0, 1)
    finally:
        f.close()
        s.close()
    assert first[0] == second[0] == "HTTP/1.1 200 OK"
    assert first[1]["connection"] == "keep-alive" and second[1]["connection"] == "close"
    assert len(b.heads) == 2


def test_connection_started_during_the_drain_gets_one_request(certs, backend, tlsterm):
    """Accepted before the stop, handshake after it: its first request is
    answered with Connection: close, and the second is not taken."""
    b = backend(Gated)
    d = tlsterm(drain_config(b.port))
    raw = socket.create_connection(d.addr(), timeout=h.T(10))
    d.wait_log(r"client=127\.0\.0\.1:%d listener=https accepted$" % raw.getsockname()[1])
    t0 = sigterm(d, 1)
    s = h.client_context(certs.rsa_cert).wrap_socket(raw, server_hostname="localhost")
    f = s.makefile("rb")
    try:
        s.sendall(get(b"/a") + get(b"/b"))
        status, hdrs, body = read_response(f)
        assert f.read() == b""
        stopped_soon(d, t0, 1)
    finally:
        f.close()
        s.close()
    assert status == "HTTP/1.1 200 OK" and body == b"ok"
    assert hdrs["connection"] == "close"
    assert [hd.split(b" ")[1] for hd in b.heads] == [b"/a"]
