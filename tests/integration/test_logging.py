# SPDX-License-Identifier: BSD-2-Clause
"""Log targets: a log file that SIGUSR1 reopens after rotation without
losing a line, syslog, and log.access: false."""

import os
import signal
import socket
import subprocess
import sys
import textwrap

import pytest

import tlsterm_harness as h


def one_request(d, certs):
    s = h.tls_connect(d.addr(), certs.rsa_cert)
    try:
        assert h.http11_exchange(s) == h.BODY
        return "127.0.0.1:%d" % s.getsockname()[1]
    finally:
        s.close()


def test_log_file_reopened_on_sigusr1(certs, http_backend, tlsterm, tmp_path):
    path = str(tmp_path / "tlsterm.log")
    cfg = h.one_listener(http_backend.port)
    cfg["log"] = {"level": "debug", "target": "file", "file": path}
    d = tlsterm(cfg)
    first = one_request(d, certs)
    d.wait_log(r"client=%s .* reason=" % first)
    # logrotate: rename, then signal; lines written in between go to the
    # renamed file (the daemon still holds it open), none are lost
    os.rename(path, path + ".1")
    d.rotated.append(path + ".1")
    second = one_request(d, certs)
    d.wait_log(r"client=%s .* reason=" % second)
    d.send_signal(signal.SIGUSR1)
    h.wait_until(lambda: os.path.exists(path) and "SIGUSR1: log file reopened" in open(path).read(),
                 h.T(10), "the new log file")
    third = one_request(d, certs)
    d.wait_log(r"client=%s .* reason=" % third)
    with open(path + ".1") as f:
        old = f.read()
    with open(path) as f:
        new = f.read()
    assert "client=%s " % first in old and "client=%s " % second in old
    assert "client=%s " % third in new and "client=%s " % third not in old
    assert oct(os.stat(path).st_mode & 0o777) == "0o640"
    # nothing went to stderr
    with open(d.log_path) as f:
        assert f.read() == ""


def test_unwritable_log_file_is_a_start_error(certs, http_backend, tmp_path):
    cfg = h.one_listener(http_backend.port)
    cfg["log"] = {"target": "file", "file": str(tmp_path / "no-such-dir" / "t.log")}
    d = h.Tlsterm(tmp_path / "d", cfg, certs=certs)
    r = subprocess.run([h.BIN, "-c", d.conf_path], capture_output=True, text=True,
                       timeout=h.T(30))
    assert r.returncode == 1
    assert "cannot open log file %s" % (tmp_path / "no-such-dir" / "t.log") in r.stderr
    assert "No such file or directory" in r.stderr


def test_access_false_keeps_connection_lines_out_of_info(certs, http_backend, tlsterm):
    cfg = h.one_listener(http_backend.port, log_level="info")
    cfg["log"]["access"] = False
    d = tlsterm(cfg)
    one_request(d, certs)
    d.expect_open_at_stop = None        # no access lines to wait for
    assert d.stop() == []
    assert " ready: " in d.log()
    assert "conn=" not in d.log(), d.log()


SYSLOG_RECEIVER = textwrap.dedent("""
    import ctypes, os, socket, sys
    ctypes.CDLL(None).prctl(1, 15)      # PR_SET_PDEATHSIG: SIGTERM when tlsterm ends
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind("/dev/log")
    os.chmod("/dev/log", 0o666)
    open(sys.argv[1] + ".ready", "w").close()
    with open(sys.argv[1], "ab", buffering=0) as out:
        while True:
            out.write(s.recv(65536) + b"\\n")
""")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a private mount namespace")
def test_syslog_target(certs, http_backend, tmp_path):
    """glibc's syslog() writes to /dev/log: in a private mount namespace a
    tmpfs over /dev (with null and urandom bound back) holds our own
    receiver, so the test sees exactly what tlsterm sends."""
    got = tmp_path / "syslog.out"
    recv = tmp_path / "recv.py"
    recv.write_text(SYSLOG_RECEIVER)
    cfg = h.one_listener(http_backend.port)
    cfg["log"] = {"level": "info", "target": "syslog"}
    d = h.Tlsterm(tmp_path / "d", cfg, certs=certs)
    script = textwrap.dedent("""
        set -e
        old=$(mktemp -d)
        mount --bind /dev "$old"
        mount -t tmpfs -o mode=755 tmpfs /dev
        for n in null zero urandom random; do
            touch /dev/$n; mount --bind "$old/$n" /dev/$n
        done
        "$PY" "$RECV" "$OUT" &
        while [ ! -e "$OUT.ready" ]; do sleep 0.05; done
        exec "$BIN" -c "$CONF"
    """)
    env = dict(os.environ, PY=sys.executable, RECV=str(recv), OUT=str(got), BIN=h.BIN,
               CONF=d.conf_path)
    try:
        p = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    except FileNotFoundError:
        pytest.skip("unshare (util-linux) missing")
    try:
        h.wait_until(lambda: p.poll() is not None or (got.exists() and b" ready: " in got.read_bytes()),
                     h.T(20), "the ready line over syslog")
        if p.poll() is not None:
            err = p.stderr.read().decode()
            if "Operation not permitted" in err or "unshare failed" in err:
                pytest.skip("no mount namespaces here: " + err)
            if "cannot change root filesystem propagation" in err:
                # a chroot whose / is not a mount point (the Debian 13 CI chroot)
                pytest.skip("/ is not a mount point here (a chroot?): " + err)
            raise AssertionError("exited %s: %s" % (p.returncode, err))
        with socket.create_connection(d.addr(), timeout=h.T(5)):
            pass
        h.wait_until(lambda: b"reason=" in got.read_bytes(), h.T(10), "the access line")
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=h.T(30))
        assert p.returncode == 0
        text = got.read_text()
        # RFC 3164 as glibc writes it: <PRI>TIMESTAMP tlsterm[PID]: message
        # daemon facility (3): info = 3*8+6 = 30
        pid_tag = "tlsterm["
        ready = [l for l in text.splitlines() if " ready: " in l]
        assert ready and ready[0].startswith("<30>") and pid_tag in ready[0], text
        assert "info tlsterm" not in ready[0]       # no second timestamp/level prefix
        assert p.stderr.read() == b""
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_client_chosen_sni_cannot_forge_log_lines(certs, http_backend, tlsterm):
    """SNI is the client's text: a newline, quote or space in it must not
    end the field or the line."""
    d = tlsterm(h.one_listener(http_backend.port))
    evil = 'x y"z\nFAKE info conn=999 reason="forged'
    r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % d.port(),
                        "-servername", evil, "-tls1_2"], input=b"", capture_output=True,
                       timeout=h.T(30))
    assert b"BEGIN CERTIFICATE" in r.stdout or b"Server certificate" in r.stdout, r.stdout[-500:]
    line = d.wait_close()
    assert line["sni"] == 'x?y?z?FAKE?info?conn=999?reason=?forged', line["line"]
    assert "FAKE info" not in d.log()
    assert len([l for l in d.log_lines() if "conn=999" in l]) == 1     # inside one line
