# SPDX-License-Identifier: BSD-2-Clause
"""The mirror of test_slow_reader: a backend that reads slowly while the
client uploads as fast as it can.  tlsterm stops reading the client while
the backend is behind, so its VmRSS grows by less than 16 MiB over the
pre-connection baseline (not checked under sanitizers: ASan's quarantine
inflates RSS) and the client is held back to what the kernel socket
buffers hold.  Other clients are served meanwhile and afterwards."""

import asyncio
import socket
import time

import tlsterm_harness as h

RSS_BOUND_KB = 16 * 1024            # the documented bound: 16 MiB
SOCKET_SLACK = 64 << 20             # kernel buffers between client and backend


class SlowSink(h.Backend):
    """Reads 64 KiB every 50 ms (at full speed once .slow is False) until EOF."""

    slow = True

    async def handle(self, reader, writer, conn):
        while True:
            b = await reader.read(65536)
            if not b:
                break
            conn["received"] += len(b)
            if self.slow:
                await asyncio.sleep(0.05)   # the backend is slow on purpose


def test_slow_backend(certs, backend, tlsterm):
    sink = backend(SlowSink)
    web = backend(h.HttpBackend)
    cfg = h.config([h.listener("upload", h.free_port(), "sink"),
                    h.listener("web", h.free_port(), "web")],
                   {"sink": sink.port, "web": web.port})
    d = tlsterm(cfg)
    for _ in range(4):                      # warm up before the baseline
        assert h.https_get(d.addr("web"), certs.rsa_cert)[1] == h.BODY
    base = d.rss_kb()
    s = h.tls_connect(d.addr("upload"), certs.rsa_cert)
    sent, peak = 0, 0
    chunk = b"u" * 16384
    try:
        port = s.getsockname()[1]
        s.settimeout(0.2)
        end = time.monotonic() + 3.0
        while time.monotonic() < end:
            try:
                sent += s.send(chunk)
            except socket.timeout:
                pass                        # blocked: back-pressure at work
            peak = max(peak, d.rss_kb())
        # another client is served while the upload is stuck
        assert h.https_get(d.addr("web"), certs.rsa_cert)[1] == h.BODY
    finally:
        s.close()
        sink.slow = False                   # let it drain what is in flight
    sink.wait_conns(1, timeout=h.T(15))
    got = sink.conns[0]["received"]
    assert got > 0
    assert sent - got < SOCKET_SLACK, \
        "the client ran %d MiB ahead of a backend that read %d MiB" % ((sent - got) >> 20, got >> 20)
    if not h.SANITIZERS:
        assert peak - base < RSS_BOUND_KB, "VmRSS grew by %d KiB (baseline %d KiB)" % (peak - base, base)
    # the later GETs to "web" may reuse this client port: name the listener
    line = d.wait_close(port=port, listener="upload", timeout=h.T(15))
    assert got <= line["in"] <= sent, line["line"]
    assert h.https_get(d.addr("web"), certs.rsa_cert)[1] == h.BODY
