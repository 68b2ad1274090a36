# SPDX-License-Identifier: BSD-2-Clause
"""gnutls-cli (a second TLS stack) gets a page through tlsterm."""

import shutil
import subprocess
import threading

import pytest

import tlsterm_harness as h


@pytest.mark.skipif(shutil.which("gnutls-cli") is None, reason="gnutls-cli not installed")
def test_gnutls_cli_get(tmp_path, certs, http_backend, tlsterm):
    d = tlsterm(h.one_listener(http_backend.port))
    logfile = str(tmp_path / "gnutls.log")
    # gnutls-cli sends close_notify and quits as soon as stdin ends, so stdin
    # stays open until the answer (and tlsterm's close) has come back.
    p = subprocess.Popen(["gnutls-cli", "--x509cafile", certs.rsa_cert, "--logfile", logfile,
                          "-p", str(d.port()), "localhost"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = []
    reader = threading.Thread(target=lambda: out.append(p.stdout.read()), daemon=True)
    reader.start()
    try:
        p.stdin.write(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        p.stdin.flush()
        reader.join(h.T(20))
        assert not reader.is_alive(), "gnutls-cli did not finish: %s" % open(logfile).read()
        p.stdin.close()
        p.wait(timeout=h.T(10))
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=h.T(10))
        reader.join(h.T(5))
    log = open(logfile).read()
    assert "Handshake was completed" in log, log
    body = out[0] if out else b""
    assert body.startswith(b"HTTP/1.0 200 OK\r\n"), (body[:200], log)
    assert body.endswith(b"\r\n\r\n" + h.BODY), body[-200:]
    line = d.wait_close(listener="https")
    assert line["sni"] == "localhost" and line["tls"] == h.DEFAULT_TLS, line["line"]
    assert line["reason"].startswith("done"), line["line"]
