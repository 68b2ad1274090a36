# SPDX-License-Identifier: BSD-2-Clause
"""client_auth on TLS 1.2 and TLS 1.3 alike: required (no certificate, an
untrusted, a revoked or a too-deep one is refused, the backend is never
contacted, and the reason is logged) and optional (the connection goes on
and the verification result is logged), with subject, issuer, serial,
SHA-256 and verify result in the close line.

In TLS 1.3 the client sends its certificate after the server's Finished,
so a refused client sees the failure on its first read, not in the
handshake.  Two TLS 1.3 shortcomings of mbedTLS 3.6 are pinned as strict
xfails, so they are noticed when they go away: its CertificateRequest
names no acceptable CAs, and the alert of a refused client is sent under
the handshake keys (Mbed-TLS/mbedtls#10877), so the client reports "bad
record mac" instead of the alert."""

import re
import ssl

import pytest

import pki
import tlsterm_harness as h


@pytest.fixture(scope="module")
def pk(tmp_path_factory):
    return pki.client_pki(tmp_path_factory.mktemp("pki"))


def auth_config(pk, backend_port, mode="required", depth=None):
    auth = {"mode": mode, "ca": pk.ca.cert, "crl": pk.crl}
    if depth is not None:
        auth["verify_depth"] = depth
    l = h.listener("https", h.free_port(), "app", cert=("rsa",))
    l["client_auth"] = auth
    return h.config([l], {"app": backend_port})


def get(d, certs, version, leaf=None):
    """One request on a connection pinned to `version`; returns the local
    port.  Raises when the server refuses (in the handshake on TLS 1.2, on
    the first read on TLS 1.3)."""
    ctx = h.pin_version(h.client_context(certs.rsa_cert), version)
    if leaf is not None:
        ctx.load_cert_chain(leaf.chain, leaf.key)
    s = h.tls_connect(d.addr(), None, ctx=ctx)
    try:
        assert s.version() == h.log_version(version)
        assert h.http11_exchange(s) == h.BODY
        return s.getsockname()[1]
    finally:
        s.close()


def refused(d, certs, version, backend, leaf=None):
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        get(d, certs, version, leaf)
    line = d.wait_close(listener="https")
    assert line["reason"].startswith("handshake failed: "), line["line"]
    assert line["tls"] == "-" and line["backend"] == "-", line["line"]
    assert not backend.conns, "the backend was contacted for a refused client"
    return line


def assert_cert_fields(line, leaf, verify, version):
    assert line["tls"] == h.log_version(version), line["line"]
    h.assert_client_cert(line, leaf, verify)


@pytest.fixture
def required(pk, http_backend, tlsterm):
    return tlsterm(auth_config(pk, http_backend.port))


@pytest.fixture
def optional(pk, http_backend, tlsterm):
    return tlsterm(auth_config(pk, http_backend.port, mode="optional"))


V = pytest.mark.parametrize("version", h.versions())


@V
def test_required_good_cert(certs, pk, required, version):
    port = get(required, certs, version, pk.alice)
    assert_cert_fields(required.wait_close(port=port), pk.alice, "ok", version)


@V
def test_required_good_cert_curl(certs, pk, required, version):
    pin = {"1.2": ["--tlsv1.2", "--tls-max", "1.2"], "1.3": ["--tlsv1.3"]}[version]
    r = h.run(["curl", "-sS", *pin, "--cacert", certs.rsa_cert, "--cert", pk.alice.chain,
               "--key", pk.alice.key, "https://localhost:%d/" % required.port()])
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    assert r.stdout == h.BODY
    assert_cert_fields(required.wait_close(listener="https"), pk.alice, "ok", version)


@V
@pytest.mark.parametrize("who,why", [
    (None, "No client certification received"),
    ("mallory", "not correctly signed by the trusted CA"),
    ("bob", "The certificate has been revoked (is on a CRL)"),
])
def test_required_refuses(certs, pk, required, http_backend, version, who, why):
    line = refused(required, certs, version, http_backend, who and getattr(pk, who))
    assert why in line["reason"], line["line"]
    # the listener still serves a good client afterwards
    port = get(required, certs, version, pk.alice)
    assert required.wait_close(port=port)["verify"] == "ok"


@V
@pytest.mark.parametrize("depth,ok", [(1, False), (2, True)])
def test_verify_depth(certs, pk, http_backend, tlsterm, version, depth, ok):
    """carol <- sub CA <- client CA (trusted): 2 steps."""
    d = tlsterm(auth_config(pk, http_backend.port, depth=depth))
    if ok:
        port = get(d, certs, version, pk.carol)
        assert_cert_fields(d.wait_close(port=port), pk.carol, "ok", version)
    else:
        line = refused(d, certs, version, http_backend, pk.carol)
        assert "Certificate verification failed" in line["reason"], line["line"]
        assert re.search(r"verify_depth 1(; we sent alert \w+)?$", line["reason"]), line["line"]


@V
def test_optional_without_cert(certs, pk, optional, version):
    port = get(optional, certs, version)
    line = optional.wait_close(port=port)
    assert (line["tls"], line["client_cert"], line["verify"]) == \
        (h.log_version(version), "-", "none"), line["line"]


@V
def test_optional_good_cert(certs, pk, optional, version):
    port = get(optional, certs, version, pk.alice)
    assert_cert_fields(optional.wait_close(port=port), pk.alice, "ok", version)


@V
@pytest.mark.parametrize("who,why", [("mallory", "not correctly signed by the trusted CA"),
                                     ("bob", "revoked")])
def test_optional_bad_cert_proceeds(certs, pk, optional, version, who, why):
    leaf = getattr(pk, who)
    port = get(optional, certs, version, leaf)
    line = optional.wait_close(port=port)
    assert line["client_cert"] == leaf.subject, line["line"]
    assert why in line["verify"], line["line"]
    assert line["reason"].startswith("done"), line["line"]


@V
def test_optional_too_deep_proceeds(certs, pk, http_backend, tlsterm, version):
    d = tlsterm(auth_config(pk, http_backend.port, mode="optional", depth=1))
    port = get(d, certs, version, pk.carol)
    line = d.wait_close(port=port)
    assert line["client_cert"] == "CN=carol" and "verify_depth 1" in line["verify"], line["line"]


def s_client_out(d, certs, version, *opts):
    r = h.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % d.port(),
               "-servername", "localhost", "-CAfile", certs.rsa_cert,
               h.s_client_version_flag(version), "-ign_eof", *opts],
              input=b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
    return (r.stdout + r.stderr).decode(errors="replace")


def xfail_on_13(reason):
    """Both versions, with TLS 1.3 a strict xfail (skipped without it)."""
    return [h.version_param("1.2"),
            pytest.param("1.3", id="tls1.3", marks=[
                pytest.mark.skipif(not h.HAVE_TLS13, reason=h.NO_TLS13),
                pytest.mark.xfail(strict=True, reason=reason)])]


@pytest.mark.parametrize("version", xfail_on_13(
    "mbedTLS 3.6's TLS 1.3 CertificateRequest has no certificate_authorities extension"))
def test_required_names_acceptable_cas(certs, pk, required, version):
    out = s_client_out(required, certs, version, "-cert", pk.alice.chain, "-key", pk.alice.key)
    assert "New, %s, " % h.log_version(version) in out, out
    assert_cert_fields(required.wait_close(listener="https"), pk.alice, "ok", version)
    assert "Acceptable client certificate CA names" in out, out
    names = out.split("Acceptable client certificate CA names", 1)[1].split("---", 1)[0]
    assert re.search(r"^CN ?= ?tlsterm test client CA$", names, re.M), names


@pytest.mark.parametrize("version", xfail_on_13(
    "Mbed-TLS/mbedtls#10877: the alert after the server's Finished goes out under the "
    "handshake keys"))
def test_refused_client_reads_the_alert(certs, pk, required, version):
    """A client with an untrusted certificate is told why by an alert it
    can read (unknown_ca), not left with a record it cannot decrypt."""
    out = s_client_out(required, certs, version, "-cert", pk.mallory.chain,
                       "-key", pk.mallory.key)
    line = required.wait_close(listener="https")
    assert "not correctly signed by the trusted CA" in line["reason"], line["line"]
    assert h.BODY.decode() not in out, out
    assert "bad record mac" not in out, out
    assert re.search(r"alert unknown ca\b.*SSL alert number 48", out), out
