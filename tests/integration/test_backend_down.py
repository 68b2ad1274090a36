# SPDX-License-Identifier: BSD-2-Clause
"""A listener whose backend is down: the client's handshake completes, then
it gets close_notify + FIN quickly, the log says why, and another listener
of the same daemon goes on serving."""

import time

import tlsterm_harness as h


def test_backend_refused(certs, http_backend, tlsterm):
    dead = h.free_port()                # nothing listens there
    cfg = h.config([h.listener("down", h.free_port(), "dead"),
                    h.listener("up", h.free_port(), "live")],
                   {"dead": dead, "live": http_backend.port})
    d = tlsterm(cfg)
    c = h.MemTLS(d.addr("down"), certs.rsa_cert, timeout=h.T(10))
    try:
        c.handshake()                   # completes although the backend is down
        t0 = time.monotonic()
        c.sock.settimeout(h.T(2))
        data = c.read_all()
        elapsed = time.monotonic() - t0
        port = c.local_port
    finally:
        c.close()
    assert data == b""
    assert elapsed < h.T(2), "EOF after %.2fs" % elapsed
    assert c.got_close_notify, "tlsterm closed without close_notify"
    line = d.wait_close(port=port, listener="down")
    assert line["listener"] == "down"
    assert line["reason"] == ("backend dead: no server available (last: 127.0.0.1:%d: "
                              "Connection refused)" % dead), line["line"]
    assert "backend=dead server=127.0.0.1:%d is down for 10000 ms: Connection refused" % dead \
        in d.log()
    status, body, _ = h.https_get(d.addr("up"), certs.rsa_cert)
    assert (status, body) == (200, h.BODY)
