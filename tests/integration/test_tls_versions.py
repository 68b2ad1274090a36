# SPDX-License-Identifier: BSD-2-Clause
"""Protocol versions: TLS 1.0 and 1.1 clients (even with every cipher
allowed) get no session; TLS 1.2 works; TLS 1.3 works when tlsterm is
built against mbedTLS 3.6 (the default client then gets it) and a
TLS-1.3-only client is refused by a 2.28 build.  A refusal for want of
a common version says so in the close line.  (The min_version /
max_version keys are tested in test_tls13_versions.py.)"""

import ssl
import warnings

import pytest

import tlsterm_harness as h


@pytest.fixture
def daemon(http_backend, tlsterm):
    return tlsterm(h.one_listener(http_backend.port))


def s_client(certs, port, *opts):
    return h.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
                  "-servername", "localhost", "-CAfile", certs.rsa_cert, *opts],
                 input=b"")


def session_established(r):
    out = r.stdout.decode(errors="replace")
    return "Cipher is (NONE)" not in out and ("New, TLSv1" in out or "Protocol  : TLSv1" in out) \
        and "Cipher is " in out


def assert_version_refused(line, offers=None):
    """"handshake failed: no shared protocol version: the client offers
    X, this listener accepts Y"."""
    assert line["reason"].startswith("handshake failed"), line["line"]
    assert "protocol version" in line["reason"], \
        "the reason does not say the versions did not match: " + line["line"]
    if offers:
        assert "the client offers %s," % offers in line["reason"], line["line"]
    assert line["tls"] == "-", line["line"]


@pytest.mark.parametrize("flag", ["-tls1", "-tls1_1"])
def test_old_versions_refused(certs, daemon, flag):
    r = s_client(certs, daemon.port(), flag, "-cipher", "DEFAULT@SECLEVEL=0")
    assert r.returncode != 0
    assert not session_established(r), r.stdout.decode(errors="replace")
    assert_version_refused(daemon.wait_close(listener="https"),
                           offers={"-tls1": "TLS 1.0", "-tls1_1": "TLS 1.0, TLS 1.1"}[flag])


@pytest.mark.skipif(h.HAVE_TLS13, reason="this build speaks TLS 1.3 (%s)" % h.PROTOCOLS)
def test_tls13_only_client_refused(certs, daemon):
    r = s_client(certs, daemon.port(), "-tls1_3")
    assert r.returncode != 0
    assert not session_established(r), r.stdout.decode(errors="replace")
    line = daemon.wait_close(listener="https")
    assert_version_refused(line, offers="TLS 1.3")
    assert "has no TLS 1.3" in line["reason"], line["line"]     # and why


@h.needs_tls13()
def test_tls13_accepted(certs, daemon):
    r = s_client(certs, daemon.port(), "-tls1_3", "-verify_return_error")
    out = r.stdout.decode(errors="replace")
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    assert session_established(r), out
    assert "New, TLSv1.3, Cipher is TLS_" in out, out
    assert "Verify return code: 0 (ok)" in out
    line = daemon.wait_close(listener="https")
    assert line["tls"] == "TLSv1.3", line["line"]


def test_tls12_accepted(certs, daemon):
    r = s_client(certs, daemon.port(), "-tls1_2", "-verify_return_error")
    out = r.stdout.decode(errors="replace")
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    assert session_established(r), out
    assert "Protocol  : TLSv1.2" in out
    assert "Verify return code: 0 (ok)" in out
    line = daemon.wait_close(listener="https")
    assert line["tls"] == "TLSv1.2"


def test_default_client_gets_the_newest(certs, daemon):
    """A client offering every version it has gets TLS 1.3 from a 3.6
    build, TLS 1.2 from a 2.28 one (`tlsterm -V` says which)."""
    r = s_client(certs, daemon.port(), "-verify_return_error")
    out = r.stdout.decode(errors="replace")
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    assert "New, %s, Cipher is " % h.DEFAULT_TLS in out, out
    assert daemon.wait_close(listener="https")["tls"] == h.DEFAULT_TLS


def test_python_tls11_refused(certs, daemon):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx = h.client_context(certs.rsa_cert)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        ctx.set_ciphers("DEFAULT@SECLEVEL=0")
    with pytest.raises(ssl.SSLError):
        s = h.tls_connect(daemon.addr(), certs.rsa_cert, ctx=ctx)
        s.close()
    assert_version_refused(daemon.wait_close(listener="https"))
