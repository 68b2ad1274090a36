# SPDX-License-Identifier: BSD-2-Clause
"""The tls: keys of TLS 1.3 against real clients: `ciphersuites:` limits the
TLS 1.3 suites (a client with none of them fails with alert 40 and a close
line that says why; each allowed suite negotiates; TLS 1.2 is untouched),
`min_version: "1.3"` refuses TLS 1.2 clients and `max_version: "1.2"`
makes default clients speak TLS 1.2 and refuses TLS-1.3-only ones, with
"protocol version" in the close line; on a build without TLS 1.3 the
version "1.3" is a config error that says what is missing."""

import re
import ssl

import pytest

import pki
import tlsterm_harness as h

AES128, AES256, CHACHA = ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                          "TLS_CHACHA20_POLY1305_SHA256")


def s_client(d, certs, *opts, input=b""):
    rc, out, _ = pki.s_client(d.addr(), "localhost", "-CAfile", certs.rsa_cert, *opts,
                              input=input, timeout=h.T(30))
    return rc, out


def negotiated(out):
    """(version, suite) from s_client's "New, TLSv1.x, Cipher is ..." line,
    or None when no session was established."""
    m = re.search(r"^(?:New|Reused), (TLSv1\.\d), Cipher is (\S+)$", out, re.M)
    return (m.group(1), m.group(2)) if m and m.group(2) != "(NONE)" else None


def daemon_with(tlsterm, backend_port, **tls):
    return tlsterm(h.one_listener(backend_port, tls=tls))


def assert_version_refused(line, offers=None, accepts=None):
    """A close line of a handshake refused for want of a common version:
    "... no shared protocol version: the client offers X, this listener
    accepts Y"."""
    assert line["reason"].startswith("handshake failed"), line["line"]
    assert "protocol version" in line["reason"], \
        "the close line does not say the versions did not match: " + line["line"]
    if offers:
        assert "the client offers %s," % offers in line["reason"], line["line"]
    if accepts:
        assert "this listener accepts %s" % accepts in line["reason"], line["line"]
    assert line["tls"] == "-" and line["backend"] == "-", line["line"]


# ---------------------------------------------------------------- ciphersuites

@h.needs_tls13()
def test_ciphersuites_restrict_tls13(certs, http_backend, tlsterm):
    d = daemon_with(tlsterm, http_backend.port, ciphersuites=[AES128])
    # a client with only a suite the config leaves out
    rc, out = s_client(d, certs, "-tls1_3", "-ciphersuites", CHACHA)
    assert rc != 0 and negotiated(out) is None, out
    assert "alert handshake failure" in out, out            # alert 40
    line = d.wait_close(listener="https")
    assert line["reason"].startswith("handshake failed"), line["line"]
    assert re.search(r"cipher ?suite", line["reason"], re.I), \
        "the close line does not say there was no suite in common: " + line["line"]
    assert not http_backend.conns
    # the allowed one, offered second, is chosen
    rc, out = s_client(d, certs, "-tls1_3", "-ciphersuites", CHACHA + ":" + AES128)
    assert rc == 0 and negotiated(out) == ("TLSv1.3", AES128), out
    line = d.wait_close(listener="https", count=2)[1]
    assert (line["tls"], line["cipher"]) == ("TLSv1.3", h.SUITES13[AES128]), line["line"]
    # TLS 1.2 suites are `ciphers:`, not `ciphersuites:`
    rc, out = s_client(d, certs, "-tls1_2")
    assert rc == 0 and negotiated(out) == ("TLSv1.2", "ECDHE-RSA-CHACHA20-POLY1305"), out


@h.needs_tls13()
@pytest.mark.parametrize("suite", [AES128, AES256, CHACHA])
def test_each_suite_alone(certs, http_backend, tlsterm, suite):
    """Each TLS 1.3 suite works when it is the only one allowed, with a
    default client (which offers all three)."""
    d = daemon_with(tlsterm, http_backend.port, ciphersuites=[suite])
    rc, out = s_client(d, certs, "-ign_eof", input=b"GET / HTTP/1.0\r\n\r\n")
    assert rc == 0 and negotiated(out) == ("TLSv1.3", suite), out
    assert h.BODY.decode() in out, out
    line = d.wait_close(listener="https")
    assert line["cipher"] == h.SUITES13[suite], line["line"]


@h.needs_tls13()
@pytest.mark.parametrize("offer,want", [((CHACHA, AES128), CHACHA), ((AES128, CHACHA), AES128),
                                        ((AES256, AES128), AES256)])
def test_tls13_suite_is_the_clients_choice(certs, http_backend, tlsterm, offer, want):
    """mbedTLS 3.6 takes the first suite of the client's list that the
    server allows: unlike `ciphers:` for TLS 1.2, the order of
    `ciphersuites:` is not a server preference."""
    d = daemon_with(tlsterm, http_backend.port, ciphersuites=[AES128, CHACHA, AES256])
    rc, out = s_client(d, certs, "-tls1_3", "-ciphersuites", ":".join(offer))
    assert rc == 0 and negotiated(out) == ("TLSv1.3", want), out
    assert d.wait_close(listener="https")["cipher"] == h.SUITES13[want]


# ---------------------------------------------------------------- min / max

@h.needs_tls13()
def test_min_version_13(certs, http_backend, tlsterm):
    d = daemon_with(tlsterm, http_backend.port, min_version="1.3")
    rc, out = s_client(d, certs, "-tls1_2")
    assert rc != 0 and negotiated(out) is None, out
    assert "alert protocol version" in out, out             # alert 70
    assert_version_refused(d.wait_close(listener="https"), accepts="TLS 1.3")
    # a Python client capped at TLS 1.2 fails too
    ctx = h.client_context(certs.rsa_cert)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(ssl.SSLError):
        h.tls_connect(d.addr(), None, ctx=ctx).close()
    assert_version_refused(d.wait_close(listener="https", count=2)[1], accepts="TLS 1.3")
    # a default client gets TLS 1.3 and its page
    status, body, port = h.https_get(d.addr(), certs.rsa_cert)
    assert (status, body) == (200, h.BODY)
    assert d.wait_close(port=port)["tls"] == "TLSv1.3"


def test_max_version_12(certs, http_backend, tlsterm):
    """On both builds: default clients speak TLS 1.2; a TLS-1.3-only client
    is refused for want of a common version."""
    d = daemon_with(tlsterm, http_backend.port, max_version="1.2")
    rc, out = s_client(d, certs)
    assert rc == 0 and negotiated(out) == ("TLSv1.2", "ECDHE-RSA-CHACHA20-POLY1305"), out
    s = h.tls_connect(d.addr(), certs.rsa_cert)
    try:
        assert s.version() == "TLSv1.2", s.version()
        assert h.http11_exchange(s) == h.BODY
        port = s.getsockname()[1]
    finally:
        s.close()
    assert d.wait_close(port=port)["tls"] == "TLSv1.2"
    rc, out = s_client(d, certs, "-tls1_3")
    assert rc != 0 and negotiated(out) is None, out
    assert_version_refused(d.wait_close(listener="https", count=3)[2], offers="TLS 1.3",
                           accepts="TLS 1.2")


@h.needs_tls13()
def test_tls13_only_both_ends(certs, http_backend, tlsterm):
    d = daemon_with(tlsterm, http_backend.port, min_version="1.3", max_version="1.3")
    rc, out = s_client(d, certs)
    assert rc == 0 and negotiated(out)[0] == "TLSv1.3", out
    rc, out = s_client(d, certs, "-tls1_2")
    assert rc != 0, out
    lines = d.wait_close(listener="https", count=2)
    assert lines[0]["tls"] == "TLSv1.3", lines[0]["line"]
    assert_version_refused(lines[1], accepts="TLS 1.3")


# ---------------------------------------------------------------- config

def check(tmp_path, certs, tls):
    cfg = h.one_listener(h.free_port(), tls=tls)
    cfg["listeners"][0]["certificates"] = [{"cert": certs.rsa_cert, "key": certs.rsa_key}]
    p = str(tmp_path / "t.yaml")
    return (p,) + h.check_config(p, cfg)


@pytest.mark.parametrize("key", ["min_version", "max_version"])
def test_version_13_config(tmp_path, certs, key):
    """"1.3" is fine on a 3.6 build; on 2.28 the error says what is needed."""
    p, rc, out, err = check(tmp_path, certs, {key: "1.3"})
    if h.HAVE_TLS13:
        assert rc == 0, err
        assert out == "%s: configuration OK\n" % p, out
    else:
        assert rc == 1, out
        assert re.search(re.escape(p) + r':\d+:\d+: invalid %s "1\.3": TLS 1\.3 needs tlsterm '
                         r'built against mbedTLS 3\.6' % key, err), err


def test_ciphersuites_accepted_on_every_build(tmp_path, certs):
    p, rc, out, err = check(tmp_path, certs, {"ciphersuites": [CHACHA, AES128]})
    assert rc == 0, err
    assert out == "%s: configuration OK\n" % p, out


def test_unknown_tls13_suite_lists_valid_names(tmp_path, certs):
    p, rc, out, err = check(tmp_path, certs, {"ciphersuites": [AES128, "TLS_AES_128_CCM_SHA256"]})
    assert rc == 1, err
    line = [l for l in err.splitlines() if "TLS_AES_128_CCM_SHA256" in l]
    assert len(line) == 1 and re.match(re.escape(p) + r":\d+:\d+: ", line[0]), err
    for name in (AES128, AES256, CHACHA):
        assert name in line[0], line[0]


@h.needs_tls13()
def test_min_above_max_is_an_error(tmp_path, certs):
    p, rc, out, err = check(tmp_path, certs, {"min_version": "1.3", "max_version": "1.2"})
    assert rc == 1, out
    assert 'min_version "1.3" is above max_version "1.2"' in err, err
