# SPDX-License-Identifier: BSD-2-Clause
"""TLS 1.3 with real clients at their defaults: openssl s_client, Python's
ssl.create_default_context(), curl and gnutls-cli, given no version
option, get TLS 1.3 from a tlsterm built against mbedTLS 3.6, fetch the
page, and the close line says tls=TLSv1.3 with the suite the client
reports.  `tlsterm -V` says which protocols the build has."""

import re
import shutil
import ssl
import subprocess
import threading

import pytest

import pki
import tlsterm_harness as h

REQUEST = b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n"


def test_version_output_names_the_protocols():
    """`tlsterm -V` on 3.6: "protocols: TLS 1.2, TLS 1.3"; on 2.28: TLS 1.2
    and a note that this mbedTLS has no TLS 1.3."""
    r = h.run([h.BIN, "-V"])
    out = r.stdout.decode()
    assert r.returncode == 0, r.stderr
    m = re.search(r"^mbedTLS (.*); protocols: (.*)$", out, re.M)
    assert m, out
    if h.MBEDTLS_VERSION >= (3, 6, 0):
        assert m.group(2) == "TLS 1.2, TLS 1.3", out
    else:
        assert m.group(2) == "TLS 1.2 (this mbedTLS has no TLS 1.3)", out
    assert re.search(r"\b%d\.%d\.%d\b" % h.MBEDTLS_VERSION, m.group(1)), out


tls13_only = h.needs_tls13()


@pytest.fixture
def daemon(http_backend, tlsterm):
    return tlsterm(h.one_listener(http_backend.port))


def assert_tls13_line(line, suite):
    """The close line of a served TLS 1.3 connection with `suite` (the
    client's RFC 8446 name)."""
    assert line["tls"] == "TLSv1.3", line["line"]
    assert line["cipher"] == h.SUITES13[suite], (suite, line["line"])
    assert line["reason"].startswith("done"), line["line"]
    assert line["resumed"] == "0", line["line"]
    assert line["sni"] == "localhost", line["line"]


@tls13_only
def test_s_client_default(certs, daemon, http_backend):
    rc, out, leaf = pki.s_client(daemon.addr(), "localhost", "-CAfile", certs.rsa_cert,
                                 "-verify_return_error", "-ign_eof", input=REQUEST,
                                 timeout=h.T(30))
    assert rc == 0, out
    m = re.search(r"^New, TLSv1\.3, Cipher is (TLS_\w+)$", out, re.M)
    assert m, "a default s_client did not get TLS 1.3:\n" + out
    assert "Verify return code: 0 (ok)" in out, out
    assert out.count(h.BODY.decode()) == 1, out
    assert leaf == certs.der("rsa")
    assert_tls13_line(daemon.wait_close(listener="https"), m.group(1))
    assert http_backend.requests == 1


@tls13_only
def test_python_default_context(certs, daemon):
    ctx = ssl.create_default_context(cafile=certs.rsa_cert)
    s = h.tls_connect(daemon.addr(), None, ctx=ctx)
    try:
        assert s.version() == "TLSv1.3", s.version()
        suite = s.cipher()[0]
        assert suite in h.SUITES13, s.cipher()
        assert h.http11_exchange(s) == h.BODY
        assert h.http11_exchange(s) == h.BODY              # keep-alive, second request
        port = s.getsockname()[1]
    finally:
        s.close()
    assert_tls13_line(daemon.wait_close(port=port), suite)


@tls13_only
def test_curl_default(certs, daemon):
    r = h.run(["curl", "-sSv", "--max-time", str(int(h.T(20))), "--cacert", certs.rsa_cert,
               "--resolve", "localhost:%d:127.0.0.1" % daemon.port(),
               "https://localhost:%d/" % daemon.port()])
    err = r.stderr.decode(errors="replace")
    assert r.returncode == 0, err
    assert r.stdout == h.BODY
    m = re.search(r"SSL connection using TLSv1\.3 / (TLS_\w+)", err)
    assert m, "curl did not get TLS 1.3:\n" + err
    assert_tls13_line(daemon.wait_close(listener="https"), m.group(1))


# gnutls-cli's names of the AEADs in its "Description:" line
GNUTLS_AEAD = {"AES-128-GCM": "TLS_AES_128_GCM_SHA256", "AES-256-GCM": "TLS_AES_256_GCM_SHA384",
               "CHACHA20-POLY1305": "TLS_CHACHA20_POLY1305_SHA256"}


@tls13_only
@pytest.mark.skipif(shutil.which("gnutls-cli") is None, reason="gnutls-cli not installed")
def test_gnutls_cli_default(tmp_path, certs, daemon):
    logfile = str(tmp_path / "gnutls.log")
    # gnutls-cli quits as soon as stdin ends, so stdin stays open until the
    # answer (and tlsterm's close) has come back (as in test_gnutls.py)
    p = subprocess.Popen(["gnutls-cli", "--x509cafile", certs.rsa_cert, "--logfile", logfile,
                          "-p", str(daemon.port()), "localhost"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         preexec_fn=h.die_with_parent)
    out = []
    reader = threading.Thread(target=lambda: out.append(p.stdout.read()), daemon=True)
    reader.start()
    try:
        p.stdin.write(REQUEST)
        p.stdin.flush()
        reader.join(h.T(20))
        assert not reader.is_alive(), "gnutls-cli did not finish: %s" % open(logfile).read()
    finally:
        h.end_process(p)
        reader.join(h.T(5))
    log = open(logfile).read()
    assert "Handshake was completed" in log, log
    m = re.search(r"Description: \(TLS1\.3-X\.509\)-\([^)]*\)-\([^)]*\)-\(([^)]*)\)", log)
    assert m, "gnutls-cli did not get TLS 1.3:\n" + log
    body = out[0] if out else b""
    assert body.endswith(b"\r\n\r\n" + h.BODY), (body[-200:], log)
    assert_tls13_line(daemon.wait_close(listener="https"), GNUTLS_AEAD[m.group(1)])
