# SPDX-License-Identifier: BSD-2-Clause
"""`tlsterm -t` checks a config, certificates and keys without running:
exit 0 and "FILE: configuration OK", or exit 1 with every error as
"FILE:LINE:COL: message" and a count."""

import os
import re
import socket

import pytest

import tlsterm_harness as h


def write(tmp_path, text, name="tlsterm.yaml"):
    p = str(tmp_path / name)
    with open(p, "w") as f:
        f.write(text)
    return p


def check(path):
    return h.run([h.BIN, "-t", "-c", path], timeout=h.T(20))


def good_config(certs, cert=None, key=None):
    cert = cert or certs.rsa_cert
    key = key or certs.rsa_key
    return (
        "workers: 2\n"                                            # 1
        "log: {level: info}\n"                                    # 2
        "timeouts: {handshake: 10s, idle: 300s, connect: 5s}\n"   # 3
        "listeners:\n"                                            # 4
        "  - name: https\n"                                       # 5
        "    listen: [\"127.0.0.1:%d\"]\n"                        # 6
        "    certificates:\n"                                     # 7
        "      - cert: %s\n"                                      # 8
        "        key: %s\n"                                       # 9
        "    backend: app\n"                                      # 10
        "backends:\n"                                             # 11
        "  app:\n"                                                # 12
        "    servers: [\"127.0.0.1:%d\"]\n"                       # 13
        % (h.free_port(), cert, key, h.free_port()))


def errors_of(r, path):
    """The FILE:LINE:COL error lines, after checking the exit status and
    the closing count line."""
    err = r.stderr.decode(errors="replace")
    assert r.returncode == 1, "exit %d, stderr:\n%s" % (r.returncode, err)
    assert r.stdout == b"", r.stdout
    lines = err.splitlines()
    m = re.fullmatch(r"(.*): configuration has (\d+) errors?", lines[-1])
    assert m and m.group(1) == path, lines[-1]
    errs = [l for l in lines if l.startswith(path + ":") and not l.startswith(path + ": ")]
    assert len(errs) == int(m.group(2)), err
    return errs


def test_good_config(tmp_path, certs):
    p = write(tmp_path, good_config(certs))
    r = check(p)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    assert r.stdout.decode() == "%s: configuration OK\n" % p


def test_good_config_relative_paths(tmp_path, certs):
    """Relative certificate paths are relative to the config file's dir."""
    os.symlink(certs.ec_cert, str(tmp_path / "c.pem"))
    os.symlink(certs.ec_key, str(tmp_path / "k.pem"))
    p = write(tmp_path, good_config(certs, "c.pem", "k.pem"))
    r = h.run([h.BIN, "-t", "-c", p], cwd="/", timeout=h.T(20))
    assert r.returncode == 0, r.stderr.decode(errors="replace")


def test_yaml_syntax_error(tmp_path):
    p = write(tmp_path, "workers: 2\nlog: @x\n")
    errs = errors_of(check(p), p)
    assert len(errs) == 1
    assert errs[0].startswith(p + ":2:6: "), errs[0]


def test_unknown_key(tmp_path, certs):
    text = good_config(certs).replace("timeouts: {handshake: 10s, idle: 300s, connect: 5s}",
                                      "timeouts: {handshake: 10s, idel: 300s, connect: 5s}")
    p = write(tmp_path, text)
    errs = errors_of(check(p), p)
    assert len(errs) == 1, errs
    assert errs[0].startswith(p + ":3:28: "), errs[0]
    assert "idel" in errs[0] and "did you mean" in errs[0] and "idle" in errs[0], errs[0]


def test_every_error_reported(tmp_path, certs):
    text = good_config(certs).replace("workers: 2", "wrokers: 2") \
                             .replace("    backend: app", "    backedn: app")
    p = write(tmp_path, text)
    errs = errors_of(check(p), p)
    assert any(e.startswith(p + ":1:1: ") and "wrokers" in e for e in errs), errs
    assert any(e.startswith(p + ":10:5: ") and "backedn" in e for e in errs), errs


def test_missing_certificate_file(tmp_path, certs):
    missing = str(tmp_path / "no-such-dir" / "cert.pem")
    p = write(tmp_path, good_config(certs, cert=missing))
    errs = errors_of(check(p), p)
    assert len(errs) == 1, errs
    # the error points into the certificates entry (its line, or the cert's)
    assert re.match(re.escape(p) + r":8:\d+: ", errs[0]), errs[0]
    assert missing in errs[0], errs[0]


def test_key_does_not_match_certificate(tmp_path, certs):
    p = write(tmp_path, good_config(certs, key=certs.other_key))
    errs = errors_of(check(p), p)
    assert len(errs) == 1, errs
    assert re.match(re.escape(p) + r":(8|9):\d+: ", errs[0]), errs[0]
    assert "does not match" in errs[0], errs[0]


@pytest.mark.parametrize("bad", ["ECDHE-RSA-AES128-SHA", "NO-SUCH-CIPHER"])
def test_cipher_not_allowed(tmp_path, certs, bad):
    text = good_config(certs).replace("log: {level: info}\n",
                                      "log: {level: info}\ntls: {ciphers: [%s]}\n" % bad)
    p = write(tmp_path, text)
    errs = errors_of(check(p), p)
    assert len(errs) == 1, errs
    assert errs[0].startswith(p + ":3:17: "), errs[0]
    assert bad in errs[0], errs[0]


def test_directory_as_certificate(tmp_path, certs):
    """issue 14: a directory given as cert or key is named as such (it
    was "PK - Memory allocation failed")."""
    d = tmp_path / "certs"
    d.mkdir()
    path = write(tmp_path, good_config(certs, key=str(d)))
    errs = errors_of(check(path), path)
    assert errs == ["%s:8:9: cannot read private key %s: it is a directory; name the file in it"
                    % (path, d)], errs


def test_cert_and_key_swapped(tmp_path, certs):
    """issue 14: swapped cert and key files say so (it was "X509 - The
    CRT/CRL/CSR format is invalid")."""
    path = write(tmp_path, good_config(certs, cert=certs.rsa_key, key=certs.rsa_cert))
    errs = errors_of(check(path), path)
    assert errs == ["%s:8:9: certificate %s holds a private key and key %s a certificate: cert "
                    "and key are swapped" % (path, certs.rsa_key, certs.rsa_cert)], errs


def test_cbc_suite_is_named_as_such(tmp_path, certs):
    """issue 14: a real CBC suite is "not offered", not "unknown"."""
    path = write(tmp_path, "tls: {ciphers: [ECDHE-RSA-AES128-SHA256]}\n" + good_config(certs))
    errs = errors_of(check(path), path)
    assert len(errs) == 1 and errs[0].startswith(
        '%s:1:17: cipher "ECDHE-RSA-AES128-SHA256" is a CBC suite, which tlsterm does not offer '
        "(only AEAD suites" % path), errs


def test_duplicate_listener_key_reported_once(tmp_path, certs):
    """issue 14/18: a duplicate key in a listener is one error, not two."""
    text = good_config(certs).replace("  - name: https\n", "  - name: https\n    name: again\n")
    path = write(tmp_path, text)
    r = check(path)
    errs = errors_of(r, path)
    assert errs == ['%s:6:5: duplicate key "name" (first at line 5)' % path], errs
    assert "configuration has 1 error" in r.stderr.decode()


def test_busy_port_at_start_names_the_config_line(tmp_path, certs):
    """A port another process holds: the start-up error names the listener,
    the address, the config line it comes from and what to look at."""
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    try:
        text = re.sub(r'listen: \["127\.0\.0\.1:\d+"\]', 'listen: ["127.0.0.1:%d"]' % port,
                      good_config(certs))
        p = write(tmp_path, text)
        r = h.run([h.BIN, "-c", p], timeout=h.T(20))
    finally:
        busy.close()
    err = r.stderr.decode(errors="replace")
    assert r.returncode != 0, err
    assert ("listener=https: cannot listen on 127.0.0.1:%d (config line 6): Address already in "
            "use; another process listens there (ss -ltnp shows which)" % port) in err, err


def merge_config(certs, defaults, app_extra=""):
    return (
        "x-defaults:\n"                                           # 1
        "  timeouts: &to {%s}\n"                                  # 2
        "  server: &srv\n"                                        # 3
        "    servers: [\"127.0.0.1:%d\"]\n"                       # 4
        "timeouts:\n"                                             # 5
        "  <<: *to\n"                                             # 6
        "  idle: 120s\n"                                          # 7
        "listeners:\n"                                            # 8
        "  - name: https\n"                                       # 9
        "    listen: [\"127.0.0.1:%d\"]\n"                        # 10
        "    certificates: [{cert: %s, key: %s}]\n"               # 11
        "    backend: app\n"                                      # 12
        "backends:\n"                                             # 13
        "  app:\n"                                                # 14
        "    <<: *srv\n"                                          # 15
        "%s"
        % (defaults, h.free_port(), h.free_port(), certs.rsa_cert, certs.rsa_key, app_extra))


def test_yaml_merge_keys(tmp_path, certs):
    """`<<: *anchor` merges a mapping; the keys a mapping sets itself win
    (the merged "idle: bad" is never read); top-level "x-" keys hold anchors."""
    p = write(tmp_path, merge_config(certs, "handshake: 5s, idle: bad"))
    r = check(p)
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.decode().strip() == "%s: configuration OK" % p


def test_yaml_merge_errors_point_at_the_anchor(tmp_path, certs):
    p = write(tmp_path, merge_config(certs, "handshake: 5 s"))
    errs = errors_of(check(p), p)
    assert len(errs) == 1 and errs[0].startswith(p + ":2:"), errs
    assert 'invalid handshake "5 s"' in errs[0], errs
    p = write(tmp_path, merge_config(certs, "handshake: 5s", "  other:\n    <<: 5\n"),
              name="two.yaml")
    errs = errors_of(check(p), p)
    assert any('"<<" (a YAML merge key) takes a mapping or a list of mappings' in e
               for e in errs), errs


def test_unknown_top_level_key_still_refused(tmp_path, certs):
    p = write(tmp_path, good_config(certs) + "defaults: {a: 1}\n")
    errs = errors_of(check(p), p)
    assert len(errs) == 1 and 'unknown key "defaults"' in errs[0], errs


def test_unmatchable_san_name_is_named(tmp_path, certs):
    """Regression (issue 18's fuzzing): a certificate whose DNS name is a
    bare "*." was refused with "name *. has more than 4 certificates"."""
    key, cert = str(tmp_path / "k.pem"), str(tmp_path / "c.pem")
    r = h.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
               "-nodes", "-keyout", key, "-out", cert, "-days", "30", "-subj", "/CN=x",
               "-addext", "subjectAltName=DNS:*.,DNS:ok.example"], timeout=h.T(30))
    assert r.returncode == 0, r.stderr
    p = write(tmp_path, good_config(certs, cert=cert, key=key))
    r = check(p)
    assert r.returncode == 1
    err = r.stderr.decode()
    assert 'DNS name "*." cannot be matched against SNI' in err, err
    assert "more than" not in err, err
