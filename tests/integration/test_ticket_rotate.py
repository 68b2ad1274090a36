# SPDX-License-Identifier: BSD-2-Clause
"""`tlsterm -k FILE` (src/ticket_rotate.c): a shared ticket key file keeps
three keys, in use / next / previous, and a rotation shifts them, so a
rotated file may reach the instances of a fleet in any order: an instance
still on the old file and one already on the new file resume each other's
sessions, both ways (TLS 1.2 here, where every build has tickets)."""

import os
import re
import shutil
import stat

import tlsterm_harness as h
from test_resumption import Client


def keys_of(path):
    with open(path) as f:
        return [l.strip() for l in f if l.strip() and not l.startswith("#")]


def rotate(path):
    return h.run([h.BIN, "-k", str(path)], timeout=h.T(20))


def test_create_then_rotate_shifts_the_keys(tmp_path):
    p = tmp_path / "ticket.keys"
    r = rotate(p)
    assert r.returncode == 0, r.stderr
    assert b"created with three new keys" in r.stdout
    first = keys_of(p)
    assert len(first) == 3 and len(set(first)) == 3
    assert all(re.fullmatch(r"[A-Za-z0-9+/]{64}", k) for k in first), first
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
    r = rotate(p)
    assert r.returncode == 0 and b"rotated" in r.stdout, r.stderr
    second = keys_of(p)
    # next goes into use, a new next, the old key in use stays as previous
    assert second[0] == first[1] and second[2] == first[0]
    assert second[1] not in first


def test_rotation_keeps_owner_and_mode_and_refuses_a_bad_file(tmp_path):
    p = tmp_path / "ticket.keys"
    assert rotate(p).returncode == 0
    os.chmod(p, 0o640)
    os.chown(p, 0, 65534)
    assert rotate(p).returncode == 0
    st = os.stat(p)
    assert stat.S_IMODE(st.st_mode) == 0o640 and st.st_gid == 65534
    bad = tmp_path / "bad.keys"
    bad.write_text("not a key\n")
    r = rotate(bad)
    assert r.returncode == 1 and b"not a ticket key" in r.stderr, r.stderr
    assert bad.read_text() == "not a key\n", "a bad file was changed"
    assert not [f for f in os.listdir(tmp_path) if ".tmp" in f], os.listdir(tmp_path)


def test_a_fleet_mid_rotation_resumes_both_ways(certs, http_backend, tlsterm, tmp_path):
    old = tmp_path / "old.keys"
    assert rotate(old).returncode == 0
    new = tmp_path / "new.keys"
    shutil.copy(old, new)
    assert rotate(new).returncode == 0
    cfg = lambda f: h.one_listener(http_backend.port, tls={"tickets": {"key_file": str(f)}})
    a, b = tlsterm(cfg(old)), tlsterm(cfg(new), name="tlsterm-b")
    # a session from the instance not yet rotated resumes on the rotated one
    cl = Client(certs, tmp_path, "from_old")
    assert not cl.connect(a)[0]
    reused, out = cl.connect(b, reuse=True)
    assert reused, "an old-file ticket did not resume on the rotated instance:\n" + out
    # and one from the rotated instance resumes on the one not yet rotated
    cl2 = Client(certs, tmp_path, "from_new")
    assert not cl2.connect(b)[0]
    reused, out = cl2.connect(a, reuse=True)
    assert reused, "a new-file ticket did not resume on the instance not yet rotated:\n" + out
    assert h.resumed_flags(a, 2) == ["0", "1"] and h.resumed_flags(b, 2) == ["1", "0"]


def test_ticket_outlives_two_rotations_on_a_running_instance(certs, http_backend, tlsterm,
                                                             tmp_path):
    """mbedTLS sends no new ticket on a TLS 1.2 resumption, so a client keeps
    the ticket of its full handshake; two rotations take its key out of the
    file while the ticket is still valid.  The running instance keeps keys
    that left the file, to decrypt only, for the ticket lifetime (found by
    test_fleet.py: every TLS 1.2 client had one full handshake after the
    second rotation)."""
    keys = tmp_path / "ticket.keys"
    assert rotate(keys).returncode == 0
    d = tlsterm(h.one_listener(http_backend.port, tls={"tickets": {"key_file": str(keys)}}))
    cl = Client(certs, tmp_path, "early")
    assert not cl.connect(d)[0]
    for gen in (2, 3):
        assert rotate(keys).returncode == 0
        d.wait_log(r"reloaded .*generation %d" % gen)
    assert cl.connect(d, reuse=True, save=False)[0], "the ticket did not outlive two rotations"
    d.wait_log(r"ticket keys: 1 key\(s\) left the key file; kept to decrypt")
    # a new client gets a ticket under the key now in use, and resumes too
    cl2 = Client(certs, tmp_path, "late")
    assert not cl2.connect(d)[0]
    assert cl2.connect(d, reuse=True, save=False)[0]
