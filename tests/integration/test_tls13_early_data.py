# SPDX-License-Identifier: BSD-2-Clause
"""TLS 1.3 early data (0-RTT) is never accepted: bytes a client sends
before the handshake ends never reach a backend, and the daemon goes on
serving.

tlsterm never advertises early data (its tickets carry max_early_data 0),
so OpenSSL's s_client would never send any.  The test makes such a
client anyway: it saves a real session (-sess_out), adds
max_early_data = 16384 to OpenSSL's SSL_SESSION encoding (context tag
[15], an INTEGER), and resumes with -early_data.  That is what a client
holding a ticket from another server for the same name (one that does
allow 0-RTT) would send.

RFC 8446 4.2.10 wants a server that rejects early data to skip those
records and complete the handshake.  mbedTLS 3.6 does that only when
built with MBEDTLS_SSL_EARLY_DATA, which Debian's package is not: it
tries to decrypt the first 0-RTT record with the handshake key and ends
the connection (bad record MAC).  That part is a strict xfail here, so
it is noticed when it changes; the safety part (nothing of the early
data reaches a backend, the daemon keeps serving) must hold either way."""

import base64
import re

import pytest

import pki
import tlsterm_harness as h

pytestmark = h.needs_tls13()

EARLY = b"GET /early-data HTTP/1.1\r\nHost: localhost\r\n\r\n"
LATE = b"GET /after-handshake HTTP/1.0\r\nHost: localhost\r\n\r\n"


# ---------------------------------------------------------------- DER

def der_read(b, i):
    """(tag, start of content, content length) of the DER element at i."""
    tag, n = b[i], b[i + 1]
    i += 2
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(b[i:i + k], "big")
        i += k
    return tag, i, n


def der_len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def der(tag, content):
    return bytes([tag]) + der_len(len(content)) + content


def with_max_early_data(pem, value):
    """OpenSSL's SSL SESSION PARAMETERS (a DER SEQUENCE) with
    max_early_data = value: [15] EXPLICIT INTEGER, placed in tag order
    (after [14], before [16] and up)."""
    body = base64.b64decode("".join(l for l in pem.splitlines() if not l.startswith("-----")))
    tag, i, n = der_read(body, 0)
    assert tag == 0x30 and i + n == len(body), "not one DER SEQUENCE"
    elems = []
    while i < len(body):
        t, c, n = der_read(body, i)
        elems.append((t, body[i:c + n]))
        i = c + n
    assert all(t != 0xAF for t, _ in elems), "the session already has max_early_data"
    new = der(0xAF, der(0x02, value.to_bytes(4, "big").lstrip(b"\0")))
    at = next((k for k, (t, _) in enumerate(elems) if 0xA0 <= t <= 0xBE and t & 0x1F > 15),
              len(elems))
    elems.insert(at, (0xAF, new))
    out = base64.b64encode(der(0x30, b"".join(raw for _, raw in elems))).decode()
    return ("-----BEGIN SSL SESSION PARAMETERS-----\n" +
            "\n".join(out[k:k + 64] for k in range(0, len(out), 64)) +
            "\n-----END SSL SESSION PARAMETERS-----\n")


# ---------------------------------------------------------------- the backend

class Recorder(h.HeadRecorder):
    """Answers each HTTP request 200 with its path; records every byte
    (self.heads)."""

    def answer(self, head):
        path = head.split(b" ")[1]
        keep = head.startswith(b"GET") and b"HTTP/1.1" in head.split(b"\r\n")[0]
        return (b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s"
                % (len(path) + 7, b"served " + path)), keep


# ---------------------------------------------------------------- the attempt

def s_client(d, certs, *opts, input=b""):
    rc, out, _ = pki.s_client(d.addr(), "localhost", "-CAfile", certs.rsa_cert, "-tls1_3",
                              "-ign_eof", *opts, input=input, timeout=h.T(30))
    return rc, out


@pytest.fixture
def attempt(certs, backend, tlsterm, tmp_path):
    """Runs a 0-RTT attempt; returns (daemon, recorder, s_client output,
    close line)."""
    rec = backend(Recorder)
    d = tlsterm(h.one_listener(rec.port))
    sess = tmp_path / "sess.pem"
    rc, out = s_client(d, certs, "-sess_out", str(sess), input=LATE)
    assert rc == 0 and "New, TLSv1.3, " in out, out
    assert "Max Early Data: 0" in out, "tlsterm advertised early data:\n" + out
    edited = tmp_path / "early.pem"
    edited.write_text(with_max_early_data(sess.read_text(), 16384))
    r = h.run(["openssl", "sess_id", "-in", str(edited), "-noout", "-text"])
    text = r.stdout.decode()
    assert r.returncode == 0 and "Max Early Data: 16384" in text, (text, r.stderr)
    assert re.search(r"Protocol\s*: TLSv1\.3", text), text
    early = tmp_path / "early.txt"
    early.write_bytes(EARLY)
    rc, out = s_client(d, certs, "-sess_in", str(edited), "-early_data", str(early), input=LATE)
    line = d.wait_close(listener="https", count=2)[1]
    return d, rec, out, line


def test_early_data_never_reaches_a_backend(certs, attempt):
    d, rec, out, line = attempt
    assert "Early data was accepted" not in out, out
    assert "Early data was rejected" in out, "s_client sent no early data:\n" + out
    heads = b"".join(rec.heads)
    assert b"/early-data" not in heads, "early data reached the backend: %r" % rec.heads
    assert line["tls"] == "TLSv1.3" or line["reason"].startswith("handshake failed"), \
        line["line"]
    if line["tls"] != "TLSv1.3":
        # the operator is told what happened, not "bad MAC"
        assert "early data (0-RTT)" in line["reason"], line["line"]
    # the daemon goes on serving
    status, body, port = h.https_get(d.addr(), certs.rsa_cert, path="/next")
    assert (status, body) == (200, b"served /next")
    assert d.wait_close(port=port)["reason"].startswith("done")


@pytest.mark.xfail(strict=True, reason="mbedTLS 3.6 built without MBEDTLS_SSL_EARLY_DATA "
                   "(Debian) cannot skip rejected 0-RTT records (RFC 8446 4.2.10)")
def test_rejected_early_data_still_served(certs, attempt):
    d, rec, out, line = attempt
    assert "Early data was rejected" in out, out
    assert re.search(r"^(New|Reused), TLSv1\.3, Cipher is TLS_", out, re.M), out
    assert "served /after-handshake" in out, "the request after the handshake was not " \
        "answered:\n" + out
    assert line["reason"].startswith("done"), line["line"]
    assert line["in"] == len(LATE), line["line"]      # the early bytes are not counted
    assert [hd.split(b" ")[1] for hd in rec.heads] == [b"/after-handshake"] * 2, rec.heads
