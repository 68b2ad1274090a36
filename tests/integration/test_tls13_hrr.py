# SPDX-License-Identifier: BSD-2-Clause
"""TLS 1.3 HelloRetryRequest: when no key share of the client's first
ClientHello is in `curves:`, tlsterm asks for one that is, the client
sends a second ClientHello, and the connection is served as any other
(with the certificate its SNI picked, and resuming its ticket).  That
the retry happened is read from `openssl s_client -trace`: a ServerHello
with RFC 8446's HelloRetryRequest random and two ClientHellos.  A client
with no group in common fails."""

import re

import pytest

import pki
import tlsterm_harness as h

pytestmark = h.needs_tls13()

# SHA-256("HelloRetryRequest"), the random of a HelloRetryRequest (RFC 8446
# 4.1.3); -trace prints the last 28 bytes as random_bytes
HRR_RANDOM = "CF21AD74E59A6111BE1D8C021E65B891C2A211167ABB8C5E079E09E2C8A8339C"
REQUEST = b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n"


@pytest.fixture(scope="module")
def pk(tmp_path_factory):
    ca = pki.CA(tmp_path_factory.mktemp("pki"), "root")
    return ca, ca.issue("default", sans=["default.test"]), ca.issue("www", sans=["www.test"])


def daemon(tlsterm, pk, backend_port, curves=None):
    ca, default, www = pk
    l = {"name": "https", "listen": ["127.0.0.1:%d" % h.free_port()],
         "certificates": [default.entry(), www.entry()], "backend": "app"}
    return tlsterm(h.config([l], {"app": backend_port},
                            tls={"curves": curves} if curves else None))


def s_client(d, pk, *opts, sni="www.test"):
    ca, _, _ = pk
    rc, out, leaf = pki.s_client(d.addr(), sni, "-CAfile", ca.cert, "-tls1_3", "-trace",
                                 "-ign_eof", "-verify_return_error", *opts, input=REQUEST,
                                 timeout=h.T(30))
    return rc, out, leaf


def hellos(out):
    """(ClientHellos, HelloRetryRequests) in s_client -trace output."""
    client = len(re.findall(r"^\s*ClientHello, Length=", out, re.M))
    hrr = out.count("random_bytes (len=28): " + HRR_RANDOM[8:])
    return client, hrr


def retry_group(out):
    """The group the HelloRetryRequest asks for (its key_share)."""
    hrr = out.split("random_bytes (len=28): " + HRR_RANDOM[8:], 1)[1].split("ClientHello", 1)[0]
    m = re.search(r"NamedGroup: (\S+)", hrr)
    return m and m.group(1)


def assert_served_after_retry(d, pk, out, leaf, group):
    _, _, www = pk
    assert hellos(out) == (2, 1), "no HelloRetryRequest:\n" + out
    assert retry_group(out) == group, out
    assert re.search(r"^(New|Reused), TLSv1\.3, Cipher is TLS_", out, re.M), out
    assert out.count(h.BODY.decode()) == 1, out
    assert leaf == www.der, "the certificate for www.test was not served after the retry"
    line = d.wait_close(listener="https")
    assert line["tls"] == "TLSv1.3" and line["reason"].startswith("done"), line["line"]
    assert line["sni"] == "www.test", line["line"]
    return line


def test_first_share_not_configured(pk, http_backend, tlsterm):
    """Default curves (x25519, secp256r1, secp384r1); the client's first
    key share is P-521, which is not among them."""
    d = daemon(tlsterm, pk, http_backend.port)
    rc, out, leaf = s_client(d, pk, "-groups", "P-521:X25519")
    assert rc == 0, out
    assert_served_after_retry(d, pk, out, leaf, "ecdh_x25519")


def test_only_x25519_configured(pk, http_backend, tlsterm):
    d = daemon(tlsterm, pk, http_backend.port, curves=["x25519"])
    rc, out, leaf = s_client(d, pk, "-groups", "P-256:X25519")
    assert rc == 0, out
    assert_served_after_retry(d, pk, out, leaf, "ecdh_x25519")


def test_curves_set_the_tls13_group(pk, http_backend, tlsterm):
    """`curves: [secp384r1]` holds for TLS 1.3: a client sharing only
    X25519 first is asked for P-384; one without P-384 fails."""
    d = daemon(tlsterm, pk, http_backend.port, curves=["secp384r1"])
    rc, out, leaf = s_client(d, pk, "-groups", "X25519:P-384")
    assert rc == 0, out
    assert_served_after_retry(d, pk, out, leaf, "secp384r1")
    assert re.search(r"(Server|Peer) Temp Key: ECDH, (secp384r1|P-384)", out), out
    rc, out, leaf = s_client(d, pk, "-groups", "X25519:P-256")
    assert rc != 0 and leaf is None, out
    line = d.wait_close(listener="https", count=2)[1]
    assert line["reason"].startswith("handshake failed") and line["tls"] == "-", line["line"]


def test_no_retry_when_the_first_share_fits(pk, http_backend, tlsterm):
    """The control: the same check sees no retry when none is needed."""
    d = daemon(tlsterm, pk, http_backend.port)
    rc, out, leaf = s_client(d, pk, "-groups", "X25519:P-521")
    assert rc == 0, out
    assert hellos(out) == (1, 0), out
    assert out.count(h.BODY.decode()) == 1, out


def test_resumption_through_a_retry(pk, http_backend, tlsterm, tmp_path):
    """A ticket offered in a ClientHello that gets a HelloRetryRequest
    still resumes (the PSK binder is over the transcript with the retry)."""
    d = daemon(tlsterm, pk, http_backend.port, curves=["x25519"])
    sess = str(tmp_path / "sess.pem")
    rc, out, leaf = s_client(d, pk, "-groups", "X25519", "-sess_out", sess)
    assert rc == 0 and "New, TLSv1.3" in out, out
    rc, out, leaf = s_client(d, pk, "-groups", "P-256:X25519", "-sess_in", sess)
    assert rc == 0, out
    assert hellos(out) == (2, 1), "no HelloRetryRequest:\n" + out
    assert re.search(r"^Reused, TLSv1\.3, ", out, re.M), "not resumed after the retry:\n" + out
    assert out.count(h.BODY.decode()) == 1, out
    lines = d.wait_close(listener="https", count=2)
    assert [l["resumed"] for l in lines] == ["0", "1"], [l["line"] for l in lines]
