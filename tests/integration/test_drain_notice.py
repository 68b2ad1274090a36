# SPDX-License-Identifier: BSD-2-Clause
"""timeouts.drain_notice: on SIGTERM the admin listener's /healthz fails
first while the listeners still accept and serve, so a load balancer takes
the instance out before anything is refused; only then does the drain
close the listeners (tlsterm.8 SHUTDOWN, step 0)."""

import signal
import socket
import urllib.error
import urllib.request

import tlsterm_harness as h


def healthz(port):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port,
                                    timeout=h.T(5)) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def notice_cfg(backend_port, notice):
    cfg = h.one_listener(backend_port, timeouts={"drain_notice": notice, "drain": "10s"})
    admin = h.free_port()
    cfg["admin"] = {"listen": "127.0.0.1:%d" % admin}
    return cfg, admin


def test_healthz_fails_first_while_still_accepting(certs, http_backend, tlsterm):
    # long enough that the checks below run inside it, even under ASan
    cfg, admin = notice_cfg(http_backend.port, "%ds" % int(h.T(6)))
    d = tlsterm(cfg)
    assert healthz(admin) == (200, b"ok\n")
    d.send_signal(signal.SIGTERM)
    d.wait_log(r"/healthz answers 503 for \d+ ms \(timeouts\.drain_notice\)")
    assert healthz(admin) == (503, b"draining\n")
    # still accepting: a new client is served, not refused
    status, body, _ = h.https_get(d.addr(), certs.rsa_cert)
    assert status == 200 and body
    assert "drain notice over" not in d.log(), "the notice ended before the checks"
    d.wait_log(r"drain notice over, stopping; \d+ connection\(s\) open", timeout=h.T(20))
    # now the listeners are closed
    h.wait_until(lambda: refused(d.addr()), h.T(10), "the listener to close after the notice")
    d.expect_open_at_stop = 0
    assert not d.stop(send=False)


def refused(addr):
    try:
        socket.create_connection(addr, timeout=h.T(2)).close()
        return False
    except ConnectionRefusedError:
        return True


def test_second_signal_during_the_notice_stops_at_once(http_backend, tlsterm):
    cfg, admin = notice_cfg(http_backend.port, "60s")
    d = tlsterm(cfg)
    d.send_signal(signal.SIGTERM)
    d.wait_log(r"/healthz answers 503")
    d.send_signal(signal.SIGTERM)
    d.wait_log(r"second stop signal; closing 0 connection")
    d.expect_open_at_stop = None        # no drain line: it never started
    assert not d.stop(send=False, timeout=h.T(10))
    assert "drain notice over" not in d.log()


def test_without_notice_healthz_fails_during_the_drain(certs, http_backend, tlsterm):
    """The default: the drain starts at once, /healthz says 503 while an
    established connection finishes."""
    cfg, admin = notice_cfg(http_backend.port, "0s")
    d = tlsterm(cfg)
    c = h.MemTLS(d.addr(), certs.rsa_cert)
    try:
        c.handshake()
        d.send_signal(signal.SIGTERM)
        d.wait_log(r"received \w+, stopping; 1 connection\(s\) open")
        assert healthz(admin) == (503, b"draining\n")
        assert c.get().startswith(b"HTTP/1.1 200 OK\r\n")
    finally:
        c.close()
    d.expect_open_at_stop = 1
    assert not d.stop(send=False)


def test_drain_notice_zero_is_allowed_but_not_negative(tmp_path, certs):
    base = (
        "timeouts: {drain_notice: %s}\n"
        "listeners:\n"
        "  - {name: https, listen: \"127.0.0.1:%d\", backend: app,\n"
        "     certificates: [{cert: %s, key: %s}]}\n"
        "backends: {app: {servers: [\"127.0.0.1:%d\"]}}\n")
    for value, ok in (("0s", True), ("5s", True), ("-1s", False), ("soon", False)):
        p = tmp_path / "c.yaml"
        p.write_text(base % (value, h.free_port(), certs.rsa_cert, certs.rsa_key, h.free_port()))
        r = h.run([h.BIN, "-t", "-c", str(p)], timeout=h.T(30))
        assert (r.returncode == 0) == ok, (value, r.stdout, r.stderr)
        if not ok:
            assert b"invalid drain_notice" in r.stderr, r.stderr
