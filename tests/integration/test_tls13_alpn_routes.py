# SPDX-License-Identifier: BSD-2-Clause
"""ALPN and per-SNI routes on TLS 1.2 and TLS 1.3 alike: the server's
preference among the offered protocols wins and is logged, no overlap is
alert 120 with no backend contacted, and after the handshake the SNI picks
the backend (exact, wildcard, else the listener's)."""

import ssl

import pytest

import pki
import tlsterm_harness as h


@pytest.fixture(scope="module")
def pk(tmp_path_factory):
    ca = pki.CA(tmp_path_factory.mktemp("pki"), "root")
    return ca, ca.issue("multi", sans=["localhost", "api.example.com", "*.example.org"])


@pytest.fixture
def routed(pk, backend, tlsterm):
    """Listener with alpn [h2, http/1.1] and routes: api.example.com -> api,
    *.example.org -> org, anything else -> app."""
    ca, leaf = pk
    bodies = {n: ("backend %s\n" % n).encode() for n in ("app", "api", "org")}
    backends = {n: backend(h.HttpBackend, body=b) for n, b in bodies.items()}
    l = {"name": "https", "listen": ["127.0.0.1:%d" % h.free_port()],
         "certificates": [leaf.entry()], "backend": "app", "alpn": ["h2", "http/1.1"],
         "routes": [{"sni": "api.example.com", "backend": "api"},
                    {"sni": "*.example.org", "backend": "org"}]}
    d = tlsterm(h.config([l], {n: b.port for n, b in backends.items()}))
    return d, backends, bodies


@pytest.mark.parametrize("version", h.versions())
@pytest.mark.parametrize("offer,want", [("http/1.1,h2", "h2"), ("http/1.1", "http/1.1"),
                                        ("spdy/3.1,http/1.1", "http/1.1"), (None, "-")])
def test_alpn(pk, routed, version, offer, want):
    ca, _ = pk
    d, _, _ = routed
    opts = ["-alpn", offer] if offer else []
    rc, out, _ = pki.s_client(d.addr(), "localhost", "-CAfile", ca.cert,
                              h.s_client_version_flag(version), *opts, timeout=h.T(30))
    assert rc == 0, out
    assert "New, %s, " % h.log_version(version) in out, out
    assert ("ALPN protocol: %s\n" % want if offer else "No ALPN negotiated") in out, out
    line = d.wait_close(listener="https")
    assert (line["alpn"], line["tls"]) == (want, h.log_version(version)), line["line"]


@pytest.mark.parametrize("version", h.versions())
def test_alpn_no_overlap_alert_120(pk, routed, version):
    ca, _ = pk
    d, backends, _ = routed
    rc, out, _ = pki.s_client(d.addr(), "localhost", "-CAfile", ca.cert,
                              h.s_client_version_flag(version), "-alpn", "spdy/3.1,imap",
                              timeout=h.T(30))
    assert rc != 0, out
    assert "no application protocol" in out and "alert number 120" in out, out
    line = d.wait_close(listener="https")
    assert line["reason"].startswith("handshake failed"), line["line"]
    assert (line["alpn"], line["tls"], line["backend"]) == ("-", "-", "-"), line["line"]
    assert not any(b.conns for b in backends.values()), "a backend was contacted"
    # and in Python's terms
    ctx = h.pin_version(h.client_context(ca.cert), version)
    ctx.set_alpn_protocols(["smtp"])
    with pytest.raises(ssl.SSLError, match="NO_APPLICATION_PROTOCOL|no application protocol"):
        h.tls_connect(d.addr(), None, ctx=ctx).close()


@pytest.mark.parametrize("version", h.versions())
@pytest.mark.parametrize("sni,want", [("api.example.com", "api"), ("API.Example.COM", "api"),
                                      ("x.example.org", "org"), ("a.b.example.org", "app"),
                                      ("localhost", "app"), (None, "app")],
                         ids=lambda v: "nosni" if v is None else str(v))
def test_route_by_sni(pk, routed, version, sni, want):
    ca, _ = pk
    d, backends, bodies = routed
    rc, out, _ = pki.s_client(d.addr(), sni, "-CAfile", ca.cert, h.s_client_version_flag(version),
                              "-ign_eof", "-alpn", "http/1.1",
                              input=b"GET / HTTP/1.0\r\nHost: x\r\n\r\n", timeout=h.T(30))
    assert rc == 0, out
    got = [n for n, body in bodies.items() if body.decode() in out]
    assert got == [want], "SNI %r reached %s, expected %s:\n%s" % (sni, got, want, out)
    line = d.wait_close(listener="https")
    assert line["backend"] == "127.0.0.1:%d" % backends[want].port, line["line"]
    assert (line["sni"], line["tls"], line["alpn"]) == (sni or "-", h.log_version(version),
                                                        "http/1.1"), line["line"]


@pytest.mark.parametrize("version", h.versions())
def test_route_keepalive_python(pk, routed, version):
    ca, _ = pk
    d, backends, bodies = routed
    ctx = h.pin_version(h.client_context(ca.cert), version)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    s = h.tls_connect(d.addr(), None, server_hostname="z.example.org", ctx=ctx)
    try:
        assert s.selected_alpn_protocol() == "h2"        # not really h2: the backend is HTTP/1
        for _ in range(3):
            assert h.http11_exchange(s) == bodies["org"]
        port = s.getsockname()[1]
    finally:
        s.close()
    line = d.wait_close(port=port)
    assert line["backend"] == "127.0.0.1:%d" % backends["org"].port, line["line"]
    assert backends["org"].requests == 3 and backends["app"].requests == 0
