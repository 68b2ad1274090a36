# SPDX-License-Identifier: BSD-2-Clause
"""Session resumption with tickets on TLS 1.2 and TLS 1.3 alike (on TLS 1.3
a ticket is a PSK that arrives in a NewSessionTicket after the handshake):
the client gets a ticket, resumes with it ("Reused, TLSv1.3"), and the
close line says resumed=1; tickets sealed under a shared
`tls.tickets.key_file` resume on another instance with the same file,
also one whose boot-time clock differs (another host; mbedTLS 3.6 stamps
tickets with CLOCK_BOOTTIME), and not on one with another key; a key file
with a new first key and the old one second keeps old tickets working,
including across a reload that rotates the file.  (test_resumption.py
has the TLS 1.2 session cache and lifetime cases.)"""

import re
import socket
import subprocess

import pytest

import tlsterm_harness as h

REQUEST = b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n"


def res_config(backend_port, key=None, name="https"):
    tls = {"tickets": {"key_file": key}} if key else None
    return h.one_listener(backend_port, tls=tls, name=name)


class Client:
    """s_client runs pinned to one version that save and reuse one session
    file; every run sends a request and waits for the answer, so a TLS 1.3
    ticket (sent after the handshake) has arrived before the session is
    saved."""

    def __init__(self, certs, tmp_path, version, name="sess"):
        self.certs = certs
        self.version = version
        self.sess = str(tmp_path / ("%s-%s.pem" % (name, version)))

    def connect(self, d, reuse=False, save=True, listener=None):
        args = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % d.port(listener),
                "-servername", "localhost", "-CAfile", self.certs.rsa_cert,
                h.s_client_version_flag(self.version), "-ign_eof"]
        if reuse:
            args += ["-sess_in", self.sess]
        if save:
            args += ["-sess_out", self.sess + ".new" if reuse else self.sess]
        r = h.run(args, input=REQUEST)
        out = (r.stdout + r.stderr).decode(errors="replace")
        assert r.returncode == 0, out
        m = re.search(r"^(New|Reused), TLSv1\.\d, Cipher is ", out, re.M)
        assert m, out
        assert "%s, %s, " % (m.group(1), h.log_version(self.version)) in out, out
        assert out.count(h.BODY.decode()) == 1, "no answer to the request:\n" + out
        return m.group(1) == "Reused", out


V = pytest.mark.parametrize("version", h.versions())


@V
def test_ticket_issued_and_resumed(certs, http_backend, tlsterm, tmp_path, version):
    d = tlsterm(res_config(http_backend.port))
    c = Client(certs, tmp_path, version)
    reused, out = c.connect(d)
    assert not reused
    if version == "1.3":
        assert "Post-Handshake New Session Ticket arrived" in out, out
    assert "TLS session ticket lifetime hint: 43200 (seconds)" in out, out
    for _ in range(3):
        reused, out = c.connect(d, reuse=True)
        assert reused, "the ticket did not resume:\n" + out
    assert h.resumed_flags(d, 4) == ["0", "1", "1", "1"]
    lines = d.close_lines(listener="https")
    assert {l["tls"] for l in lines} == {h.log_version(version)}, [l["line"] for l in lines]
    problems = d.stop()
    assert not problems, problems
    m = re.search(r" info stopped: \d+ connection\(s\) served, \d+ refused at max_connections, "
                  r"\d+ refused by per_address limits, (\d+) full and (\d+) resumed handshake\(s\)$", d.log(), re.M)
    assert m and (int(m.group(1)), int(m.group(2))) == (1, 3), d.log_tail()


@V
def test_python_resumes(certs, http_backend, tlsterm, version):
    """Python's ssl (OpenSSL) resumes with the ticket; on TLS 1.3 the
    ticket is there once some application data has been read."""
    d = tlsterm(res_config(http_backend.port))
    ctx = h.pin_version(h.client_context(certs.rsa_cert), version)
    s = h.tls_connect(d.addr(), None, ctx=ctx)
    try:
        assert h.http11_exchange(s) == h.BODY
        sess = s.session
        assert sess is not None and sess.has_ticket, "no ticket after a request"
        assert not s.session_reused
    finally:
        s.close()
    raw = socket.create_connection(d.addr(), timeout=h.T(10))
    s2 = ctx.wrap_socket(raw, server_hostname="localhost", session=sess)
    try:
        assert s2.version() == h.log_version(version)
        assert s2.session_reused, "the ticket did not resume"
        assert h.http11_exchange(s2) == h.BODY
    finally:
        s2.close()
    assert h.resumed_flags(d, 2) == ["0", "1"]


@V
def test_shared_key_file_across_instances(certs, http_backend, tlsterm, tmp_path, version):
    a, b, c, n = h.ticket_key_instances(tlsterm, tmp_path,
                                        lambda f: res_config(http_backend.port, f))
    cl = Client(certs, tmp_path, version)
    assert not cl.connect(a)[0]
    reused, out = cl.connect(b, reuse=True)
    assert reused, "a ticket of instance a did not resume on b (same key file):\n" + out
    reused, out = cl.connect(c, reuse=True)
    assert not reused, "a ticket resumed on an instance with another key:\n" + out
    reused, out = cl.connect(n, reuse=True)
    assert reused, "an older key (second line of the key file) was not accepted:\n" + out
    assert [h.resumed_flags(x, 1) for x in (a, b, c, n)] == [["0"], ["1"], ["0"], ["1"]]
    # the first line seals: n's tickets do not open on a (k1), do on c (k2)
    cl2 = Client(certs, tmp_path, version, "sess2")
    assert not cl2.connect(n)[0]
    assert not cl2.connect(a, reuse=True)[0]
    assert cl2.connect(c, reuse=True)[0]


def unshare_time_works():
    try:
        r = subprocess.run(["unshare", "--time", "--boottime", "1", "true"],
                           capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


# Ten days: past RFC 8446's 7-day ticket limit, so a ticket age computed
# from the other host's boot clock cannot pass by luck.
OTHER_HOST = ["unshare", "--time", "--boottime", "864000", "--monotonic", "864000"]


@V
@pytest.mark.skipif(not unshare_time_works(),
                    reason="no time namespaces here (unshare --time --boottime)")
def test_shared_key_file_across_hosts(certs, http_backend, tlsterm, tmp_path, version):
    """A fleet shares the key file, not the boot time: an instance in a
    time namespace (CLOCK_BOOTTIME and CLOCK_MONOTONIC ten days ahead)
    resumes the tickets of one outside it, and the other way round."""
    f1 = h.ticket_key_file(tmp_path / "k1.keys", h.ticket_key_line())
    here = tlsterm(res_config(http_backend.port, f1), name="here")
    there = tlsterm(res_config(http_backend.port, f1), name="there", wrapper=OTHER_HOST)
    cl = Client(certs, tmp_path, version)
    assert not cl.connect(here)[0]
    reused, out = cl.connect(there, reuse=True)
    assert reused, "a ticket made here did not resume on the other host:\n" + out
    cl2 = Client(certs, tmp_path, version, "sess2")
    assert not cl2.connect(there)[0]
    reused, out = cl2.connect(here, reuse=True)
    assert reused, "a ticket made on the other host did not resume here:\n" + out
    assert h.resumed_flags(here, 2) == ["0", "1"]
    assert h.resumed_flags(there, 2) == ["1", "0"]


@V
def test_key_rotation_by_reload(certs, http_backend, tlsterm, tmp_path, version):
    """The operator's rotation: the key file gets a new first line, the
    old key moves to the second, SIGHUP.  Tickets from before still
    resume; new ones are sealed with the new key."""
    k1, k2 = h.ticket_key_line(), h.ticket_key_line()
    path = h.ticket_key_file(tmp_path / "ticket.keys", k1)
    d = tlsterm(res_config(http_backend.port, path))
    only_k1 = tlsterm(res_config(http_backend.port, h.ticket_key_file(tmp_path / "k1.keys", k1)),
                      name="only_k1")
    only_k2 = tlsterm(res_config(http_backend.port, h.ticket_key_file(tmp_path / "k2.keys", k2)),
                      name="only_k2")
    old = Client(certs, tmp_path, version, "old")
    assert not old.connect(d)[0]
    h.ticket_key_file(path, k2, k1)
    d.reload()
    reused, out = old.connect(d, reuse=True, save=False)
    assert reused, "a ticket sealed before the rotation did not resume after it:\n" + out
    new = Client(certs, tmp_path, version, "new")
    assert not new.connect(only_k2)[0]
    assert new.connect(d, reuse=True)[0]            # k2 tickets open after the reload
    new2 = Client(certs, tmp_path, version, "new2")
    assert not new2.connect(d)[0]                   # a full handshake: a ticket sealed with k2
    assert new2.connect(only_k2, reuse=True)[0], "the new first key does not seal"
    assert not new2.connect(only_k1, reuse=True)[0]
    assert h.resumed_flags(d, 4) == ["0", "1", "1", "0"]


@V
def test_lifetime_over_seven_days_is_capped(certs, http_backend, tlsterm, tmp_path, version):
    """RFC 8446 caps a ticket at 7 days, and mbedTLS 3.6 fails a TLS 1.3
    handshake that would send a longer one: tickets.lifetime 30d still
    serves, with the hint capped, and resumes."""
    d = tlsterm(h.one_listener(http_backend.port, tls={"tickets": {"lifetime": "30d"}}))
    c = Client(certs, tmp_path, version)
    reused, out = c.connect(d)
    assert not reused
    assert "TLS session ticket lifetime hint: 604800 (seconds)" in out, out
    reused, out = c.connect(d, reuse=True)
    assert reused, "the ticket did not resume:\n" + out
    assert h.resumed_flags(d, 2) == ["0", "1"]
