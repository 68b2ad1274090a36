# SPDX-License-Identifier: BSD-2-Clause
"""SIGTERM / SIGINT drain: tlsterm stops accepting at once, lets open
connections carry on for up to timeouts.drain, then closes the rest
(established ones with close_notify) and exits 0.  It exits as soon as the
last connection ends; a second signal stops it at once."""

import asyncio
import errno
import signal
import socket

import pytest

import tlsterm_harness as h
from test_bulk import SIZE, download, run


def connect_refused(addr):
    s = socket.socket()
    try:
        s.settimeout(h.T(5))
        return s.connect_ex(addr) == errno.ECONNREFUSED
    finally:
        s.close()



@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_drain_serves_open_connections_then_times_out(certs, http_backend, tlsterm, sig):
    d = tlsterm(h.one_listener(http_backend.port, timeouts={"drain": "2s"}))
    c = h.MemTLS(d.addr(), certs.rsa_cert)
    silent = socket.create_connection(d.addr(), timeout=h.T(5))
    mine = set()
    try:
        c.handshake()
        assert c.get().startswith(b"HTTP/1.1 200 OK\r\n")
        mine = {"127.0.0.1:%d" % c.sock.getsockname()[1],
                "127.0.0.1:%d" % silent.getsockname()[1]}
        d.wait_log(r"conn=\d+ client=127\.0\.0\.1:%d listener=https accepted$"
                   % silent.getsockname()[1])
        d.send_signal(sig)
        d.wait_log(r"received %s, stopping; 2 connection\(s\) open, draining for up to 2000 ms"
                   % signal.strsignal(sig))
        # no new connections, but the open one still gets answers
        h.wait_until(lambda: connect_refused(d.addr()), h.T(5), "the listener to close")
        assert c.get().startswith(b"HTTP/1.1 200 OK\r\n")
        d.expect_open_at_stop = 2
        problems = d.stop(send=False)
        assert not problems, problems
        assert c.read_all() == b""
        assert c.got_close_notify
        assert h.closed_by_peer(silent, h.T(5)) in ("eof", "reset")
    finally:
        c.close()
        silent.close()
    assert d.returncode == 0
    assert "drain timeout; closing 2 connection(s)" in d.log()
    # (the refused-connect probes may race a worker still closing its
    # listener; they are not the connections under test)
    reasons = sorted(l["reason"] for l in d.close_lines() if l["client"] in mine)
    assert reasons == ["drain timeout", "drain timeout"], reasons


def served_then_sigterm(d, certs):
    """A client with one answered request, then SIGTERM; returns the
    client, open, once the daemon says it is draining for it."""
    c = h.MemTLS(d.addr(), certs.rsa_cert)
    c.handshake()
    assert c.get().startswith(b"HTTP/1.1 200 OK\r\n")
    d.send_signal(signal.SIGTERM)
    d.wait_log(r"stopping; 1 connection\(s\) open")
    return c


def test_drain_ends_when_the_last_connection_closes(certs, http_backend, tlsterm):
    # a drain of 10 minutes: exiting within the harness's 15 s proves the
    # daemon noticed the last connection end instead of waiting it out
    d = tlsterm(h.one_listener(http_backend.port, timeouts={"drain": "600s"}))
    c = served_then_sigterm(d, certs)
    try:
        assert c.get().startswith(b"HTTP/1.1 200 OK\r\n")
    finally:
        c.close()
    d.expect_open_at_stop = 1
    problems = d.stop(send=False)
    assert not problems, problems
    assert "all connections finished" in d.log()
    assert [l["reason"] for l in d.close_lines()] != ["drain timeout"]


def test_second_signal_stops_at_once(certs, http_backend, tlsterm):
    d = tlsterm(h.one_listener(http_backend.port, timeouts={"drain": "600s"}))
    c = served_then_sigterm(d, certs)
    try:
        d.expect_open_at_stop = 1
        problems = d.stop(sig=signal.SIGTERM)
        assert not problems, problems
        assert c.read_all() == b""
        assert c.got_close_notify
    finally:
        c.close()
    assert "second stop signal; closing 1 connection(s)" in d.log()
    assert [l["reason"] for l in d.close_lines()] == ["second stop signal"]


def test_download_started_before_sigterm_completes(certs, backend, tlsterm):
    data = h.payload(SIZE, seed=45)
    hose = backend(h.Firehose, SIZE, data=data)
    d = tlsterm(h.one_listener(hose.port, timeouts={"drain": "120s"}))
    progress = {"sent": 0, "got": 0}

    async def go():
        task = asyncio.ensure_future(download(d.addr(), certs.rsa_cert, progress))
        while progress["got"] < (1 << 20) and not task.done():
            await asyncio.sleep(0.01)       # polling a condition, not a delay
        d.send_signal(signal.SIGTERM)
        return await task

    digest = run(go())
    assert progress["got"] == SIZE, progress
    assert digest == h.sha256(data), "download corrupted by the drain"
    d.expect_open_at_stop = 1
    problems = d.stop(send=False)
    assert not problems, problems
    line = d.wait_close(port=progress["port"])
    assert line["out"] == SIZE and line["reason"].startswith("done"), line["line"]


@pytest.mark.parametrize("sig,name", [(signal.SIGUSR2, "SIGUSR2"), (signal.SIGQUIT, "SIGQUIT"),
                                      (signal.SIGALRM, "SIGALRM")])
def test_unused_signal_is_ignored_with_a_warning(certs, http_backend, tlsterm, sig, name):
    """tlsterm(8), SIGNALS: a signal tlsterm does not use neither kills it
    (its default action) nor drops a connection; the log says so."""
    d = tlsterm(h.one_listener(http_backend.port))
    held = h.tls_connect(d.addr(), certs.rsa_cert)
    try:
        assert h.http11_exchange(held) == h.BODY
        d.send_signal(sig)
        d.wait_log(r"warn %s: not used by tlsterm, ignored \(SIGHUP reloads" % name)
        assert d.proc.poll() is None, "tlsterm exited on %s" % name
        assert h.http11_exchange(held) == h.BODY
        assert h.https_get(d.addr(), certs.rsa_cert, timeout=h.T(10))[1] == h.BODY
    finally:
        held.close()
