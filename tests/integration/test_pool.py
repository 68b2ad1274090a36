# SPDX-License-Identifier: BSD-2-Clause
"""Server pools: weighted round robin, least_conn, source_hash, per-server
max_connections and backup servers, unix-socket servers, and passive
health: a server that refuses is skipped for fail_timeout while the
connection is retried on another, so clients see no error while one
server is up."""

import re
import socket
import subprocess
import threading

import pytest

import tlsterm_harness as h


class Named(h.HttpBackend):
    """An HTTP backend whose body says which server answered."""

    def __init__(self, name, **kw):
        super().__init__(body=("server %s\n" % name).encode(), **kw)
        self.name = name


def pool_cfg(servers, log_level="debug", **be):
    cfg = h.one_listener(1, log_level=log_level)
    cfg["backends"]["app"] = dict(servers=servers, **be)
    return cfg


def ask(d, certs, ctx=None, source=None):
    """One new TLS connection + GET; returns the answering server's name."""
    host, port = d.addr()
    raw = socket.socket()
    raw.settimeout(h.T(10))
    if source:
        raw.bind((source, 0))
    raw.connect((host, port))
    ctx = ctx or h.client_context(certs.rsa_cert)
    s = ctx.wrap_socket(raw, server_hostname="localhost")
    try:
        body = h.http11_exchange(s)
    finally:
        s.close()
    return body.decode().split()[1]


def test_weights_are_honoured(certs, backend, tlsterm):
    bs = [backend(Named, n) for n in "abc"]
    servers = [{"address": "127.0.0.1:%d" % b.port, "weight": w} for b, w in zip(bs, (1, 2, 3))]
    d = tlsterm(pool_cfg(servers, log_level="info"))
    d.expect_open_at_stop = None        # no accept lines at info to wait for
    total = 10000 if not h.SANITIZERS else 2000
    # curl: one new connection per URL ("Connection: close"), resuming
    # its TLS session, so 10,000 connections take seconds, not minutes
    r = subprocess.run(["curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}\\n",
                        "-H", "Connection: close", "--cacert", certs.rsa_cert,
                        "https://localhost:%d/[1-%d]" % (d.port(), total)],
                       capture_output=True, text=True, timeout=h.T(300))
    assert r.stdout.split() == ["200"] * total, r.stderr[-500:]
    counts = {b.name: b.requests for b in bs}
    assert sum(counts.values()) == total, counts
    for b, w in zip(bs, (1, 2, 3)):
        share = counts[b.name] / total
        assert abs(share - w / 6) <= 0.05 * (w / 6), counts


def test_failover_and_recovery(certs, backend, tlsterm):
    bs = [backend(Named, n) for n in "abc"]
    d = tlsterm(pool_cfg(["127.0.0.1:%d" % b.port for b in bs], fail_timeout="1s"))
    assert {ask(d, certs) for _ in range(30)} == {"a", "b", "c"}
    port_b = bs[1].port
    bs[1].stop()
    # every request succeeds, the one that met the dead server included
    got = [ask(d, certs) for _ in range(20)]
    assert "b" not in got and len(got) == 20
    d.wait_log(r"warn backend=app server=127\.0\.0\.1:%d is down for 1000 ms: "
               r"Connection refused" % port_b)
    # back on the same port: traffic returns once fail_timeout has passed
    back = backend(Named, "b", port=port_b)
    h.wait_until(lambda: ask(d, certs) == "b", h.T(20), "traffic to return to server b")
    assert back.requests >= 1
    d.wait_log(r"info backend=app server=127\.0\.0\.1:%d is up again" % port_b)


def test_all_servers_down_closes_cleanly(certs, tlsterm):
    dead = [h.free_port(), h.free_port()]
    d = tlsterm(pool_cfg(["127.0.0.1:%d" % p for p in dead]))
    status, body, port = None, None, None
    c = h.MemTLS(d.addr(), certs.rsa_cert)
    try:
        c.handshake()
        assert c.read_all() == b""
        assert c.got_close_notify
        port = c.local_port
    finally:
        c.close()
    line = d.wait_close(port=port)
    assert line["reason"].startswith("backend app: no server available (last: 127.0.0.1:"), line
    for p in dead:      # both were tried for this one connection
        assert "server=127.0.0.1:%d is down" % p in d.log()


def test_unix_socket_server(certs, tlsterm, tmp_path):
    path = str(tmp_path / "app.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(8)

    def serve():
        conn, _ = srv.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(4096)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nserver unix\n")

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        d = tlsterm(pool_cfg(["unix:" + path]))
        assert ask(d, certs) == "unix"
        t.join(h.T(10))
        d.wait_log(r"backend=unix:%s " % re.escape(path))    # the access line
    finally:
        srv.close()


def test_source_hash_is_sticky(certs, backend, tlsterm):
    bs = [backend(Named, n) for n in "abcd"]
    d = tlsterm(pool_cfg(["127.0.0.1:%d" % b.port for b in bs], balance="source_hash"))
    seen = {}
    for i in range(2, 18):
        src = "127.0.0.%d" % i
        first = ask(d, certs, source=src)
        assert all(ask(d, certs, source=src) == first for _ in range(3)), src
        seen[src] = first
    assert len(set(seen.values())) >= 2, seen      # 16 clients spread, each sticky
    # a server going away moves only its own clients
    victim = seen["127.0.0.2"]
    next(b for b in bs if b.name == victim).stop()
    for src, name in seen.items():
        now = ask(d, certs, source=src)
        assert now == name or name == victim, (src, name, now)


def test_least_conn_and_max_connections_and_backup(certs, backend, tlsterm):
    a, b, spare = backend(Named, "a"), backend(Named, "b"), backend(Named, "spare")
    d = tlsterm(pool_cfg([
        {"address": "127.0.0.1:%d" % a.port, "max_connections": 1},
        {"address": "127.0.0.1:%d" % b.port, "max_connections": 1},
        {"address": "127.0.0.1:%d" % spare.port, "backup": True},
    ], balance="least_conn"))
    ctx = h.client_context(certs.rsa_cert)
    held = []
    try:
        for _ in range(2):      # least_conn: one each, never both on one
            s = h.tls_connect(d.addr(), None, ctx=ctx)
            held.append(s)
            h.http11_exchange(s)
        assert len(a.conns) == 1 and len(b.conns) == 1
        # both full: the backup serves
        assert ask(d, certs) == "spare"
    finally:
        for s in held:
            s.close()
    h.wait_until(lambda: all(c["done"] for c in a.conns + b.conns), h.T(10),
                 "the held connections to end")
    assert ask(d, certs) in ("a", "b")


@pytest.mark.parametrize("bad,msg", [
    ({"balance": "random"}, 'invalid balance "random": expected round_robin, least_conn or '
                            'source_hash'),
    ({"servers": [{"address": "127.0.0.1:1", "weight": 0}]},
     'invalid weight "0": expected an integer from 1 to 1000'),
    ({"servers": ["unix:relative.sock"]},
     'invalid server address "unix:relative.sock": a unix socket path must be absolute'),
    ({"servers": [{"weight": 2}]}, 'server is missing required key "address"'),
])
def test_pool_config_errors(tmp_path, certs, bad, msg):
    be = {"servers": ["127.0.0.1:1"]}
    be.update(bad)
    cfg = h.one_listener(1)
    cfg["backends"]["app"] = be
    d = h.Tlsterm(tmp_path / "d", cfg, certs=certs)
    r = subprocess.run([h.BIN, "-t", "-c", d.conf_path], capture_output=True, text=True,
                       timeout=h.T(30))
    assert r.returncode == 1 and msg in r.stderr, r.stderr


def test_a_resting_only_server_is_still_tried(certs, backend, tlsterm):
    """With every server resting after a failed connect (a one-server
    backend whose app restarts), tlsterm tries them rather than refusing
    clients for fail_timeout."""
    port = h.free_port()
    d = tlsterm(pool_cfg(["127.0.0.1:%d" % port], fail_timeout="600s"))
    c = h.MemTLS(d.addr(), certs.rsa_cert)
    try:
        c.handshake()
        assert c.read_all() == b""              # nothing listens yet
    finally:
        c.close()
    d.wait_log(r"server=127\.0\.0\.1:%d is down for 600000 ms" % port)
    backend(Named, "a", port=port)
    assert ask(d, certs) == "a"                 # at once, not after 600 s
    d.wait_log(r"server=127\.0\.0\.1:%d is up again" % port)
