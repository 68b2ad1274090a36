# SPDX-License-Identifier: BSD-2-Clause
"""certificates: {dir: PATH} (issue 14, section 7): every key+certificate
pair in a directory is loaded, as hitch's pem-dir and HAProxy's crt DIR:
a combined PEM, or NAME.pem / NAME.crt with NAME.key.  SNI picks each by
the names in the certificates; a pair added to the directory is served
after SIGHUP; a certificate without a key is a clear error."""

import os
import shutil
import subprocess

import pytest

import pki
import tlsterm_harness as h


@pytest.fixture(scope="module")
def pk(tmp_path_factory):
    ca = pki.CA(tmp_path_factory.mktemp("pki"), "dirs")
    p = {"ca": ca}
    p["a"] = ca.issue("a", sans=["a.example"], kind="rsa")     # combined PEM
    p["b"] = ca.issue("b", sans=["b.example"])                 # b.pem + b.key
    p["c"] = ca.issue("c", sans=["c.example"])                 # c.crt + c.key
    p["d"] = ca.issue("d", sans=["d.example"])                 # added later
    return p


def fill(d, pk):
    os.makedirs(d, exist_ok=True)
    pki._cat(os.path.join(d, "a.pem"), pk["a"].chain, pk["a"].key)
    shutil.copyfile(pk["b"].chain, os.path.join(d, "b.pem"))
    shutil.copyfile(pk["b"].key, os.path.join(d, "b.key"))
    shutil.copyfile(pk["c"].chain, os.path.join(d, "c.crt"))
    shutil.copyfile(pk["c"].key, os.path.join(d, "c.key"))
    with open(os.path.join(d, "README"), "w") as f:
        f.write("certificates for tlsterm\n")
    with open(os.path.join(d, ".hidden.pem"), "w") as f:
        f.write("not read\n")


def served(d, pk, name):
    ctx = h.client_context(pk["ca"].cert)
    ctx.check_hostname = False      # the default pair for an unknown name too
    s = h.tls_connect(d.addr(), None, server_hostname=name, ctx=ctx)
    try:
        assert h.http11_exchange(s) == h.BODY
        return pki.which([pk[k] for k in "abcd"], s.getpeercert(binary_form=True))
    finally:
        s.close()


def test_sni_picks_each_pair_and_reload_adds_one(pk, http_backend, tlsterm, tmp_path):
    certdir = str(tmp_path / "certs")
    fill(certdir, pk)
    cfg = h.one_listener(http_backend.port, cert=[{"dir": certdir}])
    d = tlsterm(cfg)
    for k in "abc":
        assert served(d, pk, "%s.example" % k) == k
    assert served(d, pk, "d.example") == "a"        # unknown name: the first (sorted) pair
    shutil.copyfile(pk["d"].chain, os.path.join(certdir, "d.pem"))
    shutil.copyfile(pk["d"].key, os.path.join(certdir, "d.key"))
    d.reload()
    assert served(d, pk, "d.example") == "d"
    assert served(d, pk, "b.example") == "b"


def check(tmp_path, text):
    conf = tmp_path / "t.yaml"
    conf.write_text(text)
    return subprocess.run([h.BIN, "-t", "-c", str(conf)], capture_output=True, text=True,
                          timeout=h.T(30))


def conf_text(certificates):
    return ("listeners:\n"
            "  - name: https\n"
            "    listen: \"127.0.0.1:%d\"\n"
            "    certificates: %s\n"
            "    backend: app\n"
            "backends:\n"
            "  app: {servers: [\"127.0.0.1:1\"]}\n" % (h.free_port(), certificates))


def test_mapping_form_mixed_with_files_checks(pk, tmp_path):
    certdir = str(tmp_path / "certs")
    fill(certdir, pk)
    r = check(tmp_path, conf_text("{dir: certs}"))             # relative to the config
    assert r.returncode == 0, r.stderr
    r = check(tmp_path, conf_text("[{cert: %s, key: %s}, {dir: certs/}]"
                                  % (pk["d"].chain, pk["d"].key)))
    assert r.returncode == 0, r.stderr


def test_lone_certificate_is_an_error(pk, tmp_path):
    certdir = str(tmp_path / "certs")
    fill(certdir, pk)
    os.unlink(os.path.join(certdir, "c.key"))
    r = check(tmp_path, conf_text("{dir: certs}"))
    assert r.returncode == 1
    assert ("t.yaml:4:19: certificate %s/c.crt has no private key: put the key in the "
            "same file or beside it as %s/c.key" % (certdir, certdir)) in r.stderr, r.stderr


def test_empty_or_missing_directory_is_an_error(tmp_path):
    os.makedirs(tmp_path / "empty")
    r = check(tmp_path, conf_text("{dir: empty}"))
    assert r.returncode == 1
    assert "certificate directory %s holds no certificate and key" % (tmp_path / "empty") \
        in r.stderr, r.stderr
    r = check(tmp_path, conf_text("{dir: nowhere}"))
    assert r.returncode == 1
    assert ("cannot read certificate directory %s: No such file or directory"
            % (tmp_path / "nowhere")) in r.stderr, r.stderr


def test_pair_checks_are_those_of_files(pk, tmp_path):
    """A key that does not match its certificate gets the usual message."""
    certdir = str(tmp_path / "certs")
    fill(certdir, pk)
    shutil.copyfile(pk["d"].key, os.path.join(certdir, "b.key"))
    r = check(tmp_path, conf_text("{dir: certs}"))
    assert r.returncode == 1
    assert "private key %s/b.key does not match certificate %s/b.pem" % (certdir, certdir) \
        in r.stderr, r.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop privileges")
def test_root_only_directory_after_the_drop(pk, http_backend, tlsterm, tmp_path):
    """The listing and the files come from the privileged reader."""
    certdir = str(tmp_path / "certs")
    fill(certdir, pk)
    os.chmod(certdir, 0o700)
    for f in os.listdir(certdir):
        os.chmod(os.path.join(certdir, f), 0o600)
    cfg = h.one_listener(http_backend.port, cert=[{"dir": certdir}])
    cfg["user"] = "nobody"
    d = tlsterm(cfg)
    shutil.copyfile(pk["d"].chain, os.path.join(certdir, "d.pem"))
    shutil.copyfile(pk["d"].key, os.path.join(certdir, "d.key"))
    os.chmod(os.path.join(certdir, "d.key"), 0o600)
    d.reload()
    assert served(d, pk, "d.example") == "d"
    assert served(d, pk, "c.example") == "c"
