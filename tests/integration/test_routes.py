# SPDX-License-Identifier: BSD-2-Clause
"""routes: after the handshake the backend is picked by SNI, exact names
first (whatever their place in the list), then one-label wildcards,
ignoring case; anything else (no SNI, unknown name) goes to the
listener's backend."""

import os
import re

import pytest

import pki
import tlsterm_harness as h

NAMES = ["api.example.com", "www.example.com", "*.example.org", "example.org",
         "a.b.example.org"]


@pytest.fixture(scope="module")
def pk(tmp_path_factory):
    ca = pki.CA(tmp_path_factory.mktemp("pki"), "root")
    return ca, ca.issue("multi", sans=NAMES)


@pytest.fixture
def routed(pk, backend, tlsterm):
    ca, leaf = pk
    bodies = {name: ("backend %s\n" % name).encode() for name in ("app", "api", "org", "special")}
    backends = {name: backend(h.HttpBackend, body=body) for name, body in bodies.items()}
    l = {"name": "https", "listen": ["127.0.0.1:%d" % h.free_port()],
         "certificates": [leaf.entry()], "backend": "app",
         "routes": [{"sni": "api.example.com", "backend": "api"},
                    {"sni": "*.example.org", "backend": "org"},
                    # exact after a wildcard that also matches: exact wins
                    {"sni": "special.example.org", "backend": "special"}]}
    d = tlsterm(h.config([l], {n: b.port for n, b in backends.items()}))
    return d, backends, bodies


@pytest.mark.parametrize("sni,want", [
    ("api.example.com", "api"),
    ("API.Example.COM", "api"),
    ("a.example.org", "org"),
    ("Z9.EXAMPLE.org", "org"),
    ("special.example.org", "special"),
    ("a.b.example.org", "app"),         # a wildcard covers one label
    ("example.org", "app"),
    ("www.example.com", "app"),
    ("api.example.com.evil.test", "app"),
    (None, "app"),
])
def test_route_by_sni(pk, routed, sni, want):
    ca, _ = pk
    d, backends, bodies = routed
    req = b"GET / HTTP/1.0\r\nHost: x\r\n\r\n"
    rc, out, _ = pki.s_client(d.addr(), sni, "-CAfile", ca.cert, "-ign_eof", "-quiet",
                              input=req, timeout=h.T(30))
    assert rc == 0, out
    got = [n for n, body in bodies.items() if body in out.encode()]
    assert got == [want], "SNI %r reached %s, expected %s:\n%s" % (sni, got, want, out)
    line = d.wait_close(listener="https")
    assert line["backend"] == "127.0.0.1:%d" % backends[want].port, line["line"]
    assert line["sni"] == (sni or "-"), line["line"]
    for name, b in backends.items():
        assert b.requests == (1 if name == want else 0), (name, b.requests)


def test_route_python_keepalive(pk, routed):
    """Several requests on one connection all go to the routed backend."""
    ca, _ = pk
    d, backends, bodies = routed
    s = h.tls_connect(d.addr(), ca.cert, server_hostname="x.example.org")
    try:
        for _ in range(3):
            assert h.http11_exchange(s) == bodies["org"]
        port = s.getsockname()[1]
    finally:
        s.close()
    line = d.wait_close(port=port)
    assert line["backend"] == "127.0.0.1:%d" % backends["org"].port, line["line"]
    assert backends["org"].requests == 3


def check(tmp_path, routes, backends=("app", "api")):
    cfg = h.config([{"name": "https", "listen": ["127.0.0.1:%d" % h.free_port()],
                     "certificates": [{"cert": "c.pem", "key": "k.pem"}], "backend": "app",
                     "routes": routes}], {b: h.free_port() for b in backends})
    p = str(tmp_path / "t.yaml")
    rc, _, err = h.check_config(p, cfg)
    return p, rc, err


def test_route_to_unknown_backend_is_an_error(tmp_path, certs):
    os.symlink(certs.ec_cert, str(tmp_path / "c.pem"))
    os.symlink(certs.ec_key, str(tmp_path / "k.pem"))
    p, rc, err = check(tmp_path, [{"sni": "api.example.com", "backend": "nope"}])
    assert rc == 1, err
    assert re.search(re.escape(p) + r":\d+:\d+: .*nope", err), err


@pytest.mark.parametrize("bad", ["a.*.example.org", "*", "*example.org", "exa mple.org",
                                 "api.example.com:443"])
def test_route_bad_sni_is_an_error(tmp_path, certs, bad):
    os.symlink(certs.ec_cert, str(tmp_path / "c.pem"))
    os.symlink(certs.ec_key, str(tmp_path / "k.pem"))
    p, rc, err = check(tmp_path, [{"sni": bad, "backend": "api"}])
    assert rc == 1, err
    assert re.search(re.escape(p) + r":\d+:\d+: invalid sni \"%s\"" % re.escape(bad), err), err
