# SPDX-License-Identifier: BSD-2-Clause
"""Certificates and keys are checked when the configuration is loaded:
`tlsterm -t` exits 1 with "FILE:LINE:COL: message" for a key that does not
match, an encrypted key without (or with a wrong) passphrase, an expired or
not yet valid certificate and a chain out of order; a running daemon warns
about certificates that expire within 14 days and about expired ones it
serves because of allow_expired."""

import datetime
import os
import re

import pytest

import pki
import tlsterm_harness as h

PASS = "correct horse battery staple"


@pytest.fixture(scope="module")
def pk(tmp_path_factory):
    base = tmp_path_factory.mktemp("pki")
    now = pki.utcnow()
    day = datetime.timedelta(days=1)

    class P:
        pass
    p = P()
    p.base = base
    p.ca = ca = pki.CA(base, "root")
    p.sub = sub = ca.intermediate("sub")
    p.good = ca.issue("good", sans=["good.test"])
    p.other = ca.issue("other", sans=["other.test"])
    p.rsa_key = pki.new_key(str(base / "rsa-key.pem"), "rsa")
    p.good_rsa = ca.issue("good-rsa", sans=["good-rsa.test"], kind="rsa", key=p.rsa_key)
    p.expired_at = now - day
    p.expired = ca.issue("expired", sans=["expired.test"], not_before=now - 10 * day,
                         not_after=p.expired_at)
    p.future_at = now + day
    p.future = ca.issue("future", sans=["future.test"], not_before=p.future_at,
                        not_after=now + 30 * day)
    p.soon = ca.issue("soon", sans=["soon.test"], not_before=now - day,
                      not_after=now + 5 * day + datetime.timedelta(hours=1))
    p.later = ca.issue("later", sans=["later.test"], not_before=now - day,
                       not_after=now + 20 * day)
    p.chained = sub.issue("chained", sans=["chained.test"])
    p.passfile = str(base / "pass.txt")
    with open(p.passfile, "w") as f:
        f.write(PASS + "\n")
    p.wrongfile = str(base / "wrong.txt")
    with open(p.wrongfile, "w") as f:
        f.write("not the passphrase\n")
    return p


def stamp(dt):
    return dt.astimezone(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def write_config(path, entries, backend_port=None):
    cfg = h.config([{"name": "https", "listen": ["127.0.0.1:%d" % h.free_port()],
                     "certificates": entries, "backend": "app"}],
                   {"app": backend_port or h.free_port()}, log_level="info")
    with open(path, "w") as f:
        f.write(h.to_yaml(cfg) + "\n")
    return path


def check(tmp_path, entries):
    """Runs `tlsterm -t`; returns (path, returncode, stdout, stderr)."""
    p = write_config(str(tmp_path / "tlsterm.yaml"), entries)
    r = h.run([h.BIN, "-t", "-c", p], timeout=h.T(30))
    return p, r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def only_error(tmp_path, entries):
    """The message of the single FILE:LINE:COL error `tlsterm -t` reports."""
    p, rc, out, err = check(tmp_path, entries)
    assert rc == 1, "exit %d\nstdout: %s\nstderr: %s" % (rc, out, err)
    lines = err.splitlines()
    assert lines and lines[-1] == "%s: configuration has 1 error" % p, err
    errs = [l for l in lines if re.match(re.escape(p) + r":\d+:\d+: ", l)]
    assert len(errs) == 1, err
    return errs[0].split(": ", 1)[1]


def assert_ok(tmp_path, entries):
    p, rc, out, err = check(tmp_path, entries)
    assert rc == 0, err
    assert out == "%s: configuration OK\n" % p, out
    return err


def test_key_does_not_match(tmp_path, pk):
    msg = only_error(tmp_path, [{"cert": pk.good.chain, "key": pk.other.key}])
    assert msg == "private key %s does not match certificate %s" % (pk.other.key, pk.good.chain)


def test_rsa_key_for_ecdsa_certificate(tmp_path, pk):
    msg = only_error(tmp_path, [{"cert": pk.good.chain, "key": pk.rsa_key}])
    assert msg == "private key %s does not match certificate %s" % (pk.rsa_key, pk.good.chain)


@pytest.mark.parametrize("kind", ["ec", "rsa"])
def test_encrypted_key_without_passphrase(tmp_path, pk, kind):
    leaf = pk.good if kind == "ec" else pk.good_rsa
    enc = leaf.encrypted_key(PASS)
    msg = only_error(tmp_path, [{"cert": leaf.chain, "key": enc}])
    assert msg == "private key %s is encrypted: add key_passphrase_file" % enc


@pytest.mark.parametrize("kind", ["ec", "rsa"])
def test_encrypted_key_wrong_passphrase(tmp_path, pk, kind):
    leaf = pk.good if kind == "ec" else pk.good_rsa
    enc = leaf.encrypted_key(PASS)
    msg = only_error(tmp_path, [{"cert": leaf.chain, "key": enc,
                                 "key_passphrase_file": pk.wrongfile}])
    assert msg == "private key %s: wrong passphrase in %s" % (enc, pk.wrongfile)


def test_wrong_passphrase_that_decrypts_to_asn1(tmp_path):
    """About once in 500, a wrong passphrase decrypts a PEM key to bytes
    that pass mbedTLS's quick check, and the key then fails as malformed
    (ASN.1).  data/ holds such a key (encrypted under "right"; "wrong" hits
    that path): it must still read as a wrong passphrase."""
    data = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
    key = os.path.join(data, "asn1-on-wrong-passphrase-key.pem")
    wrong = str(tmp_path / "wrong.txt")
    with open(wrong, "w") as f:
        f.write("wrong\n")
    msg = only_error(tmp_path, [{"cert": os.path.join(data, "asn1-on-wrong-passphrase-cert.pem"),
                                 "key": key, "key_passphrase_file": wrong}])
    assert msg == "private key %s: wrong passphrase in %s" % (key, wrong)


def test_missing_passphrase_file(tmp_path, pk):
    enc = pk.good.encrypted_key(PASS)
    missing = str(tmp_path / "no-such-pass.txt")
    msg = only_error(tmp_path, [{"cert": pk.good.chain, "key": enc,
                                 "key_passphrase_file": missing}])
    assert msg.startswith("cannot read key_passphrase_file %s: " % missing), msg


def test_expired_certificate(tmp_path, pk):
    msg = only_error(tmp_path, [pk.expired.entry()])
    assert msg == ("certificate %s expired on %s UTC (set allow_expired: true to serve it "
                   "anyway)" % (pk.expired.chain, stamp(pk.expired_at))), msg


def test_not_yet_valid_certificate(tmp_path, pk):
    msg = only_error(tmp_path, [pk.future.entry()])
    assert msg == "certificate %s is not valid before %s UTC" % (pk.future.chain,
                                                                 stamp(pk.future_at)), msg


def test_not_yet_valid_even_with_allow_expired(tmp_path, pk):
    msg = only_error(tmp_path, [pk.future.entry(allow_expired=True)])
    assert msg.startswith("certificate %s is not valid before " % pk.future.chain), msg


def test_expired_certificate_not_first(tmp_path, pk):
    """The check covers every entry, not only the default one."""
    msg = only_error(tmp_path, [pk.good.entry(), pk.expired.entry()])
    assert msg.startswith("certificate %s expired on " % pk.expired.chain), msg


def test_chain_out_of_order(tmp_path, pk):
    """Leaf, then the root, then the intermediate (the root was appended
    in the wrong place)."""
    bad = str(tmp_path / "chain-bad.pem")
    pki._cat(bad, pk.chained.cert, pk.ca.cert, pk.sub.cert)
    msg = only_error(tmp_path, [{"cert": bad, "key": pk.chained.key}])
    assert msg == ('certificate chain in %s is out of order: certificate 1 is issued by '
                   '"%s" but certificate 2 is "%s" (put the leaf first, then each issuer)'
                   % (bad, pk.sub.subject, pk.ca.subject)), msg


def test_chain_reversed(tmp_path, pk):
    """Intermediate first, leaf second: the operator is told the order is
    wrong (not that the key does not match)."""
    bad = str(tmp_path / "chain-reversed.pem")
    pki._cat(bad, pk.sub.cert, pk.chained.cert)
    msg = only_error(tmp_path, [{"cert": bad, "key": pk.chained.key}])
    assert msg.startswith("certificate chain in %s is out of order: " % bad), msg


def test_chain_in_order_ok(tmp_path, pk):
    assert_ok(tmp_path, [pk.chained.entry()])


def test_passphrase_ok(tmp_path, pk):
    enc = pk.good.encrypted_key(PASS)           # openssl ec -aes256: "Proc-Type" PEM
    assert_ok(tmp_path, [{"cert": pk.good.chain, "key": enc, "key_passphrase_file": pk.passfile}])


@pytest.mark.skipif(h.MBEDTLS_VERSION >= (3, 0, 0),
                    reason="mbedTLS %d.%d reads AES-encrypted PKCS#8" % h.MBEDTLS_VERSION[:2])
def test_pkcs8_aes_key_explained(tmp_path, pk):
    """Encrypted PKCS#8 with AES (openssl genpkey -aes256, OpenSSL 3's
    default) is beyond mbedTLS 2.28: the error says so and gives a command
    that works."""
    p8 = pk.good.pkcs8_encrypted_key(PASS)
    msg = only_error(tmp_path, [{"cert": pk.good.chain, "key": p8,
                                 "key_passphrase_file": pk.passfile}])
    assert msg.startswith("private key %s is encrypted with a cipher mbedTLS " % p8), msg
    m = re.search(r"(openssl pkey -in KEY .*-out NEWKEY)$", msg)
    assert m, msg
    # the suggested command, with our files, gives a key tlsterm reads
    new = str(tmp_path / "reencrypted.pem")
    cmd = m.group(1).replace("KEY", p8, 1).replace("NEWKEY", new).split()
    r = h.run(cmd + ["-passin", "pass:" + PASS, "-passout", "pass:" + PASS])
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    assert_ok(tmp_path, [{"cert": pk.good.chain, "key": new, "key_passphrase_file": pk.passfile}])


@pytest.mark.skipif(h.MBEDTLS_VERSION < (3, 0, 0),
                    reason="mbedTLS %d.%d cannot read AES-encrypted PKCS#8" % h.MBEDTLS_VERSION[:2])
def test_pkcs8_aes_key_accepted(tmp_path, pk, http_backend, tlsterm):
    """mbedTLS 3.6 reads encrypted PKCS#8 with AES (OpenSSL 3's default
    for `openssl genpkey -aes256`): the key is checked and served."""
    p8 = pk.good_rsa.pkcs8_encrypted_key(PASS)
    entry = {"cert": pk.good_rsa.chain, "key": p8, "key_passphrase_file": pk.passfile}
    assert_ok(tmp_path, [entry])
    d = tlsterm(h.config([{"name": "https", "listen": ["127.0.0.1:%d" % h.free_port()],
                           "certificates": [entry], "backend": "app"}],
                         {"app": http_backend.port}))
    status, body, port = h.https_get(d.addr(), pk.ca.cert, server_hostname="good-rsa.test")
    assert (status, body) == (200, h.BODY)
    d.wait_close(port=port)


def test_passphrase_key_served(tmp_path, pk, http_backend, tlsterm):
    enc = pk.good_rsa.encrypted_key(PASS)
    cfg = h.config([{"name": "https", "listen": ["127.0.0.1:%d" % h.free_port()],
                     "certificates": [{"cert": pk.good_rsa.chain, "key": enc,
                                       "key_passphrase_file": pk.passfile}],
                     "backend": "app"}], {"app": http_backend.port})
    d = tlsterm(cfg)
    status, body, port = h.https_get(d.addr(), pk.ca.cert, server_hostname="good-rsa.test")
    assert (status, body) == (200, h.BODY)
    d.wait_close(port=port)


def warn_lines(d):
    return [l for l in d.log_lines() if re.match(r"^\S+ warn ", l)]


def test_allow_expired_serves_with_warning(tmp_path, pk, http_backend, tlsterm):
    entries = [pk.good.entry(), pk.expired.entry(allow_expired=True)]
    assert "expired" in assert_ok(tmp_path, entries)
    cfg = h.config([{"name": "https", "listen": ["127.0.0.1:%d" % h.free_port()],
                     "certificates": entries, "backend": "app"}],
                   {"app": http_backend.port}, workers=2)
    d = tlsterm(cfg)
    want = "certificate %s expired on %s" % (pk.expired.chain, stamp(pk.expired_at)[:10])
    warns = [l for l in warn_lines(d) if want in l]
    assert len(warns) == 1, "want one warn line with %r (not one per worker):\n%s" % (
        want, d.log_tail())
    assert "allow_expired" in warns[0], warns[0]
    # it is served (a verifying client refuses it, as it should)
    rc, out, leaf = pki.s_client(d.addr(), "expired.test", "-CAfile", pk.ca.cert,
                                 timeout=h.T(30))
    assert rc == 0, out
    assert leaf == pk.expired.der
    assert "Verify return code: 10 (certificate has expired)" in out, out
    d.wait_close(listener="https")


def test_expiring_soon_warning(tmp_path, pk, http_backend, tlsterm):
    entries = [pk.good.entry(), pk.soon.entry(), pk.later.entry()]
    cfg = h.config([{"name": "https", "listen": ["127.0.0.1:%d" % h.free_port()],
                     "certificates": entries, "backend": "app"}],
                   {"app": http_backend.port}, workers=2)
    d = tlsterm(cfg)
    warns = warn_lines(d)
    soon = [l for l in warns if "certificate %s expires in " % pk.soon.chain in l]
    assert len(soon) == 1, "want one expiry warning for %s:\n%s" % (pk.soon.chain, d.log_tail())
    m = re.search(r"expires in (\d+(?:\.\d+)?) days", soon[0])
    assert m and 4.9 <= float(m.group(1)) <= 5.1, soon[0]
    assert not [l for l in warns if pk.later.chain in l or pk.good.chain in l], warns
    status, body, port = h.https_get(d.addr(), pk.ca.cert, server_hostname="soon.test")
    assert (status, body) == (200, h.BODY)
    d.wait_close(port=port)
