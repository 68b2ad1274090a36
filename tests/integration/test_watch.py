# SPDX-License-Identifier: BSD-2-Clause
"""Files that are watched (src/watch.c): a certificate, key or ticket-key
file that changes on disk reloads as SIGHUP does, debounced (watch.debounce)
so a renewal writing several files is one reload; a broken file keeps the
running generation; a Kubernetes Secret update (its "..data" symlink
swapped) is noticed; unrelated files in the same directory reload nothing.

To show that something did NOT happen without sleeping, each negative case
is followed by a change that must reload, and the reload lines are then
counted."""

import os
import re
import shutil
import signal

import pki
import tlsterm_harness as h


def served(d, ca):
    rc, out, der = pki.s_client(d.addr(), "www.example.com", "-CAfile", ca.cert)
    assert rc == 0, out
    return der


def reloads(d):
    return len(re.findall(r" info watch: .* changed; reloading$", d.log(), re.M))


def ok_reloads(d):
    return len(re.findall(r" info reloaded ", d.log()))


def watch_cfg(backend_port, cert, key, watch=None):
    cfg = h.one_listener(backend_port, cert=[{"cert": cert, "key": key}])
    # short debounce so the tests are quick; the default is 1s
    cfg["watch"] = watch or {"debounce": "200ms"}
    return cfg


def replace(src, dst):
    """As certbot and `tlsterm -k` do: written beside, renamed over."""
    shutil.copy(src, str(dst) + ".tmp")
    os.rename(str(dst) + ".tmp", dst)


def test_renewed_certificate_is_served_without_a_signal(tmp_path, http_backend, tlsterm):
    ca = pki.CA(tmp_path / "pki", "root")
    old, new = (ca.issue(n, sans=["www.example.com"]) for n in ("old", "new"))
    live = tmp_path / "live"
    live.mkdir()
    shutil.copy(old.cert, live / "cert.pem")
    shutil.copy(old.key, live / "key.pem")
    d = tlsterm(watch_cfg(http_backend.port, str(live / "cert.pem"), str(live / "key.pem")))
    assert pki.which([old, new], served(d, ca)) == "old"
    replace(new.cert, live / "cert.pem")
    replace(new.key, live / "key.pem")          # within the debounce: one reload
    h.wait_until(lambda: pki.which([old, new], served(d, ca)) == "new", h.T(10),
                 "the renewed certificate to be served")
    d.wait_log(r"reloaded .*generation 2")
    assert reloads(d) == 1 and ok_reloads(d) == 1, d.log_tail()


def test_broken_file_keeps_the_running_generation(tmp_path, http_backend, tlsterm):
    ca = pki.CA(tmp_path / "pki", "root")
    old, new = (ca.issue(n, sans=["www.example.com"]) for n in ("old", "new"))
    shutil.copy(old.cert, tmp_path / "cert.pem")
    shutil.copy(old.key, tmp_path / "key.pem")
    d = tlsterm(watch_cfg(http_backend.port, str(tmp_path / "cert.pem"),
                          str(tmp_path / "key.pem")))
    with open(tmp_path / "cert.pem", "w") as f:     # half-written, in place
        f.write("-----BEGIN CERTIFICATE-----\nMIIB")
    d.wait_log(r"error reload: .* still serving generation 1")
    assert pki.which([old, new], served(d, ca)) == "old"
    replace(new.cert, tmp_path / "cert.pem")
    replace(new.key, tmp_path / "key.pem")
    h.wait_until(lambda: pki.which([old, new], served(d, ca)) == "new", h.T(10),
                 "the fixed certificate to be served")


def test_kubernetes_secret_symlink_swap(tmp_path, http_backend, tlsterm):
    """kubelet's atomic writer: the files are links to ..data/<name>, and an
    update renames a new ..data link (to a new timestamped directory) over
    the old one; the files themselves never change."""
    ca = pki.CA(tmp_path / "pki", "root")
    old, new = (ca.issue(n, sans=["www.example.com"]) for n in ("old", "new"))
    mnt = tmp_path / "secret"
    v1 = mnt / "..2026_12_05_10_00_00.1"
    v1.mkdir(parents=True)
    shutil.copy(old.cert, v1 / "tls.crt")
    shutil.copy(old.key, v1 / "tls.key")
    os.symlink(v1.name, mnt / "..data")
    os.symlink("..data/tls.crt", mnt / "tls.crt")
    os.symlink("..data/tls.key", mnt / "tls.key")
    d = tlsterm(watch_cfg(http_backend.port, str(mnt / "tls.crt"), str(mnt / "tls.key")))
    assert pki.which([old, new], served(d, ca)) == "old"
    v2 = mnt / "..2026_12_05_11_00_00.2"
    v2.mkdir()
    shutil.copy(new.cert, v2 / "tls.crt")
    shutil.copy(new.key, v2 / "tls.key")
    os.symlink(v2.name, mnt / "..data_tmp")
    os.rename(mnt / "..data_tmp", mnt / "..data")
    shutil.rmtree(v1)
    h.wait_until(lambda: pki.which([old, new], served(d, ca)) == "new", h.T(10),
                 "the certificate of the swapped Secret to be served")
    assert reloads(d) == 1, d.log_tail()


def test_unrelated_files_reload_nothing(tmp_path, http_backend, tlsterm, certs):
    shutil.copy(certs.rsa_cert, tmp_path / "cert.pem")
    shutil.copy(certs.rsa_key, tmp_path / "key.pem")
    d = tlsterm(watch_cfg(http_backend.port, str(tmp_path / "cert.pem"),
                          str(tmp_path / "key.pem")))
    for i in range(5):                      # an editor's swap files, a backup
        (tmp_path / (".cert.pem.swp%d" % i)).write_text("x")
    (tmp_path / "notes.txt").write_text("renew on Monday")
    d.wait_log(r"debug watch: a change in a watched directory, none in the configuration")
    assert reloads(d) == 0, d.log_tail()
    os.utime(tmp_path / "key.pem")          # and this must reload, once
    d.wait_log(r"watch: .*key\.pem changed; reloading")
    d.wait_log(r"reloaded .*generation 2")
    assert reloads(d) == 1, d.log_tail()


def test_ticket_key_rotation_is_picked_up(tmp_path, http_backend, tlsterm):
    keys = tmp_path / "ticket.keys"
    assert h.run([h.BIN, "-k", str(keys)], timeout=h.T(20)).returncode == 0
    cfg = h.one_listener(http_backend.port, tls={"tickets": {"key_file": str(keys)}})
    cfg["watch"] = {"debounce": "200ms"}
    d = tlsterm(cfg)
    assert h.run([h.BIN, "-k", str(keys)], timeout=h.T(20)).returncode == 0
    d.wait_log(r"watch: .*ticket\.keys changed; reloading")
    d.wait_log(r"reloaded .*generation 2")


def test_watch_disabled(tmp_path, http_backend, tlsterm, certs):
    shutil.copy(certs.rsa_cert, tmp_path / "cert.pem")
    shutil.copy(certs.rsa_key, tmp_path / "key.pem")
    d = tlsterm(watch_cfg(http_backend.port, str(tmp_path / "cert.pem"),
                          str(tmp_path / "key.pem"), watch={"enabled": False}))
    assert "file(s) watched for changes" not in d.log()
    os.utime(tmp_path / "cert.pem")
    d.send_signal(signal.SIGHUP)            # the only reload
    d.wait_log(r"reloaded .*generation 2")
    assert reloads(d) == 0 and ok_reloads(d) == 1, d.log_tail()


def test_watch_is_on_by_default(http_backend, tlsterm):
    d = tlsterm(h.one_listener(http_backend.port))
    d.wait_log(r"debug watch: 2 file\(s\) watched for changes")
