# SPDX-License-Identifier: BSD-2-Clause
"""Malformed first flights: tlsterm closes each such connection promptly
(well before the handshake timeout), logs a failed handshake, and serves
the next client normally."""

import random
import socket
import struct

import pytest

import tlsterm_harness as h


def truncated_hello():
    hello = h.client_hello()
    return hello[:len(hello) // 2]


def garbage():
    b = bytearray(random.Random(1234).randbytes(1024))
    b[0] = 0x42                 # not a TLS record type, not SSLv2-style
    return bytes(b)


def oversized_record():
    """A handshake record header claiming 65535 bytes (max is 16K + 2K),
    followed by 64 KiB."""
    return b"\x16\x03\x01\xff\xff" + b"\x01" + b"\x00" * (65535 - 1)


def huge_handshake_message():
    """A ClientHello message claiming 64 KiB, spread over 16 KiB records."""
    body = struct.pack(">I", (1 << 24) | (64 << 10))      # type 1, length 65536
    body += b"\x03\x03" + b"\x00" * ((64 << 10) - 2)
    out = b""
    for off in range(0, len(body), 16384):
        chunk = body[off:off + 16384]
        out += b"\x16\x03\x01" + struct.pack(">H", len(chunk)) + chunk
    return out


CASES = {
    "garbage_1k": lambda: (garbage(), False),
    "truncated_hello_then_fin": lambda: (truncated_hello(), True),
    "record_64k": lambda: (oversized_record(), False),
    "hello_64k_over_records": lambda: (huge_handshake_message(), False),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_first_flight(certs, http_backend, tlsterm, case):
    d = tlsterm(h.one_listener(http_backend.port, timeouts={"handshake": "60s"}))
    data, fin = CASES[case]()
    s = socket.create_connection(d.addr(), timeout=h.T(5))
    try:
        port = s.getsockname()[1]
        try:
            s.sendall(data)
            if fin:
                s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass                # tlsterm may close before it read everything
        how = h.closed_by_peer(s, h.T(5))
    finally:
        s.close()
    # an alert (record type 0x15) before the close is fine; a ServerHello is not
    assert how in ("eof", "reset") or how.startswith("data:15"), how
    line = d.wait_close(port=port)
    assert line["reason"].startswith("handshake failed"), line["line"]
    assert line["tls"] == "-"
    assert http_backend.conns == [], "a backend connection was opened"
    status, body, _ = h.https_get(d.addr(), certs.rsa_cert)
    assert (status, body) == (200, h.BODY)
