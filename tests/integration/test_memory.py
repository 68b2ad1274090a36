# SPDX-License-Identifier: BSD-2-Clause
"""Memory per connection: a connection that has sent nothing costs only
its small bookkeeping; TLS state (about 40 KB with mbedTLS's record
buffers) is allocated when the first byte arrives.  A port scan or a
flood of silent connections cannot make tlsterm allocate TLS sessions.

RSS is compared, not timed; the sanitizer build is skipped because ASan
shadow memory and quarantine change what RSS means."""

import socket

import pytest

import tlsterm_harness as h

N = 1000

pytestmark = pytest.mark.skipif(bool(h.SANITIZERS), reason="RSS is not meaningful under ASan")

# The first 5 bytes of a TLS record header for a ClientHello: tlsterm sees
# a first byte, sets up the TLS session and waits for the rest.
HELLO_START = bytes([0x16, 0x03, 0x01, 0x02, 0x00])


def open_silent(addr, n):
    socks = []
    for _ in range(n):
        s = socket.create_connection(addr, timeout=h.T(10))
        socks.append(s)
    return socks


def test_no_tls_state_before_the_first_byte(certs, http_backend, tlsterm):
    d = tlsterm(h.one_listener(http_backend.port, timeouts={"handshake": "120s"}))
    # warm up allocator arenas with one full connection
    s = h.tls_connect(d.addr(), certs.rsa_cert)
    assert h.http11_exchange(s) == h.BODY
    s.close()
    before = d.rss_kb()
    accepted = d.counts()[0]
    socks = open_silent(d.addr(), N)
    try:
        h.wait_until(lambda: d.counts()[0] >= accepted + N, h.T(20),
                     "%d accepted connections" % N)
        silent = d.rss_kb()
        for s in socks:
            s.sendall(HELLO_START)
        h.wait_until(lambda: d.rss_kb() - silent > N * 10, h.T(20),
                     "TLS state to be allocated once bytes arrive")
        started = d.rss_kb()
    finally:
        for s in socks:
            s.close()
    per_silent = (silent - before) * 1024 / N
    per_started = (started - silent) * 1024 / N
    print("bytes/conn: silent %.0f, after the first bytes +%.0f" % (per_silent, per_started))
    assert per_silent < 4096, "a silent connection costs %.0f bytes" % per_silent
    assert per_started > 10 * 1024, per_started

