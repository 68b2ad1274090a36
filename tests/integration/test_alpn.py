# SPDX-License-Identifier: BSD-2-Clause
"""ALPN: the server's preference among the protocols both sides offer is
chosen and logged; a client with no protocol in common gets the
no_application_protocol alert (120); a listener without `alpn` ignores the
extension."""

import ssl

import pytest

import tlsterm_harness as h


def alpn_config(backend_port, alpn=("h2", "http/1.1")):
    l = h.listener("https", h.free_port(), "app", cert=("rsa",))
    if alpn is not None:
        l["alpn"] = list(alpn)
    return h.config([l], {"app": backend_port})


@pytest.fixture
def daemon(http_backend, tlsterm):
    return tlsterm(alpn_config(http_backend.port))


def s_client(certs, d, *opts):
    r = h.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % d.port(),
               "-servername", "localhost", "-CAfile", certs.rsa_cert, *opts], input=b"")
    return r.returncode, (r.stdout + r.stderr).decode(errors="replace")


@pytest.mark.parametrize("offer,want", [
    ("h2,http/1.1", "h2"),
    ("http/1.1,h2", "h2"),              # the server's preference wins
    ("http/1.1", "http/1.1"),
    ("spdy/3.1,http/1.1", "http/1.1"),
    ("h2", "h2"),
])
def test_alpn_negotiated(certs, daemon, offer, want):
    rc, out = s_client(certs, daemon, "-alpn", offer)
    assert rc == 0, out
    assert "ALPN protocol: %s\n" % want in out, out
    line = daemon.wait_close(listener="https")
    assert line["alpn"] == want, line["line"]


def test_alpn_python_client(certs, daemon):
    ctx = h.client_context(certs.rsa_cert)
    ctx.set_alpn_protocols(["http/1.1"])
    s = h.tls_connect(daemon.addr(), certs.rsa_cert, ctx=ctx)
    try:
        assert s.selected_alpn_protocol() == "http/1.1"
        assert h.http11_exchange(s) == h.BODY
        port = s.getsockname()[1]
    finally:
        s.close()
    assert daemon.wait_close(port=port)["alpn"] == "http/1.1"


def test_alpn_curl_http11(certs, daemon):
    r = h.run(["curl", "-sS", "--http1.1", "--cacert", certs.rsa_cert,
               "https://localhost:%d/" % daemon.port()])
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    assert r.stdout == h.BODY
    line = daemon.wait_close(listener="https")
    assert line["alpn"] == "http/1.1", line["line"]


def test_client_without_alpn(certs, daemon):
    rc, out = s_client(certs, daemon)
    assert rc == 0, out
    assert "No ALPN negotiated" in out, out
    line = daemon.wait_close(listener="https")
    assert line["alpn"] == "-", line["line"]
    assert line["tls"] == h.DEFAULT_TLS, line["line"]


def test_no_overlap_alert_120(certs, daemon, http_backend):
    rc, out = s_client(certs, daemon, "-alpn", "spdy/3.1,imap")
    assert rc != 0, out
    assert "no application protocol" in out and "alert number 120" in out, out
    line = daemon.wait_close(listener="https")
    assert line["reason"].startswith("handshake failed"), line["line"]
    assert line["alpn"] == "-" and line["tls"] == "-", line["line"]
    assert line["backend"] == "-", line["line"]
    assert not http_backend.conns, "the backend was contacted after a failed handshake"


def test_no_overlap_python(certs, daemon):
    ctx = h.client_context(certs.rsa_cert)
    ctx.set_alpn_protocols(["smtp"])
    with pytest.raises(ssl.SSLError, match="NO_APPLICATION_PROTOCOL|no application protocol"):
        h.tls_connect(daemon.addr(), certs.rsa_cert, ctx=ctx).close()
    line = daemon.wait_close(listener="https")
    assert line["reason"].startswith("handshake failed"), line["line"]


def test_listener_without_alpn(certs, http_backend, tlsterm):
    d = tlsterm(alpn_config(http_backend.port, alpn=None))
    rc, out = s_client(certs, d, "-alpn", "h2,http/1.1")
    assert rc == 0, out
    assert "No ALPN negotiated" in out, out
    assert d.wait_close(listener="https")["alpn"] == "-"
