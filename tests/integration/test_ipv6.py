# SPDX-License-Identifier: BSD-2-Clause
"""A listener on [::1] serves clients over IPv6."""

import pytest

import tlsterm_harness as h


@pytest.mark.skipif(not h.ipv6_loopback_available(), reason="::1 is not available")
def test_ipv6_get(certs, http_backend, tlsterm):
    cfg = h.config([h.listener("v6", h.free_port("::1"), "app", host="::1")],
                   {"app": http_backend.port})
    d = tlsterm(cfg)
    assert d.addr("v6")[0] == "::1"
    status, body, port = h.https_get(d.addr("v6"), certs.rsa_cert)
    assert (status, body) == (200, h.BODY)
    line = d.wait_close(port=port)
    assert line["client"] == "[::1]:%d" % port, line["line"]
    assert line["reason"].startswith("done"), line["line"]
    # the certificate names ::1 too, so verification by address works
    status, body, _ = h.https_get(d.addr("v6"), certs.rsa_cert, server_hostname="::1")
    assert (status, body) == (200, h.BODY)
