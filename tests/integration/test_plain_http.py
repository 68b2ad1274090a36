# SPDX-License-Identifier: BSD-2-Clause
"""Plain HTTP sent to a TLS port gets a 400 that says so, as nginx
answers, and the log says "plain HTTP request sent to the TLS port"
instead of a ClientHello error.  A PROXY v1 header is not mistaken for
HTTP, and TLS clients are served as before."""

import socket
import subprocess

import tlsterm_harness as h


def plain_request(addr, data):
    s = socket.create_connection(addr, timeout=h.T(10))
    port = s.getsockname()[1]
    try:
        s.sendall(data)
        return port, h.recv_all(s)          # until the daemon's FIN
    finally:
        s.close()


def test_plain_http_gets_400(certs, http_backend, tlsterm):
    d = tlsterm(h.one_listener(http_backend.port))
    port, answer = plain_request(d.addr(), b"GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 Bad Request\r\n"), answer
    assert b"\r\nConnection: close" in head, answer
    assert body == b"plain HTTP request sent to an HTTPS port\n", answer
    line = d.wait_close(port=port)
    assert line["reason"] == "plain HTTP request sent to the TLS port", line["line"]
    assert line["state"] == "plain http" and line["hs_ms"] == -1, line["line"]
    assert line["out"] == len(answer), line["line"]
    assert http_backend.requests == 0
    # a TLS client on the same port is served as before
    assert h.https_get(d.addr(), certs.rsa_cert)[:2] == (200, h.BODY)


def test_curl_http_to_https_port(certs, http_backend, tlsterm):
    d = tlsterm(h.one_listener(http_backend.port))
    r = subprocess.run(["curl", "-s", "-w", "%{http_code}", "http://%s:%d/" % d.addr()],
                       capture_output=True, timeout=h.T(30))
    assert r.returncode == 0, r
    assert r.stdout == b"plain HTTP request sent to an HTTPS port\n400", r
    lines = d.wait_close(listener="https")
    assert lines["reason"] == "plain HTTP request sent to the TLS port", lines["line"]


def test_proxy_header_is_not_http(certs, http_backend, tlsterm):
    """A PROXY v1 header to a listener without proxy_protocol_in: TLS
    fails on it, as before; no HTTP answer is invented."""
    d = tlsterm(h.one_listener(http_backend.port))
    port, answer = plain_request(d.addr(), b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n")
    assert not answer.startswith(b"HTTP/"), answer
    line = d.wait_close(port=port)
    assert line["reason"].startswith("handshake failed: "), line["line"]
