# SPDX-License-Identifier: BSD-2-Clause
"""forwarded_headers: every HTTP/1.x request on a connection (keep-alive,
pipelined) reaches the backend with X-Forwarded-For/Proto/Port (and
optionally Forwarded and X-SSL-Client-*); client-supplied ones are dropped
unless the client is trusted; bodies pass untouched; Upgrade and CONNECT
become tunnels only after the backend's 101/2xx; oversized heads get 431,
malformed ones 400, and no server at all 503; h2 connections are left
alone (logged once); hsts adds Strict-Transport-Security."""

import asyncio
import contextlib
import socket
import ssl
import subprocess

import pki
import tlsterm_harness as h


class HeadEcho(h.Backend):
    """Answers each request with the head it received as the body.  Reads
    bodies by Content-Length or chunked (recorded in self.bodies).  A 2xx to
    CONNECT and a 101 to an Upgrade (unless the path is /no-upgrade, which
    gets 426) turn the connection into an echo."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.heads = []
        self.bodies = []

    @staticmethod
    async def read_body(reader, hdrs):
        if hdrs.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                n = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if n == 0:
                    while await reader.readuntil(b"\r\n") != b"\r\n":
                        pass
                    return body
                body += await reader.readexactly(n)
                await reader.readexactly(2)
        return await reader.readexactly(int(hdrs.get("content-length", "0")))

    async def tunnel(self, reader, writer, answer):
        writer.write(answer)
        while True:
            await writer.drain()
            data = await reader.read(65536)
            if not data:
                return
            writer.write(data)

    async def handle(self, reader, writer, conn):
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return
            self.heads.append(head)
            method, target, _ = head.split(b"\r\n")[0].decode().split(" ", 2)
            hdrs = dict(h.head_headers(head))
            self.bodies.append(await self.read_body(reader, hdrs))
            if method == "CONNECT":
                return await self.tunnel(reader, writer, b"HTTP/1.1 200 Established\r\n\r\n")
            if "upgrade" in hdrs and target != "/no-upgrade":
                return await self.tunnel(reader, writer, b"HTTP/1.1 101 Switching Protocols\r\n"
                                         b"Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
            status = b"426 Upgrade Required" if "upgrade" in hdrs else b"200 OK"
            own = b"Strict-Transport-Security: max-age=5\r\n" if target == "/own-hsts" else b""
            writer.write(b"HTTP/1.1 %s\r\nContent-Length: %d\r\n%s\r\n" % (status, len(head), own))
            if method != "HEAD":
                writer.write(head)
            await writer.drain()


def fwd_config(backend_port, **opts):
    cfg = h.one_listener(backend_port)
    cfg["backends"]["app"]["forwarded_headers"] = True
    cfg["backends"]["app"].update(opts)
    return cfg


def read_response(f, head=False):
    """(status line, {header: value}, body) from a file over the socket;
    head: the answer to a HEAD request (no body)."""
    status = f.readline().decode().rstrip("\r\n")
    hdrs = {}
    while True:
        line = f.readline().decode("latin-1")
        if line in ("\r\n", ""):
            break
        k, v = line.split(":", 1)
        hdrs[k.strip().lower()] = v.strip()
    return status, hdrs, b"" if head else f.read(int(hdrs.get("content-length", "0")))


@contextlib.contextmanager
def tls_session(d, certs, ctx=None):
    """(socket, its file for reading); both closed at the end, so the
    client really closes (a file from makefile() keeps the socket open)."""
    s = h.tls_connect(d.addr(), certs.rsa_cert, ctx=ctx)
    f = s.makefile("rb")
    try:
        yield s, f
    finally:
        f.close()
        s.close()


def curl(d, certs, *args, path="/"):
    r = subprocess.run(["curl", "-s", "--cacert", certs.rsa_cert, *args,
                        "https://localhost:%d%s" % (d.port(), path)],
                       capture_output=True, timeout=h.T(30))
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_curl_request_gets_headers_and_loses_spoofs(certs, backend, tlsterm):
    b = backend(HeadEcho)
    d = tlsterm(fwd_config(b.port))
    curl(d, certs, "-H", "X-Forwarded-For: 6.6.6.6", "-H", "X-Forwarded-Proto: http",
         "-H", "X-Forwarded-Port: 1", "-H", "Forwarded: for=6.6.6.6",
         "-H", "X-SSL-Client-Verify: SUCCESS")
    head = b.heads[0]
    assert h.header_values(head, "x-forwarded-for") == ["127.0.0.1"], head
    assert h.header_values(head, "x-forwarded-proto") == ["https"], head
    assert h.header_values(head, "x-forwarded-port") == [str(d.port())], head
    assert h.header_values(head, "forwarded") == [] and \
        h.header_values(head, "x-ssl-client-verify") == [], head
    assert h.header_values(head, "host") == ["localhost:%d" % d.port()]


def test_keepalive_and_pipelined_requests_are_each_rewritten(certs, backend, tlsterm):
    b = backend(HeadEcho)
    d = tlsterm(fwd_config(b.port))
    body = b"X-Forwarded-For: 6.6.6.6\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n"
    reqs = (b"GET /1 HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n"
            b"POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n%s"
            b"POST /3 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"%x\r\n%s\r\n0\r\n\r\n"
            b"HEAD /4 HTTP/1.1\r\nHost: a\r\n\r\n"
            b"GET /5 HTTP/1.1\r\nHost: a\r\n\r\n") % (len(body), body, len(body), body)
    with tls_session(d, certs) as (s, f):
        s.sendall(reqs)                 # one write: pipelined
        got = [read_response(f, head=(i == 3)) for i in range(5)]
        s.sendall(b"GET /6 HTTP/1.1\r\nHost: a\r\n\r\n")     # later, on the same connection
        got.append(read_response(f))
    assert [g[0] for g in got] == ["HTTP/1.1 200 OK"] * 6
    assert [hd.split(b" ")[1] for hd in b.heads] == [b"/1", b"/2", b"/3", b"/4", b"/5", b"/6"]
    assert b.bodies[1] == body and b.bodies[2] == body       # bodies untouched
    for head in b.heads:
        assert h.header_values(head, "x-forwarded-for") == ["127.0.0.1"], head
        assert h.header_values(head, "x-forwarded-proto") == ["https"], head
    assert got[3][2] == b""                                     # HEAD: no body
    assert len(b.conns) == 1
    line = d.wait_close()
    assert line["reason"].startswith("done"), line["line"]


def test_curl_keepalive_two_urls_one_connection(certs, backend, tlsterm):
    b = backend(HeadEcho)
    d = tlsterm(fwd_config(b.port))
    url = "https://localhost:%d" % d.port()
    r = subprocess.run(["curl", "-s", "--cacert", certs.rsa_cert, url + "/a", url + "/b"],
                       capture_output=True, timeout=h.T(30))
    assert r.returncode == 0, r.stderr
    assert len(b.conns) == 1 and len(b.heads) == 2
    assert all(h.header_values(hd, "x-forwarded-for") == ["127.0.0.1"] for hd in b.heads)


def test_trusted_client_keeps_its_chain_and_forwarded(certs, backend, tlsterm):
    b = backend(HeadEcho)
    cfg = fwd_config(b.port, forwarded_rfc7239=True)
    cfg["listeners"][0]["trusted"] = ["127.0.0.0/8"]
    d = tlsterm(cfg)
    curl(d, certs, "-H", "X-Forwarded-For: 203.0.113.9", "-H", "Forwarded: for=203.0.113.9")
    head = b.heads[0]
    assert h.header_values(head, "x-forwarded-for") == ["203.0.113.9, 127.0.0.1"], head
    assert h.header_values(head, "forwarded") == \
        ["for=203.0.113.9, for=127.0.0.1;proto=https"], head


def test_client_cert_headers(certs, backend, tlsterm, tmp_path):
    b = backend(HeadEcho)
    ca = pki.CA(tmp_path, "clients", cn="fwd test CA")
    alice = ca.issue("alice", cn="alice", client=True)
    cfg = fwd_config(b.port, client_cert_headers=True)
    cfg["listeners"][0]["client_auth"] = {"mode": "optional", "ca": ca.cert}
    d = tlsterm(cfg)
    curl(d, certs, "--cert", alice.chain, "--key", alice.key,
         "-H", "X-SSL-Client-Subject: CN=admin")
    head = b.heads[0]
    assert h.header_values(head, "x-ssl-client-verify") == ["SUCCESS"], head
    assert h.header_values(head, "x-ssl-client-subject") == ["CN=alice"], head
    assert len(h.header_values(head, "x-ssl-client-sha256")[0]) == 64
    curl(d, certs)
    assert h.header_values(b.heads[1], "x-ssl-client-verify") == ["NONE"], b.heads[1]
    assert h.header_values(b.heads[1], "x-ssl-client-subject") == [], b.heads[1]


def test_websocket_upgrade_becomes_a_tunnel(certs, backend, tlsterm):
    b = backend(HeadEcho)
    d = tlsterm(fwd_config(b.port))
    frame = b"\x81\x05hello GET / HTTP/1.1\r\nX-Forwarded-For: 1.1.1.1\r\n\r\n"
    with tls_session(d, certs) as (s, f):
        # the frame follows the head at once: it must wait for the 101, then
        # pass untouched
        s.sendall(b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\n\r\n" + frame)
        status, hdrs, _ = read_response(f)
        assert status == "HTTP/1.1 101 Switching Protocols"
        assert f.read(len(frame)) == frame
    assert len(b.heads) == 1


def test_refused_upgrade_goes_on_as_http(certs, backend, tlsterm):
    b = backend(HeadEcho)
    d = tlsterm(fwd_config(b.port))
    with tls_session(d, certs) as (s, f):
        s.sendall(b"GET /no-upgrade HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\n\r\n"
                  b"GET /next HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n")
        assert read_response(f)[0] == "HTTP/1.1 426 Upgrade Required"
        assert read_response(f)[0] == "HTTP/1.1 200 OK"
    assert h.header_values(b.heads[1], "x-forwarded-for") == ["127.0.0.1"], b.heads[1]


def test_connect_becomes_a_tunnel_when_allowed(certs, backend, tlsterm):
    b = backend(HeadEcho)
    d = tlsterm(fwd_config(b.port, allow_connect=True))
    with tls_session(d, certs) as (s, f):
        s.sendall(b"CONNECT db:5432 HTTP/1.1\r\nHost: db:5432\r\n\r\n")
        assert read_response(f)[0] == "HTTP/1.1 200 Established"
        s.sendall(b"GET / HTTP/1.1\r\n\r\n")
        assert f.read(18) == b"GET / HTTP/1.1\r\n\r\n"
    assert h.header_values(b.heads[0], "x-forwarded-for") == ["127.0.0.1"]


def status_of(d, certs, *args):
    r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert",
                        certs.rsa_cert, *args, "https://localhost:%d/" % d.port()],
                       capture_output=True, timeout=h.T(30))
    return r.stdout.decode()


def test_connect_is_refused_by_default(certs, backend, tlsterm):
    b = backend(HeadEcho)
    d = tlsterm(fwd_config(b.port))
    with tls_session(d, certs) as (s, f):
        s.sendall(b"CONNECT db:5432 HTTP/1.1\r\nHost: db:5432\r\n\r\n")
        assert read_response(f)[0] == "HTTP/1.1 501 Not Implemented"
        assert f.read() == b""
    assert b.heads == []
    line = d.wait_close()
    assert line["reason"] == "answered 501: CONNECT is not allowed (allow_connect is off)", \
        line["line"]


def test_backend_close_ends_a_blocked_client_at_once(certs, backend, tlsterm):
    """An Upgrade the backend never answers: its close must end the
    connection, not leave it to the idle timeout."""
    class CloseOnUpgrade(HeadEcho):
        async def handle(self, reader, writer, conn):
            self.heads.append(await reader.readuntil(b"\r\n\r\n"))

    b = backend(CloseOnUpgrade)
    d = tlsterm(fwd_config(b.port))
    with tls_session(d, certs) as (s, f):
        s.sendall(b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
                  b"more bytes")
        assert f.read() == b""          # closed, long before timeouts.idle
    line = d.wait_close()
    assert line["reason"] == "done", line["line"]


def test_oversized_head_gets_431(certs, backend, tlsterm):
    b = backend(HeadEcho)
    d = tlsterm(fwd_config(b.port, max_request_head="8k"))
    assert status_of(d, certs, "-H", "X-Big: " + "a" * 9000) == "431"
    line = d.wait_close()
    assert line["reason"] == "answered 431: request head over 8192 bytes", line["line"]
    assert b.heads == []
    assert status_of(d, certs, "-H", "X-Big: " + "a" * 7000) == "200"


def test_default_head_limit_is_64k(certs, backend, tlsterm):
    b = backend(HeadEcho)
    d = tlsterm(fwd_config(b.port))
    assert status_of(d, certs, "-H", "X-Big: " + "a" * 60000) == "200"
    assert status_of(d, certs, "-H", "X-Big: " + "a" * 66000) == "431"
    assert len(b.heads) == 1


def test_malformed_requests_get_400(certs, backend, tlsterm):
    b = backend(HeadEcho)
    d = tlsterm(fwd_config(b.port))
    for bad in (b"GET / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
                b"POST / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n"):
        with tls_session(d, certs) as (s, f):
            s.sendall(b"GET /ok HTTP/1.1\r\n\r\n" + bad)
            assert read_response(f)[0] == "HTTP/1.1 200 OK"   # the good one first
            status, hdrs, body = read_response(f)
            assert status == "HTTP/1.1 400 Bad Request" and hdrs["connection"] == "close"
            assert f.read() == b""                              # then the close
    assert [hd.split(b" ")[1] for hd in b.heads] == [b"/ok", b"/ok"]
    reasons = [ln["reason"] for ln in d.close_lines()]
    assert any(r.startswith("answered 400: malformed request") for r in reasons), reasons


def test_no_server_gets_503(certs, tlsterm):
    d = tlsterm(fwd_config(h.free_port()))
    assert status_of(d, certs) == "503"
    line = d.wait_close()
    assert line["reason"].startswith("answered 503: backend app: no server available"), \
        line["line"]


def test_h2_is_passed_through_and_logged_once(certs, backend, tlsterm):
    b = backend(HeadEcho)
    cfg = fwd_config(b.port)
    cfg["listeners"][0]["alpn"] = ["h2", "http/1.1"]
    d = tlsterm(cfg)
    ctx = h.client_context(certs.rsa_cert)
    ctx.set_alpn_protocols(["h2"])
    for _ in range(2):
        with tls_session(d, certs, ctx=ctx) as (s, f):
            assert s.selected_alpn_protocol() == "h2"
            # not HTTP/2, but it shows the bytes are not rewritten
            s.sendall(b"GET /h2 HTTP/1.1\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n")
            read_response(f)
    assert all(h.header_values(hd, "x-forwarded-for") == ["6.6.6.6"] for hd in b.heads)
    assert len(b.heads) == 2
    notes = [ln for ln in d.log_lines() if "ALPN chose h2" in ln]
    assert len(notes) == 1, notes


def test_hsts_added_unless_the_backend_sets_it(certs, backend, tlsterm):
    b = backend(HeadEcho)
    d = tlsterm(fwd_config(b.port, hsts="max-age=31536000; includeSubDomains"))
    out = curl(d, certs, "-D", "-", "-o", "/dev/null").decode()
    assert "Strict-Transport-Security: max-age=31536000; includeSubDomains\r\n" in out, out
    out = curl(d, certs, "-D", "-", "-o", "/dev/null", path="/own-hsts").decode()
    assert out.lower().count("strict-transport-security") == 1, out
    assert "max-age=5" in out


def test_big_bodies_both_ways_arrive_whole(certs, backend, tlsterm):
    b = backend(HeadEcho)
    d = tlsterm(fwd_config(b.port))
    data = h.payload(3 << 20)
    with tls_session(d, certs) as (s, f):
        s.sendall(b"POST /big HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % len(data)
                  + data)
        assert read_response(f)[0] == "HTTP/1.1 200 OK"
    assert h.sha256(b.bodies[0]) == h.sha256(data)


def test_proxy_in_client_address_is_the_one_forwarded(certs, backend, tlsterm):
    b = backend(HeadEcho)
    cfg = fwd_config(b.port)
    cfg["listeners"][0]["proxy_protocol_in"] = True
    cfg["listeners"][0]["trusted"] = ["127.0.0.0/8"]
    d = tlsterm(cfg)
    c = h.MemTLS(d.addr(), certs.rsa_cert)
    try:
        # the balancer is trusted, the client behind it is not: its
        # X-Forwarded-For goes, and ours names it with the port it dialled
        c.sock.sendall(b"PROXY TCP4 203.0.113.5 198.51.100.1 5555 443\r\n")
        c.handshake()
        c.write(b"GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n")
        c.read_until(b"\r\n\r\n")
    finally:
        c.close()
    head = b.heads[0]
    assert h.header_values(head, "x-forwarded-for") == ["203.0.113.5"], head
    assert h.header_values(head, "x-forwarded-port") == ["443"], head
