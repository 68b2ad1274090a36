# SPDX-License-Identifier: BSD-2-Clause
"""Bulk data through tlsterm, byte-exact (sha256): 50 MiB down, 50 MiB up,
and 50 MiB each way at the same time through an echo backend, where both
directions are full at once and nothing may deadlock."""

import asyncio
import hashlib

import tlsterm_harness as h

SIZE = 50 << 20
CHUNK = 256 * 1024
STALL = h.T(5)          # no progress for this long = stalled


async def connect(addr, cafile):
    return await asyncio.open_connection(addr[0], addr[1], ssl=h.client_context(cafile),
                                         server_hostname="localhost", limit=1 << 20)


async def write_all(writer, data, progress):
    view = memoryview(data)
    for off in range(0, len(view), CHUNK):
        writer.write(view[off:off + CHUNK])
        try:
            await asyncio.wait_for(writer.drain(), STALL)
        except asyncio.TimeoutError:
            raise AssertionError("stalled: could not send for %.0fs; %s" % (STALL, progress)) from None
        progress["sent"] += len(view[off:off + CHUNK])


async def read_all(reader, want, progress):
    """Reads until `want` bytes or EOF; fails on a stall."""
    dig = hashlib.sha256()
    while progress["got"] < want:
        try:
            b = await asyncio.wait_for(reader.read(1 << 20), STALL)
        except asyncio.TimeoutError:
            raise AssertionError("stalled: no data for %.0fs; %s" % (STALL, progress)) from None
        if not b:
            break
        dig.update(b)
        progress["got"] += len(b)
    return dig.hexdigest()


async def close(writer):
    writer.close()          # close_notify, then FIN
    try:
        await asyncio.wait_for(writer.wait_closed(), STALL)
    except (ConnectionError, OSError, asyncio.TimeoutError):
        pass


async def both_ways(addr, cafile, data, progress):
    reader, writer = await connect(addr, cafile)
    progress["port"] = writer.get_extra_info("sockname")[1]
    wtask = asyncio.ensure_future(write_all(writer, data, progress))
    try:
        digest = await read_all(reader, len(data), progress)
        try:
            await asyncio.wait_for(wtask, STALL)
        except asyncio.TimeoutError:
            raise AssertionError("upload stalled: %s" % progress) from None
    finally:
        wtask.cancel()
        await close(writer)
    return digest


async def download(addr, cafile, progress):
    reader, writer = await connect(addr, cafile)
    progress["port"] = writer.get_extra_info("sockname")[1]
    try:
        return await read_all(reader, SIZE + 1, progress)     # until EOF
    finally:
        await close(writer)


async def upload(addr, cafile, data, progress):
    reader, writer = await connect(addr, cafile)
    progress["port"] = writer.get_extra_info("sockname")[1]
    try:
        await write_all(writer, data, progress)
    finally:
        await close(writer)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, h.T(120)))


def test_download(certs, backend, tlsterm):
    data = h.payload(SIZE, seed=43)
    hose = backend(h.Firehose, SIZE, data=data)
    d = tlsterm(h.one_listener(hose.port))
    progress = {"sent": 0, "got": 0}
    digest = run(download(d.addr(), certs.rsa_cert, progress))
    assert progress["got"] == SIZE, progress
    assert digest == h.sha256(data), "download corrupted"
    line = d.wait_close(port=progress["port"])
    assert line["out"] == SIZE and line["reason"].startswith("done"), line["line"]


def test_upload(certs, backend, tlsterm):
    data = h.payload(SIZE, seed=44)
    sink = backend(h.ReadAllThenReply, 0)
    d = tlsterm(h.one_listener(sink.port))
    progress = {"sent": 0, "got": 0}
    run(upload(d.addr(), certs.rsa_cert, data, progress))
    sink.wait_conns(1, timeout=h.T(20),
                    what="the backend to see EOF after the client's close_notify")
    assert sink.conns[0]["received"] == SIZE, sink.conns[0]["received"]
    assert sink.conns[0]["sha256"] == h.sha256(data), "upload corrupted"
    line = d.wait_close(port=progress["port"])
    assert line["in"] == SIZE and line["reason"].startswith("done"), line["line"]


def test_both_ways_at_once(certs, backend, tlsterm):
    echo = backend(h.EchoBackend)
    d = tlsterm(h.one_listener(echo.port))
    data = h.payload(SIZE, seed=42)
    progress = {"sent": 0, "got": 0}
    digest = run(both_ways(d.addr(), certs.rsa_cert, data, progress))
    assert progress["sent"] == SIZE
    assert progress["got"] == SIZE, "downloaded %d of %d bytes" % (progress["got"], SIZE)
    assert digest == h.sha256(data), "download corrupted"
    echo.wait_conns(1, timeout=h.T(20),
                    what="the backend to see EOF after the client's close_notify")
    conn = echo.conns[0]
    assert conn["received"] == SIZE
    assert conn["sha256"] == h.sha256(data), "upload corrupted"
    line = d.wait_close(port=progress["port"])
    assert line["in"] == SIZE and line["out"] == SIZE, line["line"]
    assert line["reason"].startswith("done"), line["line"]
