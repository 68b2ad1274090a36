# SPDX-License-Identifier: BSD-2-Clause
"""curl fetches a page through tlsterm, verifying the certificate by name."""

import tlsterm_harness as h


def test_curl_get(certs, http_backend, tlsterm):
    d = tlsterm(h.one_listener(http_backend.port))
    port = d.port()
    r = h.run(["curl", "-sS", "--max-time", str(int(h.T(20))), "--cacert", certs.rsa_cert,
               "--resolve", "localhost:%d:127.0.0.1" % port,
               "https://localhost:%d/" % port])
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout == h.BODY
    assert http_backend.requests == 1

    line = d.wait_close(listener="https")
    assert line["tls"] == h.DEFAULT_TLS, line["line"]     # the newest the build has
    assert line["sni"] == "localhost"
    assert line["reason"].startswith("done"), line["line"]
    assert line["in"] > 0 and line["out"] > len(h.BODY), line["line"]
    assert line["backend"] == "127.0.0.1:%d" % http_backend.port
