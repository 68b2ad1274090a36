# SPDX-License-Identifier: BSD-2-Clause
"""One name with an RSA and an ECDSA certificate: clients that can verify
ECDSA get the ECDSA one, RSA-only clients get the RSA one, by SNI and (for
the default entry and its twin) without SNI.  TLS 1.2 here (the key type
follows the cipher or the signature algorithms); TLS 1.3, where only the
signature algorithms decide, is in test_tls13_sni.py."""

import pytest

import pki
import tlsterm_harness as h

RSA_ONLY_SIGALGS = ["-sigalgs", "RSA-PSS+SHA256:RSA+SHA256"]
RSA_ONLY_CIPHER = ["-cipher", "ECDHE-RSA-AES128-GCM-SHA256"]
ECDSA_ONLY_CIPHER = ["-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"]


@pytest.fixture(scope="module")
def pk(tmp_path_factory):
    base = tmp_path_factory.mktemp("pki")
    ca = pki.CA(base, "root")
    rsa_key = pki.new_key(str(base / "rsa-key.pem"), "rsa")

    class P:
        pass
    p = P()
    p.ca = ca
    # default entry (RSA) and its ECDSA twin further down the list
    p.def_rsa = ca.issue("def-rsa", sans=["default.test"], kind="rsa", key=rsa_key)
    p.other = ca.issue("other", sans=["other.test"], kind="ec")
    p.dual_rsa = ca.issue("dual-rsa", sans=["dual.example.com"], kind="rsa", key=rsa_key)
    p.dual_ec = ca.issue("dual-ec", sans=["dual.example.com"], kind="ec")
    p.wild_ec = ca.issue("wild-ec", sans=["*.wild.test"], kind="ec")
    p.wild_rsa = ca.issue("wild-rsa", sans=["*.wild.test"], kind="rsa", key=rsa_key)
    p.def_ec = ca.issue("def-ec", sans=["default.test"], kind="ec")
    p.all = [p.def_rsa, p.other, p.dual_rsa, p.dual_ec, p.wild_ec, p.wild_rsa, p.def_ec]
    return p


@pytest.fixture
def daemon(pk, http_backend, tlsterm):
    return tlsterm(h.one_listener(http_backend.port, cert=[leaf.entry() for leaf in pk.all]))


@pytest.mark.parametrize("sni,opts,want,kex", [
    ("dual.example.com", [], "dual-ec", "ECDHE-ECDSA-"),
    ("dual.example.com", ECDSA_ONLY_CIPHER, "dual-ec", "ECDHE-ECDSA-"),
    ("dual.example.com", RSA_ONLY_SIGALGS, "dual-rsa", "ECDHE-RSA-"),
    ("dual.example.com", RSA_ONLY_CIPHER, "dual-rsa", "ECDHE-RSA-"),
    ("x.wild.test", [], "wild-ec", "ECDHE-ECDSA-"),
    ("x.wild.test", RSA_ONLY_SIGALGS, "wild-rsa", "ECDHE-RSA-"),
    (None, [], "def-ec", "ECDHE-ECDSA-"),
    (None, RSA_ONLY_CIPHER, "def-rsa", "ECDHE-RSA-"),
    ("unknown.test", RSA_ONLY_SIGALGS, "def-rsa", "ECDHE-RSA-"),
    ("unknown.test", ECDSA_ONLY_CIPHER, "def-ec", "ECDHE-ECDSA-"),
], ids=lambda v: "none" if v is None else (" ".join(v) if isinstance(v, list) else str(v)))
def test_key_type_follows_client(pk, daemon, sni, opts, want, kex):
    rc, out, leaf = pki.s_client(daemon.addr(), sni, "-CAfile", pk.ca.cert,
                                 "-verify_return_error", "-tls1_2", *opts, timeout=h.T(30))
    assert rc == 0, out
    assert pki.which(pk.all, leaf) == want, out
    assert "Cipher is %s" % kex in out or ", Cipher is %s" % kex in out, out
    line = daemon.wait_close(listener="https")
    assert line["cipher"].startswith("TLS-" + kex), line["line"]
    assert line["sni"] == (sni or "-"), line["line"]


def test_ecdsa_only_name_refuses_rsa_only_client(pk, daemon):
    """other.test has only an ECDSA certificate: an RSA-only client fails
    rather than getting a certificate for another name."""
    rc, out, leaf = pki.s_client(daemon.addr(), "other.test", "-CAfile", pk.ca.cert,
                                 "-tls1_2", *RSA_ONLY_CIPHER, timeout=h.T(30))
    assert rc != 0, out
    assert leaf is None, "served %s" % pki.which(pk.all, leaf)
    line = daemon.wait_close(listener="https")
    assert line["reason"].startswith("handshake failed"), line["line"]


def test_python_default_client_gets_ecdsa(pk, daemon):
    s = h.tls_connect(daemon.addr(), pk.ca.cert, server_hostname="dual.example.com")
    try:
        assert s.getpeercert(binary_form=True) == pk.dual_ec.der
        assert s.version() == h.DEFAULT_TLS, s.version()
        if s.version() == "TLSv1.2":        # a TLS 1.3 suite does not name the key type
            assert s.cipher()[0].startswith("ECDHE-ECDSA-"), s.cipher()
        assert h.http11_exchange(s) == h.BODY
    finally:
        s.close()
