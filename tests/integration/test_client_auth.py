# SPDX-License-Identifier: BSD-2-Clause
"""client_auth: required (no certificate, an untrusted, a revoked or a
too-deep one fails the handshake and the reason is logged) and optional
(the connection proceeds and the verification result is logged); the
close line carries subject, issuer, serial, SHA-256 and verify result."""

import re
import ssl

import pytest

import pki
import tlsterm_harness as h


@pytest.fixture(scope="module")
def pk(tmp_path_factory):
    return pki.client_pki(tmp_path_factory.mktemp("pki"))


def auth_config(certs, pk, backend_port, mode="required", crl=True, depth=None, ca=None):
    auth = {"mode": mode, "ca": ca or pk.ca.cert}
    if crl:
        auth["crl"] = pk.crl
    if depth is not None:
        auth["verify_depth"] = depth
    l = h.listener("https", h.free_port(), "app", cert=("rsa",))
    l["client_auth"] = auth
    return h.config([l], {"app": backend_port})


def client_ctx(certs, leaf=None):
    ctx = h.client_context(certs.rsa_cert)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2     # failures show in the handshake
    if leaf is not None:
        ctx.load_cert_chain(leaf.chain, leaf.key)
    return ctx


def get(d, certs, leaf=None):
    """One request; returns the local port (raises on a failed handshake)."""
    s = h.tls_connect(d.addr(), certs.rsa_cert, ctx=client_ctx(certs, leaf))
    try:
        assert h.http11_exchange(s) == h.BODY
        return s.getsockname()[1]
    finally:
        s.close()


def refused(d, certs, leaf=None):
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        get(d, certs, leaf)
    line = d.wait_close(listener="https")
    assert line["reason"].startswith("handshake failed: "), line["line"]
    assert line["tls"] == "-" and line["backend"] == "-", line["line"]
    return line


@pytest.fixture
def required(certs, pk, http_backend, tlsterm):
    return tlsterm(auth_config(certs, pk, http_backend.port))


def test_required_good_cert(certs, pk, required):
    port = get(required, certs, pk.alice)
    line = required.wait_close(port=port)
    h.assert_client_cert(line, pk.alice, "ok")
    assert line["tls"] == "TLSv1.2"             # client_ctx pins it (TLS 1.3: test_tls13_client_auth.py)


def test_required_good_cert_curl(certs, pk, required):
    r = h.run(["curl", "-sS", "--cacert", certs.rsa_cert, "--cert", pk.alice.chain,
               "--key", pk.alice.key, "https://localhost:%d/" % required.port()])
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    assert r.stdout == h.BODY
    h.assert_client_cert(required.wait_close(listener="https"), pk.alice, "ok")


def test_required_advertises_ca(certs, pk, required):
    """TLS 1.2's CertificateRequest names the acceptable CAs (TLS 1.3:
    test_tls13_client_auth.py)."""
    r = h.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % required.port(),
               "-servername", "localhost", "-CAfile", certs.rsa_cert, "-tls1_2",
               "-cert", pk.alice.chain, "-key", pk.alice.key], input=b"")
    out = r.stdout.decode(errors="replace")
    assert r.returncode == 0, out
    names = out.split("Acceptable client certificate CA names", 1)[1].split("---", 1)[0]
    assert re.search(r"^CN ?= ?tlsterm test client CA$", names, re.M), names    # OpenSSL 3.0 | 3.5
    h.assert_client_cert(required.wait_close(listener="https"), pk.alice, "ok")


def test_required_no_cert(certs, pk, required, http_backend):
    line = refused(required, certs)
    assert "No client certification received" in line["reason"], line["line"]
    assert not http_backend.conns


def test_required_other_ca(certs, pk, required):
    line = refused(required, certs, pk.mallory)
    assert "not correctly signed by the trusted CA" in line["reason"], line["line"]


def test_required_revoked(certs, pk, required):
    line = refused(required, certs, pk.bob)
    assert "The certificate has been revoked (is on a CRL)" in line["reason"], line["line"]


def test_required_unrevoked_with_crl(certs, pk, required):
    """The CRL lists bob only: alice is still fine (above) and so is a
    second certificate of the same CA."""
    port = get(required, certs, pk.alice)
    assert required.wait_close(port=port)["verify"] == "ok"


def test_required_without_crl_accepts_revoked(certs, pk, http_backend, tlsterm):
    d = tlsterm(auth_config(certs, pk, http_backend.port, crl=False))
    port = get(d, certs, pk.bob)
    h.assert_client_cert(d.wait_close(port=port), pk.bob, "ok")


@pytest.mark.parametrize("depth,ok", [(1, False), (2, True), (None, True)])
def test_verify_depth(certs, pk, http_backend, tlsterm, depth, ok):
    """carol <- sub CA <- client CA (trusted): 2 steps."""
    d = tlsterm(auth_config(certs, pk, http_backend.port, depth=depth))
    if ok:
        port = get(d, certs, pk.carol)
        h.assert_client_cert(d.wait_close(port=port), pk.carol, "ok")
    else:
        line = refused(d, certs, pk.carol)
        # a verification failure, with its reason appended
        assert "Certificate verification failed" in line["reason"], line["line"]
        assert re.search(r"verify_depth 1(; we sent alert \w+)?$", line["reason"]), line["line"]
    # a certificate straight from the CA is within any depth >= 1
    port = get(d, certs, pk.alice)
    assert d.wait_close(port=port)["verify"] == "ok"


@pytest.fixture
def optional(certs, pk, http_backend, tlsterm):
    return tlsterm(auth_config(certs, pk, http_backend.port, mode="optional"))


def test_optional_no_cert(certs, pk, optional):
    port = get(optional, certs)
    line = optional.wait_close(port=port)
    assert line["client_cert"] == "-", line["line"]
    assert line["verify"] == "none", line["line"]
    assert re.search(r' client_cert=- verify="none" backend=', line["line"]), line["line"]


def test_optional_good_cert(certs, pk, optional):
    port = get(optional, certs, pk.alice)
    h.assert_client_cert(optional.wait_close(port=port), pk.alice, "ok")


def test_optional_untrusted_cert_proceeds(certs, pk, optional):
    port = get(optional, certs, pk.mallory)
    line = optional.wait_close(port=port)
    assert line["client_cert"] == "CN=mallory", line["line"]
    assert line["issuer"] == "CN=some other CA", line["line"]
    assert "not correctly signed by the trusted CA" in line["verify"], line["line"]
    assert line["reason"].startswith("done"), line["line"]


def test_optional_revoked_cert_proceeds(certs, pk, optional):
    port = get(optional, certs, pk.bob)
    line = optional.wait_close(port=port)
    assert line["client_cert"] == "CN=bob", line["line"]
    assert "revoked" in line["verify"], line["line"]


def test_optional_too_deep_proceeds(certs, pk, http_backend, tlsterm):
    d = tlsterm(auth_config(certs, pk, http_backend.port, mode="optional", depth=1))
    port = get(d, certs, pk.carol)
    line = d.wait_close(port=port)
    assert line["client_cert"] == "CN=carol", line["line"]
    assert line["issuer"] == pk.sub.subject, line["line"]
    assert "verify_depth 1" in line["verify"], line["line"]


def test_no_client_auth_no_cert_fields(certs, pk, http_backend, tlsterm):
    d = tlsterm(h.one_listener(http_backend.port))
    port = get(d, certs, pk.alice)      # offered, never asked for
    line = d.wait_close(port=port)
    assert "client_cert" not in line and "verify" not in line, line["line"]


def test_missing_ca_is_a_config_error(certs, pk, tmp_path):
    cfg = auth_config(certs, pk, h.free_port())
    del cfg["listeners"][0]["client_auth"]["ca"]
    cfg["listeners"][0]["certificates"] = [{"cert": certs.rsa_cert, "key": certs.rsa_key}]
    p = str(tmp_path / "t.yaml")
    rc, _, err = h.check_config(p, cfg)
    assert rc == 1, err
    assert re.search(re.escape(p) + r":\d+:\d+: .*\bca\b", err), err
