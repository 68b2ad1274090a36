# SPDX-License-Identifier: BSD-2-Clause
"""limits.max_connections: connections beyond the limit are closed at once,
without a handshake, a warning says so, and the connections already held
are unaffected."""

import socket

import tlsterm_harness as h

LIMIT = 5


def test_max_connections(certs, http_backend, tlsterm):
    d = tlsterm(h.one_listener(http_backend.port, limits={"max_connections": LIMIT}))
    held = []
    try:
        for _ in range(LIMIT):
            held.append(h.tls_connect(d.addr(), certs.rsa_cert, timeout=h.T(10)))
        http_backend.wait_conns(LIMIT, done=False)   # all 5 are relaying
        extra = socket.create_connection(d.addr(), timeout=h.T(5))
        try:
            how = h.hello_then_closed(extra, h.T(2))
        finally:
            extra.close()
        assert how in ("eof", "reset"), "the 6th connection got %s" % how
        d.wait_log(r" warn listener=https: max_connections \(%d\) reached, refused 1 connection\(s\)$"
                   % LIMIT)
        # the refused socket was never a connection: no "accepted", no close line
        assert d.counts() == (LIMIT + len(d.probe_ports), len(d.probe_ports))
        for s in held:
            assert h.http11_exchange(s) == h.BODY
    finally:
        for s in held:
            s.close()

