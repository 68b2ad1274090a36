# SPDX-License-Identifier: BSD-2-Clause
"""What backends learn about the TLS session, on TLS 1.2 and TLS 1.3 alike:
the PROXY v2 SSL TLV (version "TLSv1.3", the suite as the close line
names it, the client-certificate flag, verify result and CN) and, with
forwarded_headers and client_cert_headers, the X-SSL-Client-* headers of
a client certificate sent in TLS 1.3's post-ServerHello flight."""

import socket
import struct

import pytest

import pki
import tlsterm_harness as h

V = pytest.mark.parametrize("version", h.versions())


@pytest.fixture(scope="module")
def pk(tmp_path_factory):
    ca = pki.CA(tmp_path_factory.mktemp("pki"), "clients", cn="headers test CA")
    return ca, ca.issue("alice", cn="alice", client=True)


def pp_get(d, certs, version, leaf=None):
    """One request pinned to `version`; returns the local port."""
    ctx = h.pin_version(h.client_context(certs.rsa_cert), version)
    ctx.set_alpn_protocols(["http/1.1"])
    if leaf is not None:
        ctx.load_cert_chain(leaf.chain, leaf.key)
    s = h.tls_connect(d.addr(), None, ctx=ctx)
    try:
        s.sendall(b"GET /pp HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert h.recv_all(s).startswith(b"HTTP/1.1 200"), "no answer"
        return s.getsockname()[1]
    finally:
        s.close()


def pp_config(pk, backend_port, client_auth=False):
    cfg = h.one_listener(backend_port)
    cfg["backends"]["app"]["proxy_protocol"] = "v2"
    cfg["listeners"][0]["alpn"] = ["http/1.1"]
    if client_auth:
        cfg["listeners"][0]["client_auth"] = {"mode": "optional", "ca": pk[0].cert}
    return cfg


def ssl_tlv(conn, d, port):
    hdr = conn["header"]
    assert hdr[:12] == b"\r\n\r\n\x00\r\nQUIT\n" and hdr[12] == 0x21, hdr[:16]
    src, _, sport, dport = struct.unpack(">4s4sHH", hdr[16:28])
    assert (socket.inet_ntoa(src), sport, dport) == ("127.0.0.1", port, d.port())
    t = h.proxy_tlvs(hdr[28:])
    assert t[0x01] == b"http/1.1" and t[0x02] == b"localhost", t
    s = t[0x20]
    return s[0], struct.unpack(">I", s[1:5])[0], h.proxy_tlvs(s[5:])


@V
def test_v2_ssl_tlv(pk, certs, backend, tlsterm, version):
    cap = backend(h.ProxyV2Capture)
    d = tlsterm(pp_config(pk, cap.port))
    port = pp_get(d, certs, version)
    cap.wait_conns(1)
    client, verify, sub = ssl_tlv(cap.conns[0], d, port)
    line = d.wait_close(port=port)
    assert sub[0x21] == h.log_version(version).encode(), sub
    assert sub[0x23] == line["cipher"].encode(), (sub, line["line"])
    if version == "1.3":
        assert sub[0x23].startswith(b"TLS1-3-"), sub
    assert client == 0x01 and 0x22 not in sub, (client, sub)       # TLS, no certificate
    assert cap.conns[0]["request"].startswith(b"GET /pp HTTP/1.1")


@V
def test_v2_ssl_tlv_client_certificate(pk, certs, backend, tlsterm, version):
    ca, alice = pk
    cap = backend(h.ProxyV2Capture)
    d = tlsterm(pp_config(pk, cap.port, client_auth=True))
    port = pp_get(d, certs, version, alice)
    cap.wait_conns(1)
    client, verify, sub = ssl_tlv(cap.conns[0], d, port)
    assert client == 0x01 | 0x02, client              # PP2_CLIENT_SSL | PP2_CLIENT_CERT_CONN
    assert verify == 0, verify                          # presented and verified
    assert sub[0x22] == b"alice", sub
    assert sub[0x21] == h.log_version(version).encode(), sub
    line = d.wait_close(port=port)
    assert (line["client_cert"], line["verify"]) == ("CN=alice", "ok"), line["line"]


@V
def test_x_ssl_client_headers(pk, certs, backend, tlsterm, version):
    ca, alice = pk
    b = backend(h.HeadRecorder)
    cfg = h.one_listener(b.port)
    cfg["backends"]["app"].update({"forwarded_headers": True, "client_cert_headers": True})
    cfg["listeners"][0]["client_auth"] = {"mode": "optional", "ca": ca.cert}
    d = tlsterm(cfg)
    pin = {"1.2": ["--tlsv1.2", "--tls-max", "1.2"], "1.3": ["--tlsv1.3"]}[version]
    url = "https://localhost:%d/" % d.port()
    r = h.run(["curl", "-sS", *pin, "--cacert", certs.rsa_cert, "--cert", alice.chain,
               "--key", alice.key, "-H", "X-SSL-Client-Subject: CN=admin", url])
    assert r.returncode == 0 and r.stdout == b"ok", r.stderr.decode(errors="replace")
    head = b.heads[0]
    assert h.header_values(head, "x-ssl-client-verify") == ["SUCCESS"], head
    assert h.header_values(head, "x-ssl-client-subject") == ["CN=alice"], head      # not spoofed
    assert h.header_values(head, "x-ssl-client-sha256") == [alice.sha256], head
    assert h.header_values(head, "x-forwarded-proto") == ["https"], head
    line = d.wait_close(listener="https")
    assert (line["tls"], line["client_cert"]) == (h.log_version(version), "CN=alice"), \
        line["line"]
    r = h.run(["curl", "-sS", *pin, "--cacert", certs.rsa_cert, url])
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    assert h.header_values(b.heads[1], "x-ssl-client-verify") == ["NONE"], b.heads[1]
    assert h.header_values(b.heads[1], "x-ssl-client-subject") == [], b.heads[1]
