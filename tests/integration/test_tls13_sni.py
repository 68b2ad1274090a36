# SPDX-License-Identifier: BSD-2-Clause
"""SNI on TLS 1.2 and TLS 1.3 alike: the exact name, then a one-label
wildcard, then the first entry (no SNI, unknown name) picks the
certificate; with sni_strict an unknown or missing name fails the
handshake (alert unrecognized_name) and is logged.  (test_sni_select.py
has the full matrix of names on the default version.)"""

import re

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
    p.www = ca.issue("www", sans=["www.example.com"])
    p.wild = ca.issue("wild", sans=["*.example.org"])
    p.exact_org = ca.issue("exact-org", sans=["exact.example.org"])
    p.all = [p.default, p.www, p.wild, p.exact_org]
    return p


def sni_config(pk, backend_port, **opts):
    return h.one_listener(backend_port, cert=[leaf.entry() for leaf in pk.all], opts=opts)


CASES = [
    (None, "default"),
    ("unknown.test", "default"),
    ("www.example.com", "www"),
    ("WWW.Example.COM", "www"),
    ("a.example.org", "wild"),
    ("exact.example.org", "exact-org"),     # exact beats the wildcard
    ("a.b.example.org", "default"),         # one label only
]


@pytest.mark.parametrize("version", h.versions())
def test_sni_selects_certificate(pk, http_backend, tlsterm, version):
    d = tlsterm(sni_config(pk, http_backend.port))
    wrong = {}
    for sni, want in CASES:
        rc, out, leaf = pki.s_client(d.addr(), sni, "-CAfile", pk.ca.cert,
                                     h.s_client_version_flag(version), timeout=h.T(30))
        assert rc == 0, "SNI %r: s_client failed:\n%s" % (sni, out)
        assert "New, %s, " % h.log_version(version) in out, out
        if pki.which(pk.all, leaf) != want:
            wrong[sni] = (pki.which(pk.all, leaf), want)
    assert not wrong, "SNI -> (served, expected): %r" % wrong
    lines = d.wait_close(listener="https", count=len(CASES))
    assert sorted(l["sni"] for l in lines) == sorted("-" if s is None else s for s, _ in CASES)
    assert {l["tls"] for l in lines} == {h.log_version(version)}, [l["line"] for l in lines]


@pytest.mark.parametrize("version", h.versions())
def test_python_client_verifies_each_kind_of_name(pk, http_backend, tlsterm, version):
    d = tlsterm(sni_config(pk, http_backend.port))
    for name in ("www.example.com", "a.example.org", "exact.example.org", "default.test"):
        ctx = h.pin_version(h.client_context(pk.ca.cert), version)
        s = h.tls_connect(d.addr(), None, server_hostname=name, ctx=ctx)   # hostname checked
        try:
            assert s.version() == h.log_version(version)
            assert h.http11_exchange(s) == h.BODY
            port = s.getsockname()[1]
        finally:
            s.close()
        line = d.wait_close(port=port)
        assert (line["sni"], line["tls"]) == (name, h.log_version(version)), line["line"]


@pytest.mark.parametrize("version", h.versions())
def test_sni_strict(pk, http_backend, tlsterm, version):
    d = tlsterm(sni_config(pk, http_backend.port, sni_strict=True))
    flag = h.s_client_version_flag(version)
    for sni, want in (("www.example.com", "www"), ("a.example.org", "wild"),
                      ("DEFAULT.test", "default")):
        rc, out, leaf = pki.s_client(d.addr(), sni, "-CAfile", pk.ca.cert, flag,
                                     "-verify_return_error", timeout=h.T(30))
        assert rc == 0, out
        assert pki.which(pk.all, leaf) == want, (sni, pki.which(pk.all, leaf))
    ok = d.wait_close(listener="https", count=3)
    assert all(l["tls"] == h.log_version(version) for l in ok), [l["line"] for l in ok]
    for n, sni in enumerate(["unknown.test", "a.b.example.org", None], start=4):
        rc, out, leaf = pki.s_client(d.addr(), sni, "-CAfile", pk.ca.cert, flag,
                                     timeout=h.T(30))
        assert rc != 0, out
        assert leaf is None, "a certificate was served to SNI %r:\n%s" % (sni, out)
        if sni is not None:
            assert "unrecognized name" in out, out              # alert 112
        else:
            assert re.search(r"alert (handshake failure|unrecognized name)", out), out
        line = d.wait_close(listener="https", count=n)[-1]
        assert line["reason"].startswith("handshake failed"), line["line"]
        assert line["sni"] == (sni or "-") and line["tls"] == "-", line["line"]
    assert http_backend.requests == 0
