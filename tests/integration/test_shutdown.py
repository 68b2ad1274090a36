"""SIGINT / SIGTERM with connections still open: tlsterm says how many,
closes each one (established ones with close_notify), logs each with
reason "shutdown", and exits 0."""

import signal
import socket

import pytest

import tlsterm_harness as h


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_stop_with_open_connections(certs, http_backend, tlsterm, sig):
    d = tlsterm(h.one_listener(http_backend.port))
    c = h.MemTLS(d.addr(), certs.rsa_cert)
    silent = socket.create_connection(d.addr(), timeout=h.T(5))
    try:
        c.handshake()
        c.write(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert c.read_until(h.BODY).startswith(b"HTTP/1.1 200 OK\r\n")
        d.wait_log(r"conn=\d+ client=127\.0\.0\.1:%d listener=https accepted$"
                   % silent.getsockname()[1])
        d.expect_open_at_stop = 2           # deliberately left open
        problems = d.stop(sig=sig)
        assert not problems, problems
        # the established client gets close_notify, then EOF
        assert c.read_all() == b""
        assert c.got_close_notify
        assert h.closed_by_peer(silent, h.T(5)) in ("eof", "reset")
    finally:
        c.close()
        silent.close()
    assert d.returncode == 0
    assert "received %s, stopping; 2 connection(s) open" % signal.strsignal(sig) in d.log()
    reasons = sorted(l["reason"] for l in d.close_lines())
    assert reasons == ["shutdown", "shutdown"], reasons
