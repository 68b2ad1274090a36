# SPDX-License-Identifier: BSD-2-Clause
"""Privilege separation (issue 14, section 1): started as root with
`user:`, tlsterm forks a privileged reader before the drop.  A reload
then reads root-only keys through it; the reader keeps CAP_DAC_READ_SEARCH
alone, no_new_privs, and no descriptor but its socket and stderr."""

import os
import pathlib
import pwd
import shutil
import signal
import tempfile

import pytest

import tlsterm_harness as h

CAP_DAC_READ_SEARCH = 2
CAP_NET_BIND_SERVICE = 10

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop privileges")


def children(pid):
    out = []
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
            out += [int(p) for p in f.read().split()]
    return out


def root_only_pair(tmp_path, cert, key):
    """cert and key copied into a 0700 directory as 0600 root files."""
    d = tmp_path / "keys"
    d.mkdir(mode=0o700, exist_ok=True)
    os.chmod(d, 0o700)
    paths = (str(d / "site-cert.pem"), str(d / "site-key.pem"))
    for src, dst in zip((cert, key), paths):
        shutil.copyfile(src, dst)
        os.chown(dst, 0, 0)
        os.chmod(dst, 0o600)
    return paths


def nobody_cfg(http_backend, cert, key):
    cfg = h.one_listener(http_backend.port, cert=[{"cert": cert, "key": key}])
    cfg["user"] = "nobody"
    return cfg


def test_reload_reads_root_only_keys(certs, http_backend, tlsterm, tmp_path):
    """A certificate renewed on disk in a root-only directory is served
    after SIGHUP, though the daemon itself runs as nobody."""
    cert, key = root_only_pair(tmp_path, *certs.pair("rsa"))
    d = tlsterm(nobody_cfg(http_backend, cert, key))
    ctx = h.both_certs_ctx(certs)
    assert h.served_der(d, ctx) == certs.der("rsa")
    # the daemon cannot read the key itself
    assert h.proc_status(d.pid)["Uid"][1] != "0"
    root_only_pair(tmp_path, *certs.pair("ec"))        # renewed: a new cert and key
    text = d.reload()
    assert "Permission denied" not in text, text
    assert h.served_der(d, ctx) == certs.der("ec")


def test_reader_is_confined(certs, http_backend, tlsterm, tmp_path):
    """The reader is the daemon's child, uid 0, with CAP_DAC_READ_SEARCH
    as its only capability (effective, permitted and bounding), no_new_privs,
    and only its socket and stderr open; the daemon keeps at most
    CAP_NET_BIND_SERVICE."""
    cert, key = root_only_pair(tmp_path, *certs.pair("rsa"))
    d = tlsterm(nobody_cfg(http_backend, cert, key))
    kids = children(d.pid)
    assert len(kids) == 1, kids
    reader = kids[0]
    assert "privileged reader started (pid %d)" % reader in d.log()
    st = h.proc_status(reader)
    assert st["Uid"] == ["0"] * 4, st["Uid"]
    for field in ("CapEff", "CapPrm", "CapBnd"):
        assert int(st[field][0], 16) == 1 << CAP_DAC_READ_SEARCH, (field, st[field])
    assert int(st["CapInh"][0], 16) == 0 and int(st["CapAmb"][0], 16) == 0, st
    assert st["NoNewPrivs"] == ["1"], st["NoNewPrivs"]
    fds = {int(fd): os.readlink("/proc/%d/fd/%s" % (reader, fd))
           for fd in os.listdir("/proc/%d/fd" % reader)}
    assert sorted(fds) == [2, 3], fds
    assert fds[2] == d.log_path, fds
    assert fds[3].startswith("socket:"), fds
    assert int(h.proc_status(d.pid)["CapEff"][0], 16) & ~(1 << CAP_NET_BIND_SERVICE) == 0
    # the stop signal the daemon drains on is not the reader's: it ends on EOF
    os.kill(reader, signal.SIGTERM)
    os.kill(reader, signal.SIGHUP)
    assert h.served_der(d, h.both_certs_ctx(certs)) == certs.der("rsa")
    d.reload()
    assert reader in children(d.pid)
    # the daemon's stop closes the socket, and the reader is gone with it
    assert d.stop() == []
    assert not os.path.exists("/proc/%d" % reader)


def test_reload_fails_clearly_when_the_reader_is_gone(certs, http_backend, tlsterm, tmp_path):
    cert, key = root_only_pair(tmp_path, *certs.pair("rsa"))
    d = tlsterm(nobody_cfg(http_backend, cert, key))
    reader = children(d.pid)[0]
    os.kill(reader, signal.SIGKILL)
    text = d.reload(expect_ok=False)
    assert "privileged reader is gone" in text, text
    assert "still serving generation 1" in text, text
    assert h.served_der(d, h.both_certs_ctx(certs)) == certs.der("rsa")


def test_no_redirect_through_a_directory_the_daemon_can_write(certs, http_backend, tlsterm,
                                                             tmp_path, request):
    """A directory the daemon's user can write would let it swap a named
    key for a symlink to any root-only file.  The reader does not read in
    such a directory: tlsterm reads there itself, with its own rights, so
    its own files still work and a planted symlink gets nothing."""
    nobody = pwd.getpwnam("nobody")
    secret_cert, secret_key = root_only_pair(tmp_path, *certs.pair("ec"))
    top = tempfile.mkdtemp(prefix="tlsterm-privsep-", dir="/tmp")   # nobody must reach it
    request.addfinalizer(lambda: shutil.rmtree(top))
    os.chmod(top, 0o755)
    own = pathlib.Path(top) / "own"
    own.mkdir()
    os.chown(own, nobody.pw_uid, nobody.pw_gid)
    for src in certs.pair("rsa"):
        shutil.copy(src, own / os.path.basename(src))
        os.chmod(own / os.path.basename(src), 0o644)
    cert, key = (str(own / os.path.basename(p)) for p in certs.pair("rsa"))
    d = tlsterm(nobody_cfg(http_backend, cert, key))
    ctx = h.both_certs_ctx(certs)
    d.reload()                                  # read by the daemon itself
    assert h.served_der(d, ctx) == certs.der("rsa")
    # what a compromised daemon could plant there
    for name, target in ((cert, secret_cert), (key, secret_key)):
        os.unlink(name)
        os.symlink(target, name)
    text = d.reload(expect_ok=False)
    assert "cannot read certificate %s: Permission denied" % cert in text, text
    assert h.served_der(d, ctx) == certs.der("rsa")


def test_no_reader_without_user(certs, http_backend, tlsterm):
    """Without a user to switch to there is nothing to separate."""
    d = tlsterm(h.one_listener(http_backend.port))
    assert children(d.pid) == []
    assert "privileged reader" not in d.log()
