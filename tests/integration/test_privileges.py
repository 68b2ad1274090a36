# SPDX-License-Identifier: BSD-2-Clause
"""user/group: tlsterm binds and reads keys as root, then runs as the
configured user with no capability but CAP_NET_BIND_SERVICE; when the
drop cannot be done it refuses to run at all."""

import os
import pathlib
import pwd
import shutil
import subprocess
import tempfile

import pytest

import tlsterm_harness as h

CAP_NET_BIND_SERVICE = 10

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop privileges")


def test_runs_as_the_configured_user(certs, http_backend, tlsterm):
    nobody = pwd.getpwnam("nobody")
    cfg = h.one_listener(http_backend.port)
    cfg["user"] = "nobody"
    d = tlsterm(cfg)
    st = h.proc_status(d.pid)
    # real, effective, saved and filesystem ids all changed
    assert st["Uid"] == [str(nobody.pw_uid)] * 4, st["Uid"]
    assert st["Gid"] == [str(nobody.pw_gid)] * 4, st["Gid"]
    assert st["Groups"] == [str(nobody.pw_gid)], st["Groups"]
    assert int(st["CapEff"][0], 16) == 1 << CAP_NET_BIND_SERVICE, st["CapEff"]
    assert int(st["CapPrm"][0], 16) == 1 << CAP_NET_BIND_SERVICE, st["CapPrm"]
    # every worker thread too
    for tid in os.listdir("/proc/%d/task" % d.pid):
        with open("/proc/%d/task/%s/status" % (d.pid, tid)) as f:
            assert "Uid:\t%d\t%d\t%d\t%d" % ((nobody.pw_uid,) * 4) in f.read(), tid
    assert "running as user nobody (uid %d)" % nobody.pw_uid in d.log()
    s = h.tls_connect(d.addr(), certs.rsa_cert)
    try:
        assert h.http11_exchange(s) == h.BODY
    finally:
        s.close()


def test_explicit_group(certs, http_backend, tlsterm):
    cfg = h.one_listener(http_backend.port)
    cfg["user"] = "nobody"
    cfg["group"] = "daemon"
    d = tlsterm(cfg)
    gid = str(__import__("grp").getgrnam("daemon").gr_gid)
    st = h.proc_status(d.pid)
    assert st["Gid"] == [gid] * 4 and st["Groups"] == [gid], (st["Gid"], st["Groups"])


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) missing")
def test_refuses_to_run_when_the_drop_fails(certs, http_backend, tmp_path_factory):
    """Started as an unprivileged user that cannot switch to `user`, the
    daemon says why and exits 1 instead of running as the wrong user."""
    tmp = tempfile.mkdtemp(prefix="tlsterm-privs-", dir="/tmp")    # nobody must reach it
    try:
        run_as_nobody(certs, http_backend, pathlib.Path(tmp))
    finally:
        shutil.rmtree(tmp)


def run_as_nobody(certs, http_backend, tmp_path):
    for f in certs.pair("rsa"):
        shutil.copy(f, tmp_path)
    os.chmod(tmp_path, 0o755)
    for f in os.listdir(tmp_path):
        os.chmod(tmp_path / f, 0o644)
    conf = tmp_path / "t.yaml"
    conf.write_text(h.to_yaml({
        "user": "daemon",
        "listeners": [{"name": "https", "listen": "127.0.0.1:%d" % h.free_port(),
                       "certificates": [{"cert": str(tmp_path / "rsa-cert.pem"),
                                         "key": str(tmp_path / "rsa-key.pem")}],
                       "backend": "app"}],
        "backends": {"app": {"servers": ["127.0.0.1:%d" % http_backend.port]}}}) + "\n")
    r = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                        h.BIN, "-c", str(conf)], capture_output=True, text=True,
                       timeout=h.T(30), cwd=str(tmp_path))
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "cannot drop privileges to user daemon" in r.stderr, r.stderr
    assert "Operation not permitted" in r.stderr, r.stderr
    assert " ready: " not in r.stderr
