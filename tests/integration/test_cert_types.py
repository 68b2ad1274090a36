"""An RSA listener and an ECDSA listener in one daemon: each negotiates the
matching ECDHE key exchange and presents exactly its configured certificate."""

import tlsterm_harness as h


def test_rsa_and_ecdsa_listeners(certs, http_backend, tlsterm):
    cfg = h.config([h.listener("rsa", h.free_port(), "app", cert=("rsa",)),
                    h.listener("ecdsa", h.free_port(), "app", cert=("ec",))],
                   {"app": http_backend.port})
    d = tlsterm(cfg)
    for name, kind, kex in (("rsa", "rsa", "ECDHE-RSA-"), ("ecdsa", "ec", "ECDHE-ECDSA-")):
        s = h.tls_connect(d.addr(name), certs.pair(kind)[0])
        try:
            cipher, version, _ = s.cipher()
            assert version == "TLSv1.2"
            assert cipher.startswith(kex), (name, cipher)
            assert s.getpeercert(binary_form=True) == certs.der(kind)
            assert h.http11_exchange(s) == h.BODY
            port = s.getsockname()[1]
        finally:
            s.close()
        line = d.wait_close(port=port)
        assert line["listener"] == name
        assert kex.rstrip("-") in line["cipher"], line["line"]
