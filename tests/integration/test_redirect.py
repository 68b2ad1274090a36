# SPDX-License-Identifier: BSD-2-Clause
"""The port-80 companion: a plain-HTTP listener with redirect_to_https
answers every request with 308 to the same host and path over https, and
curl -L lands on the TLS listener."""

import socket
import subprocess

import pytest

import tlsterm_harness as h


def with_redirect(backend_port, https_port=None):
    cfg = h.one_listener(backend_port)
    red = {"name": "http", "listen": ["127.0.0.1:%d" % h.free_port()],
           "redirect_to_https": True}
    if https_port:
        red["https_port"] = https_port
    cfg["listeners"].append(red)
    return cfg


def raw_request(addr, data):
    with socket.create_connection(addr, timeout=h.T(5)) as s:
        s.sendall(data)
        out = b""
        while True:
            b = s.recv(65536)
            if not b:
                return out.decode("latin-1")
            out += b


def test_redirects_to_the_same_host_and_path(http_backend, tlsterm):
    d = tlsterm(with_redirect(http_backend.port))
    resp = raw_request(d.addr("http"), b"GET /a/b?x=1 HTTP/1.1\r\nHost: example.com:80\r\n\r\n")
    assert resp.startswith("HTTP/1.1 308 Permanent Redirect\r\n"), resp
    assert "\r\nLocation: https://example.com/a/b?x=1\r\n" in resp, resp
    line = d.wait_close(listener="http")
    assert line["reason"] == "redirected (308) to https://example.com/a/b?x=1", line["line"]
    assert line["state"] == "plain http" and line["backend"] == "-"
    resp = raw_request(d.addr("http"), b"HEAD / HTTP/1.0\r\nHost: [::1]:80\r\n\r\n")
    assert "\r\nLocation: https://[::1]/\r\n" in resp, resp


def test_curl_follows_to_the_tls_listener(certs, http_backend, tlsterm):
    tls_port = h.free_port()
    cfg = with_redirect(http_backend.port, https_port=tls_port)
    cfg["listeners"][0]["listen"] = ["127.0.0.1:%d" % tls_port]
    d = tlsterm(cfg)
    r = subprocess.run(["curl", "-s", "-L", "--cacert", certs.rsa_cert,
                        "http://localhost:%d/hello" % d.port("http")],
                       capture_output=True, timeout=h.T(30))
    assert r.returncode == 0, r.stderr
    assert r.stdout == h.BODY


@pytest.mark.parametrize("request_bytes,status", [
    (b"GET / HTTP/1.1\r\n\r\n", "400 Bad Request"),                     # no Host
    # a header line without a colon is malformed (RFC 9112 5.1); http-parser
    # refuses it, where the old hand-written parser let it pass
    (b"GET / HTTP/1.1\r\nHost: evil.example\r\nx\r\n\r\n", "400 Bad Request"),
    (b"GET / HTTP/1.1\r\nHost: good.example\r\n\r\n", None),
    # issue 18's fuzzing found these accepted or mangled by the sscanf parser:
    (b"GET /x JUNK\r\nHost: a\r\n\r\n", "400 Bad Request"),            # no HTTP/1.x
    (b"GET\r\n/evil HTTP/1.1\r\nHost: a\r\n\r\n", "400 Bad Request"),  # CRLF as a space
    (b"GET /" + b"q" * 2100 + b" HTTP/1.1\r\nHost: a\r\n\r\n", "414 URI Too Long"),
    (b"GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n", "400 Bad Request"),   # control byte
    (b"GET / HTTP/1.1\r\n\r\nHost: a\r\n\r\n", "400 Bad Request"),     # Host after the head
    (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", "400 Bad Request"),
    (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "400 Bad Request"),
    (b"GET http://x/ HTTP/1.1\r\nHost: a\r\n\r\n", "400 Bad Request"),  # absolute form
    (b"GET / HTTP/1.1\r\nHost: a b\"c\r\n\r\n", "400 Bad Request"),     # odd host
    (b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: a\r\n\r\n", "431 Request Header"),
])
def test_bad_requests(http_backend, tlsterm, request_bytes, status):
    d = tlsterm(with_redirect(http_backend.port))
    resp = raw_request(d.addr("http"), request_bytes)
    if status is None:
        assert resp.startswith("HTTP/1.1 308"), resp
    else:
        assert resp.startswith("HTTP/1.1 " + status), resp
        assert "Location" not in resp


def test_redirect_listener_takes_no_tls_keys(tmp_path, certs):
    cfg = with_redirect(1)
    cfg["listeners"][1]["certificates"] = ["rsa"]
    d = h.Tlsterm(tmp_path / "d", cfg, certs=certs)
    r = subprocess.run([h.BIN, "-t", "-c", d.conf_path], capture_output=True, text=True,
                       timeout=h.T(30))
    assert r.returncode == 1
    assert 'unknown key "certificates"' in r.stderr, r.stderr
