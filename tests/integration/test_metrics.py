# SPDX-License-Identifier: BSD-2-Clause
"""/metrics (issue 16) after known traffic: every counter says exactly
what happened (handshakes by version, suite and resumption, failed
handshakes, the duration histogram, bytes, backend connects and their
failures, refusals at max_connections), the certificate expiry gauge
matches the certificate, /status agrees with /metrics, and promtool
accepts the document.  The parser and the admin helpers are
test_admin.py's."""

import json
import re
import shutil
import socket
import ssl
import subprocess
import time

import pytest

import tlsterm_harness as h
from test_admin import (Metrics, admin_addr, admin_config, admin_get, html_table, scrape,
                        status_json, wait_closed)

LE = ["0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5",
      "5", "10", "+Inf"]
REFUSAL_REASONS = {"max_connections", "fd_exhaustion", "proxy_refused", "per_address"}
REQUEST = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"     # what h.http11_exchange sends


def iana_name(openssl_name):
    """The IANA name of a TLS 1.2 suite, by `openssl ciphers -stdname`."""
    r = h.run(["openssl", "ciphers", "-stdname", openssl_name])
    assert r.returncode == 0, r.stderr
    for line in r.stdout.decode().splitlines():
        m = re.match(r"^(\S+)\s+-\s+(\S+)\s", line)
        if m and m.group(2) == openssl_name:
            return m.group(1)
    raise AssertionError("no IANA name for %s in:\n%s" % (openssl_name, r.stdout.decode()))


def tls12_ctx(certs):
    ctx = h.client_context(certs.rsa_cert)
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def exchange(d, ctx, session=None):
    """A TLS connection with one keep-alive GET; returns (socket's session,
    negotiated OpenSSL cipher name, reused?)."""
    raw = socket.create_connection(d.addr(), timeout=h.T(10))
    s = ctx.wrap_socket(raw, server_hostname="localhost", session=session)
    try:
        assert h.http11_exchange(s) == h.BODY
        return s.session, s.cipher()[0], s.session_reused
    finally:
        s.close()


def plain_http(d):
    """Plain HTTP to the TLS port: a handshake that fails."""
    s = socket.create_connection(d.addr(), timeout=h.T(10))
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        h.recv_all(s)
    finally:
        s.close()


def truncated_hello(d):
    """Half a ClientHello, then FIN: a handshake that fails."""
    s = socket.create_connection(d.addr(), timeout=h.T(10))
    try:
        hello = h.client_hello()
        s.sendall(hello[:len(hello) // 2])
        s.shutdown(socket.SHUT_WR)
        h.closed_by_peer(s, h.T(10))
    finally:
        s.close()


def test_counters_after_known_traffic(certs, http_backend, tlsterm):
    t_start = int(time.time())
    d = tlsterm(admin_config(h.one_listener(http_backend.port)))
    probes = len(d.probe_ports)
    ctx = tls12_ctx(certs)
    server = "127.0.0.1:%d" % http_backend.port

    # 5 full handshakes, then 2 resumed with the first one's session
    suites = set()
    sess, suite, reused = exchange(d, ctx)
    assert not reused
    suites.add(suite)
    for _ in range(4):
        _, suite, reused = exchange(d, ctx)
        assert not reused
        suites.add(suite)
    for _ in range(2):
        _, suite, reused = exchange(d, ctx, session=sess)
        assert reused, "the client did not resume"
        suites.add(suite)
    assert len(suites) == 1, suites
    # 2 that fail
    plain_http(d)
    truncated_hello(d)
    wait_closed(d, 9)
    http_backend.wait_conns(7)

    m = scrape(d)
    # handshakes
    ok = m.find("tlsterm_handshakes_total", listener="https", result="ok")
    assert sum(v for _, v in ok) == 7, ok
    assert {l["version"] for l, _ in ok} == {"TLSv1.2"}, ok
    assert {l["suite"] for l, _ in ok} == {iana_name(suites.pop())}, ok
    assert m.total("tlsterm_handshakes_total", listener="https", result="ok", resumed="true") == 2
    assert m.total("tlsterm_handshakes_total", listener="https", result="ok", resumed="false") == 5
    assert m.one("tlsterm_handshakes_total", listener="https", result="failed", version="",
                 suite="", resumed="false") == 2
    assert {l["result"] for l, _ in m.find("tlsterm_handshakes_total")} == {"ok", "failed"}
    # their durations
    buckets, total_s, count = m.histogram("tlsterm_handshake_duration_seconds", listener="https")
    assert count == 7
    assert [le for le, _ in buckets] == LE
    counts = [v for _, v in buckets]
    assert counts == sorted(counts), "buckets not cumulative: %r" % buckets
    assert counts[-1] == count
    assert 0 < total_s < h.T(7 * 10)
    # connections
    assert m.one("tlsterm_connections_accepted_total", listener="https") == 9 + probes
    assert m.one("tlsterm_connections_open", listener="https") == 0
    refused = m.find("tlsterm_connections_refused_total", listener="https")
    assert {l["reason"] for l, _ in refused} == REFUSAL_REASONS and all(v == 0 for _, v in refused)
    # bytes: a plain relay passes on exactly what each side sent
    assert m.one("tlsterm_received_bytes_total", listener="https") == 7 * len(REQUEST)
    assert m.one("tlsterm_sent_bytes_total", listener="https") == \
        sum(c["sent"] for c in http_backend.conns)
    assert m.one("tlsterm_http_requests_total", listener="https") == 0   # no forwarded_headers
    # the backend
    assert m.one("tlsterm_backend_connects_total", backend="app", server=server) == 7
    assert m.one("tlsterm_backend_connect_failures_total", backend="app", server=server) == 0
    cbuckets, _, ccount = m.histogram("tlsterm_backend_connect_duration_seconds", backend="app",
                                      server=server)
    assert ccount == 7 and [le for le, _ in cbuckets] == LE and cbuckets[-1][1] == 7
    assert m.one("tlsterm_server_up", backend="app", server=server) == 1
    # the process
    (info, one), = m.find("tlsterm_build_info")
    assert one == 1 and info["mbedtls"] == "%d.%d.%d" % h.MBEDTLS_VERSION, info
    assert re.search(r"\b%s\b" % re.escape(info["version"]), h._V), (info, h._V)
    assert t_start - 2 <= m.one("tlsterm_start_time_seconds") <= time.time()
    assert m.one("tlsterm_generation") == 1
    assert m.one("tlsterm_draining") == 0
    assert {l["worker"]: v for l, v in m.find("tlsterm_worker_up")} == {"0": 1, "1": 1}
    assert m.one("tlsterm_reloads_total", result="success") == 0
    assert m.one("tlsterm_reloads_total", result="failure") == 0

    # /status says the same
    st = status_json(d)
    (lst,) = st["listeners"]
    assert (lst["accepted"], lst["open"], lst["handshakes"], lst["handshake_failures"]) == \
        (9 + probes, 0, 7, 2), lst
    assert lst["received_bytes"] == 7 * len(REQUEST)
    assert lst["sent_bytes"] == m.one("tlsterm_sent_bytes_total", listener="https")
    assert st["connections"]["accepted"] == 9 + probes and st["connections"]["open"] == 0
    (srv,) = st["backends"][0]["servers"]
    assert (srv["connects"], srv["connect_failures"], srv["up"], srv["active"]) == (7, 0, True, 0)


def test_failed_backend_connects(certs, http_backend, tlsterm):
    dead = h.free_port()                # nothing listens there
    cfg = h.config([h.listener("https", h.free_port(), "app"),
                    h.listener("down", h.free_port(), "dead")],
                   {"app": http_backend.port, "dead": dead})
    d = tlsterm(admin_config(cfg))
    c = h.MemTLS(d.addr("down"), certs.rsa_cert)
    try:
        c.handshake()
        assert c.read_all() == b""
    finally:
        c.close()
    wait_closed(d, 1, listener="down")
    assert h.https_get(d.addr("https"), certs.rsa_cert)[:2] == (200, h.BODY)
    wait_closed(d, 1, listener="https")
    m = scrape(d)
    deadsrv = "127.0.0.1:%d" % dead
    assert m.one("tlsterm_backend_connects_total", backend="dead", server=deadsrv) == 1
    assert m.one("tlsterm_backend_connect_failures_total", backend="dead", server=deadsrv) == 1
    assert m.histogram("tlsterm_backend_connect_duration_seconds", backend="dead",
                       server=deadsrv)[2] == 0
    assert m.one("tlsterm_server_up", backend="dead", server=deadsrv) == 0
    # the other backend is not touched
    live = "127.0.0.1:%d" % http_backend.port
    assert m.one("tlsterm_server_up", backend="app", server=live) == 1
    assert m.one("tlsterm_backend_connects_total", backend="app", server=live) == 1
    assert m.one("tlsterm_backend_connect_failures_total", backend="app", server=live) == 0
    # a handshake that succeeded although the backend is down
    assert m.total("tlsterm_handshakes_total", listener="down", result="ok") == 1
    # /status and its page show it down
    st = status_json(d)
    servers = {(b["name"], s["address"]): s for b in st["backends"] for s in b["servers"]}
    assert servers[("dead", deadsrv)]["up"] is False
    assert servers[("dead", deadsrv)]["connect_failures"] == 1
    assert servers[("app", live)]["up"] is True
    page = admin_get(admin_addr(d), "/status.html").text()
    rows = {r for r in html_table(page, "servers") if "<td" in r}
    (row_dead,) = [r for r in rows if deadsrv in r]
    (row_live,) = [r for r in rows if live in r]
    assert "DOWN" in row_dead and "UP" in row_live and "DOWN" not in row_live, rows


def cert_facts(path):
    """(notAfter as unix time, serial as upper-case hex) by openssl x509."""
    r = h.run(["openssl", "x509", "-in", path, "-noout", "-enddate", "-serial"])
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    end = re.search(r"^notAfter=(.*)$", out, re.M).group(1)
    serial = re.search(r"^serial=([0-9A-Fa-f]+)$", out, re.M).group(1).upper()
    return int(ssl.cert_time_to_seconds(end)), serial


def cert_series(m, listener="https"):
    """{serial without leading zeros: (names, not_after)} of the gauge."""
    out = {}
    for l, v in m.find("tlsterm_certificate_not_after_seconds", listener=listener):
        assert re.fullmatch(r"[0-9A-F]+", l["serial"]), "serial %r: not upper-case hex" % l["serial"]
        out[l["serial"].lstrip("0")] = (l["names"], v)
    return out


def test_certificate_not_after(certs, http_backend, tlsterm):
    d = tlsterm(admin_config(h.one_listener(http_backend.port, cert=["rsa", "ec"])))
    rsa_end, rsa_serial = cert_facts(certs.rsa_cert)
    ec_end, ec_serial = cert_facts(certs.ec_cert)
    # the test certificates name DNS:localhost (and two IP addresses, which are not DNS names)
    assert cert_series(scrape(d)) == {rsa_serial.lstrip("0"): ("localhost", rsa_end),
                                      ec_serial.lstrip("0"): ("localhost", ec_end)}
    st = status_json(d)
    by_serial = {c["serial"].lstrip("0"): c for c in st["certificates"]}
    assert set(by_serial) == {rsa_serial.lstrip("0"), ec_serial.lstrip("0")}
    c = by_serial[rsa_serial.lstrip("0")]
    assert c["listener"] == "https" and c["names"] == ["localhost"]
    assert c["not_after"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(rsa_end))
    # the test certificates are valid for 30 days from their creation
    assert c["days_left"] in (29, 30), c
    # after a reload, only what is loaded now
    cfg = json.loads(json.dumps(d.cfg))
    cfg["listeners"][0]["certificates"] = ["ec"]
    d.rewrite(cfg)
    d.reload()
    assert cert_series(scrape(d)) == {ec_serial.lstrip("0"): ("localhost", ec_end)}
    assert [c["serial"].lstrip("0") for c in status_json(d)["certificates"]] == \
        [ec_serial.lstrip("0")]


def test_max_connections_refusal_is_counted(certs, http_backend, tlsterm):
    d = tlsterm(admin_config(h.one_listener(http_backend.port, limits={"max_connections": 1})))
    held = h.tls_connect(d.addr(), certs.rsa_cert)
    try:
        assert h.http11_exchange(held) == h.BODY
        extra = socket.create_connection(d.addr(), timeout=h.T(5))
        try:
            assert h.hello_then_closed(extra, h.T(2)) in ("eof", "reset")
        finally:
            extra.close()
        d.wait_log(r" warn listener=https: max_connections \(1\) reached, refused 1 connection")
        m = scrape(d)
        assert m.one("tlsterm_connections_refused_total", listener="https",
                     reason="max_connections") == 1
        for reason in REFUSAL_REASONS - {"max_connections"}:
            assert m.one("tlsterm_connections_refused_total", listener="https",
                         reason=reason) == 0
        assert m.one("tlsterm_connections_open", listener="https") == 1
        # a refused connection never got to the handshake
        assert m.one("tlsterm_handshakes_total", listener="https", result="failed") == 0
    finally:
        held.close()
    wait_closed(d, 1)
    m = scrape(d)
    assert m.one("tlsterm_connections_open", listener="https") == 0
    assert m.one("tlsterm_connections_refused_total", listener="https",
                 reason="max_connections") == 1


PROMTOOL = shutil.which("promtool")


@pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian package prometheus) is not "
                    "installed; CI installs it")
def test_promtool_accepts_the_scrape(tmp_path, certs, http_backend, tlsterm):
    dead = h.free_port()
    cfg = h.config([h.listener("https", h.free_port(), "app", cert=("rsa", "ec")),
                    h.listener("down", h.free_port(), "dead")],
                   {"app": http_backend.port, "dead": dead})
    d = tlsterm(admin_config(cfg))
    # some of everything: handshakes, a failed one, a failed connect
    exchange(d, h.both_certs_ctx(certs))
    plain_http(d)
    c = h.MemTLS(d.addr("down"), certs.rsa_cert)
    try:
        c.handshake()
        c.read_all()
    finally:
        c.close()
    wait_closed(d, 2)
    wait_closed(d, 1, listener="down")
    text = admin_get(admin_addr(d), "/metrics").text()
    Metrics(text)
    path = tmp_path / "scrape.txt"
    path.write_text(text)
    with open(path, "rb") as f:
        r = subprocess.run([PROMTOOL, "check", "metrics"], stdin=f, capture_output=True,
                           timeout=h.T(60))
    out = (r.stdout + r.stderr).decode(errors="replace")
    print(out)
    assert r.returncode == 0, "promtool check metrics (exit %d):\n%s" % (r.returncode, out)
