# SPDX-License-Identifier: BSD-2-Clause
"""mbedTLS sends each handshake message in one record and never splits one
over TCP, so a certificate chain whose Certificate message is larger than
MBEDTLS_SSL_OUT_CONTENT_LEN (16384 in Debian's packages, 8192 in the tuned
build of src/mbedtls/) would fail every handshake.  tlsterm refuses such a
chain when it loads the configuration (`tlsterm -t`, start-up, reload),
naming the file, the size and the limit.  The limit is learnt from that
very error (a 17 KB chain exceeds it on every build), then chains built to
the byte show the size is counted exactly as mbedTLS frames the message:
one of exactly the limit loads and serves, one byte more is refused, for
TLS 1.3's framing and for TLS 1.2's (`max_version: "1.2"`).  A 10 KB chain
loads and serves where it fits (16384) and is refused where it does not
(8192); an ordinary chain loads everywhere."""

import os
import re

import pytest

import pki
import tlsterm_harness as h

ERR = re.compile(r"certificate chain in (\S+) is too large: its TLS 1\.(\d) Certificate "
                 r"message is (\d+) bytes, more than the (\d+) bytes of one record this "
                 r"mbedTLS \([^)]*\) sends \(MBEDTLS_SSL_OUT_CONTENT_LEN\), so every "
                 r"handshake would fail; use a shorter chain .* or an mbedTLS built with a "
                 r"larger MBEDTLS_SSL_OUT_CONTENT_LEN$")


def msg_len(ders, minor):
    """The Certificate message mbedTLS writes (ssl_tls.c's
    mbedtls_ssl_write_certificate, ssl_tls13_generic.c's
    ssl_tls13_write_certificate_body): header 4 + list length 3 (+ an empty
    request context 1 in TLS 1.3), per certificate its length 3 (+ empty
    extensions 2 in TLS 1.3)."""
    if minor == 4:
        return 8 + sum(len(d) + 5 for d in ders)
    return 7 + sum(len(d) + 3 for d in ders)


class Chains:
    """Leaf + intermediate chains of a chosen Certificate message size: an
    RSA-2048 intermediate signs the leaves, so their signatures are always
    256 bytes and a leaf's size is set to the byte by its subjectAltNames."""

    def __init__(self, base):
        self.root = pki.CA(base, "root")
        self.sub = pki.CA(base, "sub", parent=self.root, kind="rsa")
        self.sub_der = pki.pem_to_der(self.sub.cert)
        self.key = pki.new_key(os.path.join(str(base), "leaf-key.pem"))
        self.n = 0

    def _leaf(self, count, pad):
        self.n += 1
        names = ["n%04d.record-size.test" % i for i in range(count)]
        # the pad name, `pad` characters: labels of 60 (61 at most)
        s = "".join("." if i % 61 == 60 else "p" for i in range(pad))
        names.append((s[:-1] + "p" if s.endswith(".") else s) + ".pad.test")
        return self.sub.issue("leaf%d" % self.n, cn="leaf%d.record-size.test" % self.n,
                              sans=names, key=self.key)

    def make(self, target, minor):
        """A Leaf whose chain (leaf, intermediate) makes a Certificate
        message of exactly `target` bytes in TLS 1.`minor - 1`."""
        count = max(0, (target - 1500) // 24)
        pad = 100
        for _ in range(8):
            leaf = self._leaf(count, pad)
            have = msg_len([leaf.der, self.sub_der], minor)
            if have == target:
                return leaf
            pad += target - have
            while pad < 20:             # one name fewer: 24 bytes of DER
                count, pad = count - 1, pad + 24
            while pad > 200:
                count, pad = count + 1, pad - 24
        raise AssertionError("could not make a %d-byte Certificate message" % target)


@pytest.fixture(scope="module")
def chains(tmp_path_factory):
    return Chains(tmp_path_factory.mktemp("record-size"))


def write_config(path, leaf, tls=None):
    cfg = h.config([{"name": "https", "listen": ["127.0.0.1:%d" % h.free_port()],
                     "certificates": [leaf.entry()], "backend": "app"}],
                   {"app": h.free_port()}, log_level="info", tls=tls)
    with open(path, "w") as f:
        f.write(h.to_yaml(cfg) + "\n")
    return path


def check(tmp_path, leaf, tls=None):
    """`tlsterm -t`: (returncode, stdout, stderr)."""
    p = write_config(str(tmp_path / "tlsterm.yaml"), leaf, tls)
    r = h.run([h.BIN, "-t", "-c", p], timeout=h.T(30))
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def refused(tmp_path, leaf, tls=None):
    """The match of ERR in the one error `tlsterm -t` reports."""
    rc, out, err = check(tmp_path, leaf, tls)
    assert rc == 1, "exit %d\nstdout: %s\nstderr: %s" % (rc, out, err)
    assert err.splitlines()[-1].endswith(": configuration has 1 error"), err
    msgs = [l.split(": ", 1)[1] for l in err.splitlines() if re.match(r"\S+:\d+:\d+: ", l)]
    assert len(msgs) == 1, err
    m = ERR.match(msgs[0])
    assert m, msgs[0]
    assert m.group(1) == leaf.chain, msgs[0]
    return m


def loads(tmp_path, leaf, tls=None):
    rc, out, err = check(tmp_path, leaf, tls)
    assert rc == 0, err
    assert out.endswith("configuration OK\n"), out


def serves(tlsterm, http_backend, leaf, v, tls=None):
    """A full handshake in TLS 1.v with this chain, and a request through."""
    d = tlsterm(h.one_listener(http_backend.port, cert=[leaf.entry()], tls=tls))
    rc, out, der = pki.s_client(d.addr(), leaf.cn, h.s_client_version_flag(v), "-ign_eof",
                                input=b"GET /rs HTTP/1.0\r\nHost: x\r\n\r\n",
                                timeout=h.T(30))
    assert der == leaf.der, out
    assert h.BODY.decode() in out, out
    assert "-0x6a00" not in d.log(), d.log()


def expected_limit():
    """MBEDTLS_SSL_OUT_CONTENT_LEN of the tuned build's headers (make check
    passes its DIR as TLSTERM_MBEDTLS_DIR), else None: not known here."""
    d = os.environ.get("TLSTERM_MBEDTLS_DIR", "")
    inc = os.path.join(d, "include", "mbedtls")
    if not d or not os.path.isdir(inc):
        return None
    # the configuration: upstream's file, then tlsterm's (build.sh); the
    # last definition wins, ssl.h's 16384 is only the fallback
    val = 16384
    for name in ("mbedtls_config.h", "tlsterm_config.h"):
        if os.path.exists(os.path.join(inc, name)):
            with open(os.path.join(inc, name), errors="replace") as f:
                for m in re.finditer(r"^#define MBEDTLS_SSL_OUT_CONTENT_LEN +(\d+)", f.read(),
                                     re.M):
                    val = int(m.group(1))
    return val


@pytest.fixture(scope="module")
def limit(chains, tmp_path_factory):
    """The limit tlsterm reports for a 17 KB chain, too large everywhere."""
    big = chains.make(17000, 4 if h.HAVE_TLS13 else 3)
    m = refused(tmp_path_factory.mktemp("limit"), big)
    assert int(m.group(3)) == msg_len([big.der, chains.sub_der], int(m.group(2)) + 1)
    return int(m.group(4))


def test_limit_is_the_builds(limit):
    assert limit in (4096, 8192, 16384), limit
    want = expected_limit()
    if want is not None:
        assert limit == want
    elif "tuned build" not in h._V:
        assert limit == 16384       # Debian's packages: upstream's default


@pytest.mark.parametrize("v", h.versions())
def test_exactly_the_limit_serves(chains, limit, tmp_path, tlsterm, http_backend, v):
    """The framing counted is mbedTLS's, to the byte: a chain whose message
    is exactly the limit works, one byte more is refused."""
    minor = 4 if v == "1.3" else 3
    tls = None if v == "1.3" else {"max_version": "1.2"}
    at = chains.make(limit, minor)
    loads(tmp_path, at, tls)
    serves(tlsterm, http_backend, at, v, tls)
    over = chains.make(limit + 1, minor)
    m = refused(tmp_path, over, tls)
    assert (m.group(2), int(m.group(3)), int(m.group(4))) == (str(minor - 1), limit + 1, limit)


@h.needs_tls13()
def test_tls13_framing_counts_when_tls13_is_on(chains, limit, tmp_path):
    """A chain that fits TLS 1.2's framing but not TLS 1.3's (2 bytes more
    per certificate, 1 more in all) is refused while TLS 1.3 is on."""
    leaf = chains.make(limit, 3)
    loads(tmp_path, leaf, {"max_version": "1.2"})
    m = refused(tmp_path, leaf)
    assert m.group(2) == "3" and int(m.group(3)) == limit + 5


@pytest.mark.parametrize("v", h.versions())
def test_10k_chain(chains, limit, tmp_path, tlsterm, http_backend, v):
    """Fits Debian's 16384 (and is served), not the tuned build's 8192."""
    minor = 4 if v == "1.3" else 3
    tls = None if v == "1.3" else {"max_version": "1.2"}
    leaf = chains.make(10240, minor)
    if limit >= 10240:
        loads(tmp_path, leaf, tls)
        serves(tlsterm, http_backend, leaf, v, tls)
    else:
        refused(tmp_path, leaf, tls)


def test_ordinary_chain_loads(chains, tmp_path, tlsterm, http_backend):
    leaf = chains.sub.issue("ordinary", sans=["ordinary.test"], key=chains.key)
    loads(tmp_path, leaf)
    serves(tlsterm, http_backend, leaf, "1.3" if h.HAVE_TLS13 else "1.2")


def test_reload_refuses_it(chains, limit, tlsterm, http_backend):
    """A reload with the oversized chain fails and the old one serves on."""
    ok = chains.sub.issue("before-reload", sans=["before.test"], key=chains.key)
    d = tlsterm(h.one_listener(http_backend.port, cert=[ok.entry()]))
    cfg = dict(d.cfg)
    big = chains.make(limit + 1, 4 if h.HAVE_TLS13 else 3)
    cfg["listeners"] = [dict(cfg["listeners"][0], certificates=[big.entry()])]
    d.rewrite(cfg)
    text = d.reload(expect_ok=False)
    assert "certificate chain in %s is too large" % big.chain in text, text
    assert "still serving generation 1" in text, text
    _, out, der = pki.s_client(d.addr(), ok.cn, timeout=h.T(30))
    assert der == ok.der, out
