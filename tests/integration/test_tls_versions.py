"""tlsterm speaks TLS 1.2 only: TLS 1.0 and 1.1 clients (even with every
cipher allowed) and TLS-1.3-only clients get no session; TLS 1.2 works."""

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


@pytest.mark.parametrize("flag", ["-tls1", "-tls1_1"])
def test_old_versions_refused(certs, daemon, flag):
    r = s_client(certs, daemon.port(), flag, "-cipher", "DEFAULT@SECLEVEL=0")
    assert r.returncode != 0
    assert not session_established(r), r.stdout.decode(errors="replace")
    line = daemon.wait_close(listener="https")
    assert line["reason"].startswith("handshake failed"), line["line"]
    assert line["tls"] == "-"


def test_tls13_only_client_refused(certs, daemon):
    r = s_client(certs, daemon.port(), "-tls1_3")
    assert r.returncode != 0
    assert not session_established(r), r.stdout.decode(errors="replace")
    line = daemon.wait_close(listener="https")
    assert line["reason"].startswith("handshake failed"), line["line"]


def test_tls12_accepted(certs, daemon):
    r = s_client(certs, daemon.port(), "-tls1_2", "-verify_return_error")
    out = r.stdout.decode(errors="replace")
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    assert session_established(r), out
    assert "Protocol  : TLSv1.2" in out
    assert "Verify return code: 0 (ok)" in out
    line = daemon.wait_close(listener="https")
    assert line["tls"] == "TLSv1.2"


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
    line = daemon.wait_close(listener="https")
    assert line["reason"].startswith("handshake failed"), line["line"]
