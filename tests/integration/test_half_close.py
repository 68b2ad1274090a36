# SPDX-License-Identifier: BSD-2-Clause
"""Half-close is relayed: the client ends its side (with or without
close_notify), the backend sees EOF, and the backend's answer that follows
still reaches the client in full, ended by close_notify."""

import pytest

import tlsterm_harness as h

REPLY = 1 << 20


@pytest.mark.parametrize("how", ["fin_only", "close_notify_then_fin"])
def test_half_close(certs, backend, tlsterm, how):
    be = backend(h.ReadAllThenReply, REPLY)
    d = tlsterm(h.one_listener(be.port))
    c = h.MemTLS(d.addr(), certs.rsa_cert, timeout=h.T(20))
    try:
        c.handshake()
        c.write(b"request")
        if how == "close_notify_then_fin":
            c.send_close_notify()
        c.shutdown_write()
        got = c.read_all()
        port = c.local_port
        closed_cleanly = c.got_close_notify
    finally:
        c.close()
    be.wait_conns(1)
    assert be.conns[0]["request"] == b"request"
    assert len(got) == REPLY, "got %d of %d bytes" % (len(got), REPLY)
    assert got == be.data, "reply corrupted"
    assert closed_cleanly, "the reply was not ended by close_notify"
    line = d.wait_close(port=port)
    want = "done" if how == "close_notify_then_fin" else "done (client sent no close_notify)"
    assert line["reason"] == want, line["line"]
    assert line["in"] == len(b"request") and line["out"] == REPLY, line["line"]
