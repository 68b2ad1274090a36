# SPDX-License-Identifier: BSD-2-Clause
"""An RSA listener and an ECDSA listener in one daemon: each presents
exactly its configured certificate, on TLS 1.2 with the matching ECDHE
key exchange, and on TLS 1.3 (where the suite no longer names the key
type); a default client gets the newest version the build has."""

import pytest

import tlsterm_harness as h


@pytest.mark.parametrize("version", [None] + h.versions(),
                         ids=lambda v: "default" if v is None else None)
def test_rsa_and_ecdsa_listeners(certs, http_backend, tlsterm, version):
    cfg = h.config([h.listener("rsa", h.free_port(), "app", cert=("rsa",)),
                    h.listener("ecdsa", h.free_port(), "app", cert=("ec",))],
                   {"app": http_backend.port})
    d = tlsterm(cfg)
    want = h.log_version(version) if version else h.DEFAULT_TLS
    for name, kind, kex in (("rsa", "rsa", "ECDHE-RSA-"), ("ecdsa", "ec", "ECDHE-ECDSA-")):
        ctx = h.client_context(certs.pair(kind)[0])
        if version:
            h.pin_version(ctx, version)
        s = h.tls_connect(d.addr(name), None, ctx=ctx)
        try:
            cipher, got, _ = s.cipher()
            assert got == want, (name, got)
            if got == "TLSv1.2":
                assert cipher.startswith(kex), (name, cipher)
            else:
                assert cipher.startswith("TLS_"), (name, cipher)       # a TLS 1.3 suite
            assert s.getpeercert(binary_form=True) == certs.der(kind)
            assert h.http11_exchange(s) == h.BODY
            port = s.getsockname()[1]
        finally:
            s.close()
        line = d.wait_close(port=port, listener=name)
        assert line["listener"] == name
        assert line["tls"] == want, line["line"]
        if want == "TLSv1.2":
            assert kex.rstrip("-") in line["cipher"], line["line"]
        else:
            assert line["cipher"].startswith("TLS1-3-"), line["line"]
