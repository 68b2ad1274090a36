# SPDX-License-Identifier: BSD-2-Clause
"""A long-running process warns again as a certificate's expiry nears:
the check that start-up does runs on a timer (daily; the testing hook
TLSTERM_EXPIRY_CHECK_MS shortens it), with the same words."""

import re
import subprocess

import tlsterm_harness as h


def short_lived(tmp_path, days):
    cert, key = str(tmp_path / "short.pem"), str(tmp_path / "short.key")
    subprocess.run(["openssl", "req", "-x509", "-nodes", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-days", str(days), "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost", "-keyout", key, "-out", cert],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def test_expiry_warned_again_while_running(certs, http_backend, tlsterm, tmp_path,
                                           monkeypatch):
    cert, key = short_lived(tmp_path, 3)
    monkeypatch.setenv("TLSTERM_EXPIRY_CHECK_MS", "300")
    # beside it the harness's 30-day certificate: outside the 14 days of
    # the start-up threshold, never warned about
    cfg = h.config([h.listener("short", h.free_port(), "app",
                               cert=[{"cert": cert, "key": key}]),
                    h.listener("long", h.free_port(), "app")],
                   {"app": http_backend.port}, log_level="info")
    d = tlsterm(cfg)
    rx = r" warn certificate %s expires in [23]\.\d days \(\d{4}-\d\d-\d\d\)$" % re.escape(cert)
    h.wait_until(lambda: len(re.findall(rx, d.log(), re.M)) >= 3, h.T(10),
                 "the start-up warning and two from the timer:\n" + d.log_tail())
    first = d.log().index("expires in")
    ready = d.log().index(" ready: ")
    assert first < ready, "the first warning is start-up's"
    assert certs.rsa_cert not in d.log(), d.log_tail()


def test_bad_interval_is_said(certs, http_backend, tlsterm, monkeypatch):
    monkeypatch.setenv("TLSTERM_EXPIRY_CHECK_MS", "soon")
    d = tlsterm(h.one_listener(http_backend.port, log_level="info"))
    assert "TLSTERM_EXPIRY_CHECK_MS=soon is not a number of milliseconds" in d.log()
