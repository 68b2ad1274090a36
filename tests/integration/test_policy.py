# SPDX-License-Identifier: BSD-2-Clause
"""TLS policy: only ECDHE key exchange with AEAD ciphers, in the server's
order; cipher names in OpenSSL, IANA or mbedTLS spelling; configured
curves; extended master secret; no client renegotiation; fallback SCSV.

What the server accepts is checked with hand-made ClientHellos too, so the
result does not depend on what the local OpenSSL build still offers (it
has no 3DES, RC4 or export suites at all)."""

import os
import re
import shutil
import socket
import struct
import subprocess
import threading

import pytest

import tlsterm_harness as h

# ---------------------------------------------------------------- raw hellos

ECDHE_RSA_AES128_GCM = 0xC02F
SUITES_BAD = {
    "ECDHE-RSA-AES128-SHA (CBC)": [0xC013],
    "ECDHE-RSA-AES128-SHA256 (CBC)": [0xC027],
    "ECDHE-RSA-DES-CBC3-SHA (3DES)": [0xC012],
    "DES-CBC3-SHA (3DES, RSA kx)": [0x000A],
    "ECDHE-RSA-RC4-SHA (RC4)": [0xC011],
    "RC4-SHA (RC4)": [0x0005],
    "ECDHE-RSA-NULL-SHA (NULL)": [0xC010],
    "NULL-SHA256 (NULL)": [0x003B],
    "EXP-RC4-MD5 (EXPORT)": [0x0003],
    "EXP-DES-CBC-SHA (EXPORT)": [0x0008],
    "DES-CBC-SHA (LOW)": [0x0009],
    "AES128-GCM-SHA256 (RSA kx, no FS)": [0x009C],
    "DHE-RSA-AES128-GCM-SHA256 (DHE)": [0x009E],
    "ADH-AES128-GCM-SHA256 (aNULL)": [0x00A6],
    "AECDH-AES128-SHA (aNULL)": [0xC018],
    "PSK-AES128-GCM-SHA256 (PSK)": [0x00A8],
    "AES128-CCM (RSA kx, CCM)": [0xC09C],
}
FALLBACK_SCSV = 0x5600
ALERTS = {40: "handshake_failure", 47: "illegal_parameter", 70: "protocol_version",
          71: "insufficient_security", 86: "inappropriate_fallback", 112: "unrecognized_name"}


def _ext(typ, body):
    return struct.pack("!HH", typ, len(body)) + body


def client_hello(suites, version=0x0303, sni="localhost"):
    exts = b""
    if sni:
        name = sni.encode()
        entry = b"\x00" + struct.pack("!H", len(name)) + name
        exts += _ext(0x0000, struct.pack("!H", len(entry)) + entry)
    groups = struct.pack("!HHH", 0x001D, 0x0017, 0x0018)
    exts += _ext(0x000A, struct.pack("!H", len(groups)) + groups)
    exts += _ext(0x000B, b"\x01\x00")
    sigs = struct.pack("!6H", 0x0401, 0x0403, 0x0501, 0x0503, 0x0201, 0x0203)
    exts += _ext(0x000D, struct.pack("!H", len(sigs)) + sigs)
    exts += _ext(0xFF01, b"\x00")
    cs = b"".join(struct.pack("!H", s) for s in suites)
    body = struct.pack("!H", version) + os.urandom(32) + b"\x00" + \
        struct.pack("!H", len(cs)) + cs + b"\x01\x00" + struct.pack("!H", len(exts)) + exts
    hs = b"\x01" + struct.pack("!I", len(body))[1:] + body
    return b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs


def _recv_exact(s, n):
    out = b""
    while len(out) < n:
        b = s.recv(n - len(out))
        if not b:
            return None
        out += b
    return out


def raw_hello(addr, suites, version=0x0303, sni="localhost"):
    """Sends one ClientHello; returns ("hello", suite), ("alert", name) or
    ("closed", None)."""
    with socket.create_connection(addr, timeout=h.T(10)) as s:
        s.sendall(client_hello(suites, version, sni))
        try:
            head = _recv_exact(s, 5)
            if head is None:
                return "closed", None
            body = _recv_exact(s, struct.unpack("!H", head[3:5])[0])
        except ConnectionResetError:
            return "closed", None
        if body is None:
            return "closed", None
        if head[0] == 0x15:
            return "alert", ALERTS.get(body[1], str(body[1]))
        if head[0] == 0x16 and body[0] == 0x02:
            sid_len = body[4 + 2 + 32]
            off = 4 + 2 + 32 + 1 + sid_len
            return "hello", struct.unpack("!H", body[off:off + 2])[0]
        return "other", head + body[:16]


@pytest.fixture
def daemon(http_backend, tlsterm):
    return tlsterm(h.one_listener(http_backend.port))


def test_raw_hello_control(daemon):
    """The hand-made hello works when it offers an allowed suite."""
    assert raw_hello(daemon.addr(), [0xC013, ECDHE_RSA_AES128_GCM]) == \
        ("hello", ECDHE_RSA_AES128_GCM)
    daemon.wait_close(listener="https")


def test_weak_suites_refused(daemon):
    got = {name: raw_hello(daemon.addr(), suites) for name, suites in SUITES_BAD.items()}
    accepted = {n: r for n, r in got.items() if r[0] == "hello"}
    assert not accepted, "weak suites accepted: %r" % accepted
    assert all(r[0] in ("alert", "closed") for r in got.values()), got
    lines = daemon.wait_close(listener="https", count=len(SUITES_BAD))
    assert all(l["reason"].startswith("handshake failed") for l in lines), \
        [l["line"] for l in lines]


def s_client(certs, port, *opts):
    r = h.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
               "-servername", "localhost", "-CAfile", certs.rsa_cert, *opts], input=b"")
    return r.returncode, (r.stdout + r.stderr).decode(errors="replace")


def established(out):
    m = re.search(r"^(New|Reused), TLSv1\.[0-3], Cipher is (\S+)", out, re.M)
    return m.group(2) if m and m.group(2) != "(NONE)" else None


def test_cbc_only_client_fails(certs, daemon):
    rc, out = s_client(certs, daemon.port(), "-tls1_2", "-cipher", "ECDHE-RSA-AES128-SHA")
    assert rc != 0 and established(out) is None, out
    assert "handshake failure" in out, out
    line = daemon.wait_close(listener="https")
    assert line["reason"].startswith("handshake failed"), line["line"]


@pytest.mark.skipif(shutil.which("gnutls-cli") is None, reason="gnutls-cli not installed")
@pytest.mark.parametrize("cipher,ok", [("3DES-CBC", False), ("AES-128-CBC", False),
                                       ("AES-128-GCM", True)])
def test_gnutls_cipher(certs, daemon, cipher, ok):
    """A second TLS stack that still offers 3DES (OpenSSL 3 here does not)."""
    prio = "NORMAL:-CIPHER-ALL:+%s:-VERS-ALL:+VERS-TLS1.2" % cipher
    r = h.run(["gnutls-cli", "--x509cafile", certs.rsa_cert, "--priority", prio,
               "-p", str(daemon.port()), "localhost"], input=b"")
    out = (r.stdout + r.stderr).decode(errors="replace")
    assert ("Handshake was completed" in out) == ok, out
    line = daemon.wait_close(listener="https")
    assert line["reason"].startswith("handshake failed") != ok, line["line"]


def test_extended_master_secret_and_secure_renegotiation(certs, daemon):
    rc, out = s_client(certs, daemon.port(), "-tls1_2")
    assert rc == 0, out
    assert "Extended master secret: yes" in out, out
    assert "Secure Renegotiation IS supported" in out, out
    daemon.wait_close(listener="https")


def test_default_server_preference(certs, daemon):
    """The default order puts ChaCha20 first, whatever the client's order."""
    rc, out = s_client(certs, daemon.port(), "-tls1_2", "-cipher",
                       "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:"
                       "ECDHE-RSA-CHACHA20-POLY1305")
    assert rc == 0, out
    assert established(out) == "ECDHE-RSA-CHACHA20-POLY1305", out
    daemon.wait_close(listener="https")


def test_client_renegotiation_fails(certs, daemon):
    p = subprocess.Popen(["openssl", "s_client", "-connect", "127.0.0.1:%d" % daemon.port(),
                          "-servername", "localhost", "-CAfile", certs.rsa_cert, "-tls1_2",
                          "-msg"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    chunks = []
    t = threading.Thread(target=lambda: chunks.extend(iter(lambda: p.stdout.read1(65536), b"")),
                         daemon=True)
    t.start()
    out = lambda: b"".join(chunks).decode(errors="replace")  # noqa: E731
    try:
        h.wait_until(lambda: "Verify return code" in out() or p.poll() is not None, h.T(10),
                     "the first handshake")
        assert established(out()), out()
        p.stdin.write(b"R\n")
        p.stdin.flush()
        # s_client stops on the refusal (alert) or the server closes
        h.wait_until(lambda: p.poll() is not None or re.search(
            r"<<< .*Alert", out().split("RENEGOTIATING", 1)[-1]), h.T(10),
            "an answer to the renegotiation request")
    finally:
        h.end_process(p)
        t.join(h.T(5))
    after = out().split("RENEGOTIATING", 1)[1]
    assert not re.search(r"<<< .*ServerHello", after), "renegotiation happened:\n" + after
    daemon.wait_close(listener="https")


def test_fallback_scsv_s_client(certs, daemon):
    rc, out = s_client(certs, daemon.port(), "-tls1_1", "-fallback_scsv",
                       "-cipher", "DEFAULT@SECLEVEL=0")
    assert rc != 0 and established(out) is None, out
    line = daemon.wait_close(listener="https")
    assert line["reason"].startswith("handshake failed"), line["line"]


def test_fallback_scsv_raw(daemon):
    """A TLS 1.1 hello carrying TLS_FALLBACK_SCSV gets no session (the
    alert is inappropriate_fallback or protocol_version)."""
    r = raw_hello(daemon.addr(), [0xC013, ECDHE_RSA_AES128_GCM, FALLBACK_SCSV],
                  version=0x0302)
    assert r[0] != "hello", r
    assert r in (("alert", "inappropriate_fallback"), ("alert", "protocol_version")), r
    daemon.wait_close(listener="https")


# ---------------------------------------------------------------- config

def check(tmp_path, certs, tls):
    cfg = h.one_listener(h.free_port(), tls=tls)
    cfg["listeners"][0]["certificates"] = [{"cert": certs.rsa_cert, "key": certs.rsa_key}]
    p = str(tmp_path / "t.yaml")
    return (p,) + h.check_config(p, cfg)


@pytest.mark.parametrize("names", [
    ["ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305"],
    ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"],
    ["TLS-ECDHE-RSA-WITH-AES-128-GCM-SHA256",
     "MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"],
    ["ecdhe-rsa-aes256-gcm-sha384"],
])
def test_cipher_names_accepted(tmp_path, certs, names):
    p, rc, out, err = check(tmp_path, certs, {"ciphers": names})
    assert rc == 0, err
    assert out == "%s: configuration OK\n" % p


VALID = ("ECDHE-ECDSA-AES128-GCM-SHA256, ECDHE-RSA-AES128-GCM-SHA256, "
         "ECDHE-ECDSA-AES256-GCM-SHA384, ECDHE-RSA-AES256-GCM-SHA384, "
         "ECDHE-ECDSA-CHACHA20-POLY1305, ECDHE-RSA-CHACHA20-POLY1305")


@pytest.mark.parametrize("bad", ["NO-SUCH-CIPHER", "ECDHE-RSA-AES128-SHA",
                                 "TLS_RSA_WITH_AES_128_GCM_SHA256", "DES-CBC3-SHA",
                                 "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256"])
def test_unknown_cipher_lists_valid_names(tmp_path, certs, bad):
    p, rc, out, err = check(tmp_path, certs, {"ciphers": ["ECDHE-RSA-AES128-GCM-SHA256", bad]})
    assert rc == 1, err
    errs = [l for l in err.splitlines() if l.startswith(p + ":")
            and not l.startswith(p + ": ")]
    assert len(errs) == 1, err
    assert re.match(re.escape(p) + r":\d+:\d+: ", errs[0]), errs[0]
    cbc = bad in ("ECDHE-RSA-AES128-SHA", "DES-CBC3-SHA")    # real suites tlsterm refuses
    want = ('cipher "%s" is a CBC suite, which tlsterm does not offer (only AEAD suites: AES-GCM '
            'and ChaCha20-Poly1305; valid: %s)' if cbc else 'unknown cipher "%s" (valid: %s)')
    assert errs[0].split(": ", 1)[1] == want % (bad, VALID), errs[0]


def test_unknown_curve_lists_valid_names(tmp_path, certs):
    p, rc, out, err = check(tmp_path, certs, {"curves": ["x25519", "brainpoolP256r1"]})
    assert rc == 1, err
    assert 'unknown curve "brainpoolP256r1" (valid: x25519, secp256r1, secp384r1, secp521r1)' \
        in err, err


def test_configured_ciphers_enforced(certs, http_backend, tlsterm):
    d = tlsterm(h.one_listener(http_backend.port, tls={
        "ciphers": ["TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA-AES128-GCM-SHA256"]}))
    # server order wins over the client's
    rc, out = s_client(certs, d.port(), "-tls1_2", "-cipher",
                       "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384")
    assert rc == 0 and established(out) == "ECDHE-RSA-AES256-GCM-SHA384", out
    # a suite that is allowed in general but not configured here
    rc, out = s_client(certs, d.port(), "-tls1_2", "-cipher", "ECDHE-RSA-CHACHA20-POLY1305")
    assert rc != 0 and established(out) is None, out
    lines = d.wait_close(listener="https", count=2)
    assert lines[0]["cipher"] == "TLS-ECDHE-RSA-WITH-AES-256-GCM-SHA384", lines[0]["line"]
    assert lines[1]["reason"].startswith("handshake failed"), lines[1]["line"]


def test_configured_curves_enforced(certs, http_backend, tlsterm):
    d = tlsterm(h.one_listener(http_backend.port, tls={"curves": ["secp384r1"]}))
    rc, out = s_client(certs, d.port(), "-tls1_2")
    assert rc == 0, out
    assert re.search(r"(Server|Peer) Temp Key: ECDH, (secp384r1|P-384)", out), out
    rc, out = s_client(certs, d.port(), "-tls1_2", "-groups", "X25519:P-256")
    assert rc != 0 and established(out) is None, out
    lines = d.wait_close(listener="https", count=2)
    assert lines[1]["reason"].startswith("handshake failed"), lines[1]["line"]


def test_default_curve_x25519(certs, daemon):
    rc, out = s_client(certs, daemon.port(), "-tls1_2")
    assert rc == 0, out
    assert re.search(r"(Server|Peer) Temp Key: X25519", out), out       # OpenSSL 3.0 | 3.5
    daemon.wait_close(listener="https")
