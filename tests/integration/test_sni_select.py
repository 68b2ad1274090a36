# SPDX-License-Identifier: BSD-2-Clause
"""SNI picks the certificate: exact name first, then a wildcard of one
label, ignoring case; the first entry serves clients without SNI or with an
unknown name; names come from subjectAltName (the CN only without one).
With sni_strict an unknown or missing name fails the handshake."""

import pytest

import pki
import tlsterm_harness as h


@pytest.fixture(scope="module")
def pk(tmp_path_factory):
    ca = pki.CA(tmp_path_factory.mktemp("pki"), "root")

    class P:
        pass
    p = P()
    p.ca = ca
    p.default = ca.issue("default", sans=["default.test"])
    p.www = ca.issue("www", sans=["www.example.com", "alt.example.com"])
    p.wild = ca.issue("wild", sans=["*.example.org"])
    p.exact_org = ca.issue("exact-org", sans=["exact.example.org"])
    # no subjectAltName: the CN is the name
    p.cnonly = ca.issue("cnonly", cn="cnonly.example.net", sans=None)
    # a subjectAltName: the CN is not a name of the certificate
    p.cn_ignored = ca.issue("cn-ignored", cn="ignored.example.net", sans=["san.example.net"])
    p.all = [p.default, p.www, p.wild, p.exact_org, p.cnonly, p.cn_ignored]
    return p


def sni_config(pk, backend_port, **opts):
    return h.one_listener(backend_port, cert=[leaf.entry() for leaf in pk.all], opts=opts)


@pytest.fixture
def daemon(pk, http_backend, tlsterm):
    return tlsterm(sni_config(pk, http_backend.port))


CASES = [
    # (SNI sent, certificate expected)
    (None, "default"),
    ("unknown.test", "default"),
    ("default.test", "default"),
    ("www.example.com", "www"),
    ("alt.example.com", "www"),             # second SAN of the same certificate
    ("WWW.Example.COM", "www"),             # case-insensitive
    ("a.example.org", "wild"),
    ("A.EXAMPLE.ORG", "wild"),
    ("exact.example.org", "exact-org"),     # exact beats the wildcard
    ("a.b.example.org", "default"),         # a wildcard covers one label only
    ("example.org", "default"),             # ... and not the bare domain
    ("cnonly.example.net", "cnonly"),       # CN when there is no SAN
    ("ignored.example.net", "default"),     # CN ignored when there is a SAN
    ("san.example.net", "cn-ignored"),
    ("www.example.com.evil.test", "default"),
]


def test_sni_selects_certificate(pk, daemon):
    got = {}
    for sni, want in CASES:
        rc, out, leaf = pki.s_client(daemon.addr(), sni, "-CAfile", pk.ca.cert,
                                     timeout=h.T(30))
        assert rc == 0, "SNI %r: s_client failed:\n%s" % (sni, out)
        got[sni] = pki.which(pk.all, leaf)
    wrong = {sni: (got[sni], want) for sni, want in CASES if got[sni] != want}
    assert not wrong, "SNI -> (served, expected): %r" % wrong
    lines = daemon.wait_close(listener="https", count=len(CASES))
    logged = sorted(d["sni"] for d in lines)
    assert logged == sorted("-" if s is None else s for s, _ in CASES), logged
    for d in lines:
        assert d["tls"] == h.DEFAULT_TLS, d["line"]


def test_sni_python_client_verifies(pk, daemon):
    """A verifying client (hostname check on) gets a certificate it accepts
    for each kind of name."""
    for name in ("www.example.com", "alt.example.com", "a.example.org", "exact.example.org"):
        s = h.tls_connect(daemon.addr(), pk.ca.cert, server_hostname=name)
        try:
            assert h.http11_exchange(s) == h.BODY
            port = s.getsockname()[1]
        finally:
            s.close()
        line = daemon.wait_close(port=port)
        assert line["sni"] == name, line["line"]


@pytest.fixture
def strict(pk, http_backend, tlsterm):
    return tlsterm(sni_config(pk, http_backend.port, sni_strict=True))


def test_sni_strict_known_name(pk, strict):
    for sni, want in (("www.example.com", "www"), ("a.example.org", "wild"),
                      ("DEFAULT.test", "default")):
        rc, out, leaf = pki.s_client(strict.addr(), sni, "-CAfile", pk.ca.cert,
                                     "-verify_return_error", timeout=h.T(30))
        assert rc == 0, out
        assert pki.which(pk.all, leaf) == want, (sni, pki.which(pk.all, leaf))
        assert "Verify return code: 0 (ok)" in out
    lines = strict.wait_close(listener="https", count=3)
    assert all(d["reason"] != "" and not d["reason"].startswith("handshake failed")
               for d in lines), [d["line"] for d in lines]


@pytest.mark.parametrize("sni", ["unknown.test", "a.b.example.org", "example.org"])
def test_sni_strict_unknown_name_fails(pk, strict, sni):
    rc, out, leaf = pki.s_client(strict.addr(), sni, "-CAfile", pk.ca.cert, timeout=h.T(30))
    assert rc != 0, out
    assert leaf is None, "a certificate was served to an unknown name:\n" + out
    assert "unrecognized name" in out, out
    line = strict.wait_close(listener="https")
    assert line["reason"].startswith("handshake failed"), line["line"]
    assert line["sni"] == sni, line["line"]
    assert line["tls"] == "-", line["line"]


def test_sni_strict_missing_sni_fails(pk, strict):
    rc, out, leaf = pki.s_client(strict.addr(), None, "-CAfile", pk.ca.cert, timeout=h.T(30))
    assert rc != 0, out
    assert leaf is None, "a certificate was served without SNI:\n" + out
    assert "alert" in out and ("handshake failure" in out or "unrecognized name" in out), out
    line = strict.wait_close(listener="https")
    assert line["reason"].startswith("handshake failed"), line["line"]
    assert line["sni"] == "-", line["line"]
