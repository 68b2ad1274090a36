# SPDX-License-Identifier: BSD-2-Clause
"""Renegotiation is refused: a TLS 1.2 client asking for it (s_client's
"R") gets a no_renegotiation alert and no second ServerHello.  (TLS 1.3
has no renegotiation at all.)"""

import re
import subprocess
import threading

import tlsterm_harness as h


def test_client_renegotiation_refused(certs, http_backend, tlsterm):
    d = tlsterm(h.one_listener(http_backend.port))
    p = subprocess.Popen(["openssl", "s_client", "-connect", "127.0.0.1:%d" % d.port(),
                          "-servername", "localhost", "-CAfile", certs.rsa_cert, "-tls1_2", "-msg"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    chunks = []
    reader = threading.Thread(target=lambda: chunks.extend(iter(lambda: p.stdout.read1(65536), b"")),
                              daemon=True)
    reader.start()
    out = lambda: b"".join(chunks).decode(errors="replace")  # noqa: E731
    try:
        h.wait_until(lambda: "Verify return code: 0 (ok)" in out() or p.poll() is not None,
                     h.T(10), "the first handshake")
        assert "Verify return code: 0 (ok)" in out(), out()
        p.stdin.write(b"R\n")
        p.stdin.flush()
        h.wait_until(lambda: "RENEGOTIATING" in out() and
                     ("no_renegotiation" in out() or "ServerHello" in out().split("RENEGOTIATING")[1]),
                     h.T(10), "the server's answer to the renegotiation")
    finally:
        h.end_process(p)
        reader.join(h.T(5))
    after = out().split("RENEGOTIATING", 1)[1]
    assert not re.search(r"<<< .*Handshake .*ServerHello", after), after
    # refused by tlsterm: a no_renegotiation warning (or a fatal alert)
    assert re.search(r"<<< .*Alert .*, (warning no_renegotiation|fatal )", after), after
    line = d.wait_close(listener="https")
    assert line["tls"] == "TLSv1.2", line["line"]
