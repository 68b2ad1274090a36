# SPDX-License-Identifier: BSD-2-Clause
"""1000 TLS clients at once: every one of them gets its page."""

import asyncio
import resource

import tlsterm_harness as h

N = 1000


def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


async def one(addr, ctx, start):
    await start.wait()
    reader, writer = await asyncio.open_connection(addr[0], addr[1], ssl=ctx,
                                                   server_hostname="localhost",
                                                   ssl_handshake_timeout=h.T(60))
    try:
        writer.write(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        raw = await reader.read()       # until close_notify / EOF
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (ConnectionError, OSError):
            pass
    return h.parse_response(raw)


async def run_all(addr, cafile):
    ctx = h.client_context(cafile)
    start = asyncio.Event()
    tasks = [asyncio.ensure_future(one(addr, ctx, start)) for _ in range(N)]
    start.set()
    return await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), h.T(90))


def test_thousand_concurrent_clients(certs, http_backend, tlsterm):
    # ours: N client sockets + N backend sockets, and some slack
    assert raise_nofile(2 * N + 256) >= 2 * N + 256, "cannot raise RLIMIT_NOFILE"
    # 1000 handshakes queue up behind each other on 2 cores (and run ~10x
    # slower under ASan): the default 10s handshake timeout is not what
    # this test is about.
    d = tlsterm(h.one_listener(http_backend.port, cert="ec",
                               timeouts={"handshake": "%ds" % int(h.T(60))}))
    results = asyncio.run(run_all(d.addr(), certs.ec_cert))
    errors = [r for r in results if isinstance(r, BaseException)]
    ok = [r for r in results if not isinstance(r, BaseException) and r[0] == 200 and r[2] == h.BODY]
    assert not errors, "%d of %d failed, e.g. %r" % (len(errors), N, errors[:3])
    assert len(ok) == N
    assert http_backend.requests == N
    lines = d.wait_close(listener="https", count=N, timeout=h.T(30))
    bad = [l["line"] for l in lines if not l["reason"].startswith("done")]
    assert not bad, bad[:3]
