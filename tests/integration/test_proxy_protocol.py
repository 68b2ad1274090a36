# SPDX-License-Identifier: BSD-2-Clause
"""proxy_protocol: v1 | v2 per backend.  The header reaches the backend
before any payload; a real peer (nginx with `listen ... proxy_protocol`)
sees the TLS client's address; the v2 TLVs carry ALPN, SNI, the SSL
details and a unique id."""

import os
import shutil
import socket
import ssl
import struct
import subprocess

import pytest

import tlsterm_harness as h

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def pp_config(backend_port, version, alpn=None):
    cfg = h.one_listener(backend_port)
    cfg["backends"]["app"]["proxy_protocol"] = version
    if alpn:
        cfg["listeners"][0]["alpn"] = alpn
    return cfg


class Nginx:
    """nginx reading the PROXY header and logging what it learnt."""

    def __init__(self, d):
        self.dir = str(d)
        os.makedirs(self.dir, exist_ok=True)
        self.port = h.free_port()
        self.log = os.path.join(self.dir, "access.log")
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write("""daemon off;
master_process off;
pid %(d)s/nginx.pid;
error_log %(d)s/error.log warn;
events { worker_connections 64; }
http {
  log_format pp '$proxy_protocol_addr $proxy_protocol_port $request';
  access_log %(log)s pp;
  client_body_temp_path %(d)s/body;
  proxy_temp_path %(d)s/proxy;
  fastcgi_temp_path %(d)s/fcgi;
  uwsgi_temp_path %(d)s/uwsgi;
  scgi_temp_path %(d)s/scgi;
  server {
    listen 127.0.0.1:%(p)d proxy_protocol;
    location / { return 200 "hello via proxy protocol\\n"; }
  }
}
""" % {"d": self.dir, "log": self.log, "p": self.port})
        self.proc = subprocess.Popen([NGINX, "-p", self.dir, "-c", conf, "-e",
                                      os.path.join(self.dir, "error.log")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     preexec_fn=h.die_with_parent)
        h.wait_until(lambda: self.proc.poll() is not None or self.listening(), h.T(10),
                     "nginx to listen")
        assert self.proc.poll() is None, self.proc.stderr.read()

    def listening(self):
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def lines(self):
        if not os.path.exists(self.log):
            return []
        with open(self.log) as f:
            return [l.split() for l in f if l.strip()]

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=h.T(10))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def nginx(tmp_path):
    if not os.path.exists(NGINX):
        pytest.skip("nginx is not installed (.ci/deps installs nginx-light)")
    n = Nginx(tmp_path / "nginx")
    yield n
    n.stop()


def get(d, certs, path="/pp"):
    s = h.tls_connect(d.addr(), certs.rsa_cert)
    try:
        s.sendall(("GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
                   % path).encode())
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
        return s.getsockname()[1], data
    finally:
        s.close()


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_nginx_sees_the_client_address(certs, nginx, tlsterm, version):
    d = tlsterm(pp_config(nginx.port, version))
    port, resp = get(d, certs, "/pp-" + version)
    assert resp.startswith(b"HTTP/1.1 200"), resp
    assert resp.endswith(b"hello via proxy protocol\n"), resp
    h.wait_until(lambda: nginx.lines(), h.T(10), "nginx's access line")
    addr, pport, method, path = nginx.lines()[-1][:4]
    assert (addr, pport, path) == ("127.0.0.1", str(port), "/pp-" + version), nginx.lines()
    # the access line counts the client's bytes only, not the header
    line = d.wait_close(port=port)
    assert line["in"] == len("GET /pp-%s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
                             % version), line["line"]


def test_v2_tlvs_carry_alpn_sni_ssl_and_unique_id(certs, backend, tlsterm):
    cap = backend(h.ProxyV2Capture)
    d = tlsterm(pp_config(cap.port, "v2", alpn=["http/1.1"]))
    ctx = h.client_context(certs.rsa_cert)
    ctx.set_alpn_protocols(["http/1.1"])
    s = h.tls_connect(d.addr(), None, ctx=ctx)
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 200")
        client_port = s.getsockname()[1]
    finally:
        s.close()
    cap.wait_conns(1, timeout=h.T(10), what="the backend connection")
    hdr = cap.conns[0]["header"]
    assert hdr[:12] == b"\r\n\r\n\x00\r\nQUIT\n"
    assert hdr[12] == 0x21 and hdr[13] == 0x11          # v2 PROXY, TCP over IPv4
    src, dst, sport, dport = struct.unpack(">4s4sHH", hdr[16:28])
    assert socket.inet_ntoa(src) == "127.0.0.1" and sport == client_port
    assert dport == d.port()
    t = h.proxy_tlvs(hdr[28:])
    assert t[0x01] == b"http/1.1"                           # ALPN
    assert t[0x02] == b"localhost"                          # authority (SNI)
    assert len(t[0x05]) == 16                               # unique id
    ssl_tlv = t[0x20]
    assert ssl_tlv[0] & 0x01 and not ssl_tlv[0] & 0x02      # TLS, no client cert
    sub = h.proxy_tlvs(ssl_tlv[5:])
    assert sub[0x21] == h.DEFAULT_TLS.encode()
    assert b"CHACHA20" in sub[0x23] or b"GCM" in sub[0x23], sub
    assert cap.conns[0]["request"].startswith(b"GET / HTTP/1.1")


def test_bad_proxy_protocol_value_is_a_config_error(tmp_path, certs):
    cfg = pp_config(1, "v3")
    d = h.Tlsterm(tmp_path / "d", cfg, certs=certs)
    r = subprocess.run([h.BIN, "-t", "-c", d.conf_path], capture_output=True, text=True,
                       timeout=h.T(30))
    assert r.returncode == 1
    assert 'invalid proxy_protocol "v3": expected v1, v2 or off' in r.stderr, r.stderr


# ---------------------------------------------------------------- inbound

class LineCapture(h.Backend):
    """Reads the v1 PROXY line tlsterm sends, then one request; answers."""

    async def handle(self, reader, writer, conn):
        conn["pp"] = (await reader.readuntil(b"\r\n")).decode()
        conn["request"] = await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()


def in_config(backend_port, trusted, out=None, **kw):
    cfg = h.one_listener(backend_port, **kw)
    cfg["listeners"][0]["proxy_protocol_in"] = True
    cfg["listeners"][0]["trusted"] = trusted
    if out:
        cfg["backends"]["app"]["proxy_protocol"] = out
    return cfg


def v2_header(src, sport, dst, dport):
    body = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack(">HH", sport, dport)
    body += b"\x04\x00\x01z"                    # a NOOP TLV, to be skipped
    return b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x21, 0x11]) + struct.pack(">H", len(body)) + body


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_client_address_from_a_trusted_balancer(certs, backend, tlsterm, version):
    cap = backend(LineCapture)
    d = tlsterm(in_config(cap.port, ["10.9.9.9", "127.0.0.0/8"], out="v1"))
    header = (b"PROXY TCP4 203.0.113.7 198.51.100.1 40000 443\r\n" if version == "v1"
              else v2_header("203.0.113.7", 40000, "198.51.100.1", 443))
    c = h.MemTLS(d.addr(), certs.rsa_cert)
    try:
        c.sock.sendall(header)
        c.handshake()
        c.write(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert c.read_until(b"ok").endswith(b"ok")
        lb_port = c.local_port
    finally:
        c.close()
    # the original client replaces the balancer everywhere: log and PROXY out
    line = d.wait_close()
    assert line["client"] == "203.0.113.7:40000", line["line"]
    d.wait_log(r"client=203\.0\.113\.7:40000 via=127\.0\.0\.1:%d PROXY v%s header"
               % (lb_port, version[1]))
    cap.wait_conns(1, timeout=h.T(10))
    assert cap.conns[0]["pp"] == "PROXY TCP4 203.0.113.7 198.51.100.1 40000 443\r\n"


def test_trusted_peer_without_header_is_closed(certs, http_backend, tlsterm):
    d = tlsterm(in_config(http_backend.port, ["127.0.0.1"]))
    c = h.MemTLS(d.addr(), certs.rsa_cert)
    try:
        with pytest.raises((ssl.SSLError, ConnectionError, OSError, AssertionError)):
            c.handshake()
    finally:
        c.close()
    line = d.wait_close()
    assert line["reason"] == ("bad PROXY header from a trusted address: "
                              "not a PROXY protocol header"), line["line"]
    assert line["state"] == "in PROXY header", line["line"]


def send_and_be_closed(d, data, timeout=5):
    """Sends raw bytes; tlsterm must close the connection.  Returns the
    close line."""
    s = socket.create_connection(d.addr(), timeout=h.T(5))
    try:
        s.sendall(data)
        assert h.closed_by_peer(s, h.T(timeout)) in ("eof", "reset")
    finally:
        s.close()
    return d.wait_close()


def test_untrusted_peer_may_not_send_a_header(certs, http_backend, tlsterm):
    d = tlsterm(in_config(http_backend.port, ["192.0.2.0/24", "2001:db8::/32"]))
    line = send_and_be_closed(d, b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n")
    assert line["reason"] == "PROXY header from an address not in trusted", line["line"]
    assert line["state"] == "in PROXY header", line["line"]
    assert line["client"].startswith("127.0.0.1:")
    # ... while plain TLS from it works as on any listener
    t = h.tls_connect(d.addr(), certs.rsa_cert)
    try:
        t.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert t.recv(100).startswith(b"HTTP/1.1 200")
    finally:
        t.close()


def test_partial_header_is_bounded_by_the_handshake_timeout(certs, http_backend, tlsterm):
    d = tlsterm(in_config(http_backend.port, ["127.0.0.1"], timeouts={"handshake": "1s"}))
    s = socket.create_connection(d.addr(), timeout=h.T(5))
    try:
        s.sendall(b"PROXY TCP4 203.0.113.7 ")
        cpu0 = h.proc_cpu_seconds(d.pid)
        assert h.closed_by_peer(s, h.T(10)) in ("eof", "reset")
        # waiting on a partial header must not spin the worker
        assert h.proc_cpu_seconds(d.pid) - cpu0 < 0.5
    finally:
        s.close()
    line = d.wait_close()
    assert (line["reason"], line["state"]) == ("handshake timeout", "in PROXY header"), \
        line["line"]


def test_malformed_header_is_refused(certs, http_backend, tlsterm):
    d = tlsterm(in_config(http_backend.port, ["127.0.0.1"]))
    line = send_and_be_closed(d, b"PROXY TCP4 203.0.113.7 198.51.100.1 99999 443\r\n")
    assert line["reason"] == ("bad PROXY header from a trusted address: "
                                        "v1 port is not a number from 0 to 65535")
    assert line["state"] == "in PROXY header", line["line"]


def test_connect_and_close_is_not_a_header_problem(certs, http_backend, tlsterm):
    """A balancer's TCP health check sends nothing: not "inside the PROXY
    header", and the state says no byte came."""
    d = tlsterm(in_config(http_backend.port, ["127.0.0.1"]))
    socket.create_connection(d.addr(), timeout=h.T(5)).close()
    line = d.wait_close()
    assert (line["reason"], line["state"]) == ("client closed before sending anything",
                                               "before the first byte"), line["line"]


def test_proxy_protocol_in_needs_trusted(tmp_path, certs):
    cfg = h.one_listener(1)
    cfg["listeners"][0]["proxy_protocol_in"] = True
    d = h.Tlsterm(tmp_path / "d", cfg, certs=certs)
    r = subprocess.run([h.BIN, "-t", "-c", d.conf_path], capture_output=True, text=True,
                       timeout=h.T(30))
    assert r.returncode == 1
    assert "proxy_protocol_in needs \"trusted: [CIDR, ...]\"" in r.stderr, r.stderr
