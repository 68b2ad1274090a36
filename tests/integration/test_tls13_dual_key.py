# SPDX-License-Identifier: BSD-2-Clause
"""One name with an RSA and an ECDSA certificate, on TLS 1.2 and TLS 1.3:
the certificate follows the signature algorithms the client offers
(`openssl s_client -sigalgs`); a client that can verify ECDSA gets the
ECDSA one; a name with only an ECDSA certificate fails an RSA-only client
rather than serving another name's certificate.  (In TLS 1.3 the suite
says nothing about the key type, so this is the only way the choice is
made; test_sni_dual_key.py has the TLS 1.2 cipher-based cases.)"""

import pytest

import pki
import tlsterm_harness as h

# RSA-only and ECDSA-only signature algorithm lists.  TLS 1.3 allows only
# RSA-PSS for RSA handshake signatures; mbedTLS's TLS 1.2 signs with
# PKCS#1 v1.5 only, so an RSA-only TLS 1.2 client offers both.
RSA_ONLY = {"1.2": "rsa_pss_rsae_sha256:rsa_pkcs1_sha256", "1.3": "rsa_pss_rsae_sha256"}
ECDSA_ONLY = "ecdsa_secp256r1_sha256"


@pytest.fixture(scope="module")
def pk(tmp_path_factory):
    base = tmp_path_factory.mktemp("pki")
    ca = pki.CA(base, "root")
    rsa_key = pki.new_key(str(base / "rsa-key.pem"), "rsa")

    class P:
        pass
    p = P()
    p.ca = ca
    p.def_rsa = ca.issue("def-rsa", sans=["default.test"], kind="rsa", key=rsa_key)
    p.dual_rsa = ca.issue("dual-rsa", sans=["dual.example.com"], kind="rsa", key=rsa_key)
    p.dual_ec = ca.issue("dual-ec", sans=["dual.example.com"], kind="ec")
    p.ec_only = ca.issue("ec-only", sans=["ec-only.test"], kind="ec")
    p.def_ec = ca.issue("def-ec", sans=["default.test"], kind="ec")
    p.all = [p.def_rsa, p.dual_rsa, p.dual_ec, p.ec_only, p.def_ec]
    return p


@pytest.fixture
def daemon(pk, http_backend, tlsterm):
    return tlsterm(h.one_listener(http_backend.port, cert=[leaf.entry() for leaf in pk.all]))


@pytest.mark.parametrize("version", h.versions())
@pytest.mark.parametrize("sni,sigalgs,want", [
    ("dual.example.com", "rsa", "dual-rsa"),
    ("dual.example.com", "ecdsa", "dual-ec"),
    ("dual.example.com", "both", "dual-ec"),
    (None, "rsa", "def-rsa"),                   # the default entry and its twin
    (None, "ecdsa", "def-ec"),
    ("unknown.test", "rsa", "def-rsa"),
], ids=lambda v: "nosni" if v is None else str(v))
def test_certificate_follows_sigalgs(pk, daemon, version, sni, sigalgs, want):
    algs = {"rsa": RSA_ONLY[version], "ecdsa": ECDSA_ONLY,
            "both": ECDSA_ONLY + ":" + RSA_ONLY[version]}[sigalgs]
    rc, out, leaf = pki.s_client(daemon.addr(), sni, "-CAfile", pk.ca.cert,
                                 "-verify_return_error", h.s_client_version_flag(version),
                                 "-sigalgs", algs, timeout=h.T(30))
    assert rc == 0, out
    assert "New, %s, " % h.log_version(version) in out, out
    assert pki.which(pk.all, leaf) == want, out
    line = daemon.wait_close(listener="https")
    assert line["tls"] == h.log_version(version), line["line"]
    assert line["sni"] == (sni or "-"), line["line"]
    if version == "1.2":
        kex = "ECDHE-ECDSA-" if want.endswith("-ec") else "ECDHE-RSA-"
        assert line["cipher"].startswith("TLS-" + kex), line["line"]


@pytest.mark.parametrize("version", h.versions())
def test_ecdsa_only_name_refuses_rsa_only_client(pk, daemon, version):
    rc, out, leaf = pki.s_client(daemon.addr(), "ec-only.test", "-CAfile", pk.ca.cert,
                                 h.s_client_version_flag(version), "-sigalgs", RSA_ONLY[version],
                                 timeout=h.T(30))
    assert rc != 0, out
    assert leaf is None, "served %s" % pki.which(pk.all, leaf)
    assert "alert handshake failure" in out, out
    line = daemon.wait_close(listener="https")
    assert line["reason"].startswith("handshake failed"), line["line"]
    assert line["tls"] == "-", line["line"]


@pytest.mark.parametrize("version", h.versions())
def test_python_client_gets_ecdsa(pk, daemon, version):
    ctx = h.pin_version(h.client_context(pk.ca.cert), version)
    s = h.tls_connect(daemon.addr(), None, server_hostname="dual.example.com", ctx=ctx)
    try:
        assert s.version() == h.log_version(version)
        assert s.getpeercert(binary_form=True) == pk.dual_ec.der
        assert h.http11_exchange(s) == h.BODY
        port = s.getsockname()[1]
    finally:
        s.close()
    assert daemon.wait_close(port=port)["tls"] == h.log_version(version)
