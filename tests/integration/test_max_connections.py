# SPDX-License-Identifier: BSD-2-Clause
"""limits.max_connections: connections beyond the limit are closed at once,
without a handshake, a warning says so, and the connections already held
are unaffected."""

import re
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



def test_refusal_warnings_add_up_to_the_exit_summary(certs, http_backend, tlsterm):
    """A burst of refusals within one second: the first is logged at once,
    the rest when the second ends, so the warnings' counts add up to the
    "refused at max_connections" count of the exit summary."""
    d = tlsterm(h.one_listener(http_backend.port, workers=1, limits={"max_connections": 1}))
    held = h.tls_connect(d.addr(), certs.rsa_cert, timeout=h.T(10))
    burst = 20
    try:
        http_backend.wait_conns(1, done=False)
        for _ in range(burst):
            s = socket.create_connection(d.addr(), timeout=h.T(5))
            assert h.hello_then_closed(s, h.T(2)) in ("eof", "reset")
            s.close()

        def warned():
            return sum(int(n) for n in re.findall(
                r" warn listener=https: max_connections \(1\) reached, refused (\d+) "
                r"connection\(s\)$", d.log(), re.M))
        h.wait_until(lambda: warned() == burst, h.T(5),
                     "warnings that count all %d refusals" % burst)
    finally:
        held.close()
    assert d.stop() == []
    m = re.search(r"stopped: \d+ connection\(s\) served, (\d+) refused at max_connections",
                  d.log())
    assert m and int(m.group(1)) == burst, d.log_tail()
