# SPDX-License-Identifier: BSD-2-Clause
"""Failures in the operator's words (issue 14, section 3): the alert a
client sent, by name and meaning; an sni_strict refusal that names the
SNI (or its absence) and the alert we sent; and, with log.access: false,
connections that ended in error still logged at info while clean ones go
to debug."""

import socket
import ssl

import pytest

import pki
import tlsterm_harness as h


@pytest.mark.parametrize("version", h.versions())
def test_client_alert_unknown_ca(certs, http_backend, tlsterm, version):
    """The client trusts another CA: it sends unknown_ca, and the log says
    so instead of "A fatal alert message was received from our peer"."""
    d = tlsterm(h.one_listener(http_backend.port))
    ctx = h.client_context(certs.ec_cert)       # the server shows the RSA one
    h.pin_version(ctx, version)
    raw = socket.create_connection(d.addr(), timeout=h.T(10))
    port = raw.getsockname()[1]
    with pytest.raises(ssl.SSLCertVerificationError):
        ctx.wrap_socket(raw, server_hostname="localhost")
    raw.close()
    line = d.wait_close(port=port)
    assert line["reason"] == ("handshake failed: the client sent alert unknown_ca: it does "
                              "not trust this certificate's issuer"), line["line"]
    assert line["state"] == "in handshake", line["line"]


@pytest.fixture
def strict(certs, http_backend, tlsterm):
    return tlsterm(h.one_listener(http_backend.port, opts={"sni_strict": True}))


@pytest.mark.parametrize("version", h.versions())
def test_sni_strict_refusal_names_the_name(strict, version):
    rc, out, leaf = pki.s_client(strict.addr(), "unknown.test", h.s_client_version_flag(version),
                                 timeout=h.T(30))
    assert rc != 0 and leaf is None, out
    line = strict.wait_close(listener="https")
    assert line["reason"] == ("handshake failed: the client asked for SNI name unknown.test, "
                              "which no certificate of listener https serves (sni_strict); "
                              "we sent alert unrecognized_name"), line["line"]


@pytest.mark.parametrize("version", h.versions())
def test_sni_strict_refusal_without_sni(strict, version):
    rc, out, leaf = pki.s_client(strict.addr(), None, h.s_client_version_flag(version),
                                 timeout=h.T(30))
    assert rc != 0 and leaf is None, out
    line = strict.wait_close(listener="https")
    assert line["reason"].startswith("handshake failed: the client sent no SNI and listener "
                                     "https is sni_strict; we sent alert "), line["line"]
    # the alert we logged is the one the client saw
    sent = line["reason"].rsplit(" ", 1)[1]
    assert "alert " + sent.replace("_", " ") in out, (sent, out)


def test_access_false_logs_errors_only(certs, http_backend, tlsterm):
    """log.access: false: a clean connection is a debug line, a failed
    handshake, a refused plain-HTTP request and a backend failure are info
    lines (tlsterm.8, LOGGING)."""
    dead = h.free_port()
    cfg = h.config([h.listener("up", h.free_port(), "live"),
                    h.listener("down", h.free_port(), "dead")],
                   {"live": http_backend.port, "dead": dead}, log_level="info")
    cfg["log"]["access"] = False
    d = tlsterm(cfg)
    s = h.tls_connect(d.addr("up"), certs.rsa_cert)
    clean = s.getsockname()[1]
    assert h.http11_exchange(s) == h.BODY
    s.close()
    bad = socket.create_connection(d.addr("up"), timeout=h.T(10))
    bad_port = bad.getsockname()[1]
    with pytest.raises(ssl.SSLCertVerificationError):      # trusts another CA
        h.client_context(certs.ec_cert).wrap_socket(bad, server_hostname="localhost")
    bad.close()
    failed = d.wait_close(port=bad_port, listener="up")
    assert failed["reason"].startswith("handshake failed: "), failed["line"]
    plain = socket.create_connection(d.addr("up"), timeout=h.T(10))
    plain_port = plain.getsockname()[1]
    plain.sendall(b"GET / HTTP/1.0\r\n\r\n")
    h.recv_all(plain)
    plain.close()
    d.wait_close(port=plain_port, listener="up")
    down = h.MemTLS(d.addr("down"), certs.rsa_cert, timeout=h.T(10))
    try:
        down.handshake()
        down.read_all()
        down_port = down.local_port
    finally:
        down.close()
    line = d.wait_close(port=down_port, listener="down")
    assert "no server available" in line["reason"], line["line"]
    # the clean one: its close line was written (at debug) before the
    # failures were, so its absence now is final
    assert clean not in [h.client_port(x) for x in d.close_lines()], d.log()
    d.expect_open_at_stop = None
    assert d.stop() == []
