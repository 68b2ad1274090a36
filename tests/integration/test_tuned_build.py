# SPDX-License-Identifier: BSD-2-Clause
"""A tlsterm built against the tuned mbedTLS (src/mbedtls/build.sh, then
`configure --with-mbedtls=DIR`; make check passes DIR on as
TLSTERM_MBEDTLS_DIR) is really built against it: `tlsterm -V` names DIR's
mbedTLS version and TLS 1.3, the binary carries mbedTLS statically with
Everest's X25519 (and tlsterm's PSA driver that puts TLS 1.3's X25519 on
it) and no shared mbedTLS of the system, and X25519 is the
group negotiated in TLS 1.3 and TLS 1.2 with an ECDSA certificate.  Skipped
on every other build."""

import os
import re
import subprocess

import pytest

import pki
import tlsterm_harness as h

DIR = os.environ.get("TLSTERM_MBEDTLS_DIR", "")
INFO = os.path.join(DIR, "tlsterm-mbedtls.txt")
pytestmark = pytest.mark.skipif(
    not DIR or not os.path.exists(INFO),
    reason="not built against the tuned mbedTLS (configure --with-mbedtls=DIR, "
           "DIR made by src/mbedtls/build.sh)")


def build_info():
    """DIR/tlsterm-mbedtls.txt, which build.sh writes: key=value lines."""
    with open(INFO) as f:
        return dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)


def test_version_is_the_tuned_one():
    out = subprocess.run([h.BIN, "-V"], capture_output=True, timeout=h.T(30)).stdout.decode()
    m = re.search(r"^mbedTLS [^;\n]*?(\d+\.\d+\.\d+)[^;\n]*; protocols: (.*)$", out, re.M)
    assert m, out
    assert m.group(1) == build_info()["mbedtls_version"], out
    assert m.group(2).startswith("TLS 1.2, TLS 1.3"), out
    assert "(tlsterm's tuned build, src/mbedtls)" in m.group(0), out


def test_binary_has_everest_and_no_shared_mbedtls():
    ldd = subprocess.run(["ldd", h.BIN], capture_output=True, timeout=h.T(30)).stdout.decode()
    assert "libmbed" not in ldd, "linked against a shared mbedTLS:\n" + ldd
    nm = subprocess.run(["nm", h.BIN], capture_output=True, timeout=h.T(60))
    if nm.returncode != 0 or b"no symbols" in nm.stderr:
        pytest.skip("the binary has no symbol table (stripped)")
    syms = set(line.split()[-1] for line in nm.stdout.decode().splitlines() if line.strip())
    assert "mbedtls_ssl_handshake" in syms
    # Everest's X25519 (3rdparty/everest), which Debian's package leaves out
    assert "mbedtls_everest_setup" in syms and "Hacl_Curve25519_crypto_scalarmult" in syms
    # and tlsterm's PSA driver over it (src/mbedtls/everest_driver/), which
    # TLS 1.3's X25519 goes through
    assert "tlsterm_everest_generate_key" in syms, "no PSA Everest driver in the binary"
    assert "tlsterm_everest_export_public_key" in syms
    assert "tlsterm_everest_key_agreement" in syms


@pytest.mark.parametrize("v", ["1.3", "1.2"])
def test_x25519_negotiated(certs, http_backend, tlsterm, v):
    d = tlsterm(h.one_listener(http_backend.port, cert="ec"))
    # TLS 1.2 checks the certificate's curve against the client's groups
    # too, so the client offers P-256 after X25519
    rc, out, _ = pki.s_client(d.addr(), "localhost", "-CAfile", certs.ec_cert,
                              h.s_client_version_flag(v), "-groups", "X25519:P-256", "-ign_eof",
                              input=b"GET /tuned HTTP/1.0\r\nHost: localhost\r\n\r\n",
                              timeout=h.T(30))
    assert re.search(r"^Server Temp Key: X25519", out, re.M), out
    assert h.BODY.decode() in out, out
    line = d.wait_close()
    assert line["tls"] == "TLSv" + v and line["reason"].startswith("done"), line["line"]
