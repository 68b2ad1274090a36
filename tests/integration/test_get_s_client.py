# SPDX-License-Identifier: BSD-2-Clause
"""openssl s_client sends an HTTP/1.0 request through tlsterm and gets the
backend's answer; tlsterm closes after the backend does."""

import tlsterm_harness as h


def test_s_client_get(certs, http_backend, tlsterm):
    d = tlsterm(h.one_listener(http_backend.port))
    r = h.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % d.port(),
               "-servername", "localhost", "-CAfile", certs.rsa_cert,
               "-verify_return_error", "-quiet"],
              input=b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
    out = r.stdout
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    assert out.startswith(b"HTTP/1.0 200 OK\r\n"), out[:200]
    assert out.endswith(b"\r\n\r\n" + h.BODY), out[-200:]

    line = d.wait_close(listener="https")
    assert line["tls"] == h.DEFAULT_TLS, line["line"]     # the newest the build has
    assert line["sni"] == "localhost"
    assert line["reason"].startswith("done"), line["line"]
    # in/out count the plaintext relayed each way
    assert line["in"] == len(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n"), line["line"]
    assert line["out"] == http_backend.conns[0]["sent"], line["line"]
