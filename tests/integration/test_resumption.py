# SPDX-License-Identifier: BSD-2-Clause
"""Session resumption on TLS 1.2 (every client here is pinned to it): RFC
5077 tickets (random in-process keys that rotate, or a shared key file so
several instances resume each other's sessions) and the session-ID cache;
the close line says resumed=0|1 and the "stopped:" line counts full and
resumed handshakes.  Tickets on TLS 1.3 (and the same key-file cases on
both versions): test_tls13_resumption.py."""

import re
import socket
import ssl
import time

import tlsterm_harness as h


def res_config(backend_port, tls=None, workers=2):
    return h.one_listener(backend_port, tls=tls, workers=workers)


class Client:
    """s_client runs that save and reuse one TLS 1.2 session file."""

    def __init__(self, certs, tmp_path, name="sess"):
        self.certs = certs
        self.sess = str(tmp_path / (name + ".pem"))

    def connect(self, d, reuse=False, save=True, opts=()):
        args = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % d.port(),
                "-servername", "localhost", "-CAfile", self.certs.rsa_cert, "-tls1_2", *opts]
        if reuse:
            args += ["-sess_in", self.sess]
        if save:
            args += ["-sess_out", self.sess + ".new" if reuse else self.sess]
        r = h.run(args, input=b"")
        out = (r.stdout + r.stderr).decode(errors="replace")
        assert r.returncode == 0, out
        m = re.search(r"^(New|Reused), TLSv1\.2, Cipher is ", out, re.M)
        assert m, out
        return m.group(1) == "Reused", out


def stopped_counts(d):
    problems = d.stop()
    assert not problems, problems
    m = re.search(r" info stopped: (\d+) connection\(s\) served, (\d+) refused at "
                  r"max_connections, \d+ refused by per_address limits, "
                  r"(\d+) full and (\d+) resumed handshake\(s\)$",
                  d.log(), re.M)
    assert m, d.log_tail()
    return tuple(int(x) for x in m.groups())


def test_ticket_resumption_one_instance(certs, http_backend, tlsterm, tmp_path):
    d = tlsterm(res_config(http_backend.port))
    c = Client(certs, tmp_path)
    reused, out = c.connect(d)
    assert not reused
    assert "TLS session ticket lifetime hint: 43200 (seconds)" in out, out   # 12h default
    for _ in range(3):
        reused, out = c.connect(d, reuse=True)
        assert reused, out
    assert h.resumed_flags(d, 4) == ["0", "1", "1", "1"]
    assert stopped_counts(d) == (len(d.probe_ports) + 4, 0, 1, 3)


def test_ticket_resumption_python(certs, http_backend, tlsterm):
    """Python's ssl module (OpenSSL) resumes with the ticket, as a client
    library would."""
    d = tlsterm(res_config(http_backend.port))
    ctx = h.client_context(certs.rsa_cert)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    s = h.tls_connect(d.addr(), certs.rsa_cert, ctx=ctx)
    assert h.http11_exchange(s) == h.BODY
    sess = s.session
    assert sess.has_ticket
    s.close()
    raw = socket.create_connection(d.addr(), timeout=h.T(10))
    s2 = ctx.wrap_socket(raw, server_hostname="localhost", session=sess)
    try:
        assert s2.session_reused
        assert h.http11_exchange(s2) == h.BODY
    finally:
        s2.close()
    assert h.resumed_flags(d, 2) == ["0", "1"]


def test_shared_key_file_across_instances(certs, http_backend, tlsterm, tmp_path):
    a, b, c, n = h.ticket_key_instances(
        tlsterm, tmp_path,
        lambda f: res_config(http_backend.port, tls={"tickets": {"key_file": f}}))
    cl = Client(certs, tmp_path)
    reused, _ = cl.connect(a)
    assert not reused
    reused, out = cl.connect(b, reuse=True)
    assert reused, "a session of instance a did not resume on b (same key file):\n" + out
    reused, out = cl.connect(c, reuse=True)
    assert not reused, "a session resumed on an instance with another key:\n" + out
    reused, out = cl.connect(n, reuse=True)
    assert reused, "an older key (second line of the key file) was not accepted:\n" + out
    assert h.resumed_flags(a, 1) == ["0"]
    assert h.resumed_flags(b, 1) == ["1"]
    assert h.resumed_flags(c, 1) == ["0"]
    assert h.resumed_flags(n, 1) == ["1"]
    # the newest key (first line) encrypts: n's tickets do not open on a
    cl2 = Client(certs, tmp_path, "sess2")
    assert not cl2.connect(n)[0]
    assert not cl2.connect(a, reuse=True)[0]
    assert cl2.connect(c, reuse=True)[0]                 # c holds k2


def test_bad_key_file_is_a_config_error(certs, tmp_path):
    bad = h.ticket_key_file(tmp_path / "bad.keys", "c2hvcnQ=")   # base64 of "short"
    cfg = res_config(h.free_port(), tls={"tickets": {"key_file": bad}})
    cfg["listeners"][0]["certificates"] = [{"cert": certs.rsa_cert, "key": certs.rsa_key}]
    p = str(tmp_path / "t.yaml")
    rc, _, err = h.check_config(p, cfg)
    assert rc == 1, err
    assert "ticket key file %s line 2: expected base64 of 48 random bytes" % bad in err, err


def test_session_id_resumption_without_tickets(certs, http_backend, tlsterm, tmp_path):
    d = tlsterm(res_config(http_backend.port, tls={"tickets": {"enabled": False}}))
    c = Client(certs, tmp_path)
    reused, out = c.connect(d, opts=["-no_ticket"])
    assert not reused
    assert "TLS session ticket:" not in out, out
    for _ in range(3):         # two workers: the cache is shared between them
        reused, out = c.connect(d, reuse=True, opts=["-no_ticket"])
        assert reused, out
    assert h.resumed_flags(d, 4) == ["0", "1", "1", "1"]


def test_server_sends_no_ticket_when_disabled(certs, http_backend, tlsterm, tmp_path):
    """With tickets off a client offering the extension gets no ticket,
    and still resumes by session ID."""
    d = tlsterm(res_config(http_backend.port, tls={"tickets": {"enabled": False}}))
    c = Client(certs, tmp_path)
    reused, out = c.connect(d)
    assert not reused
    assert "TLS session ticket lifetime hint" not in out, out
    assert c.connect(d, reuse=True)[0]


def test_no_resumption_without_tickets_and_cache(certs, http_backend, tlsterm, tmp_path):
    d = tlsterm(res_config(http_backend.port, tls={"tickets": {"enabled": False},
                                                   "session_cache": {"size": 0}}))
    c = Client(certs, tmp_path)
    assert not c.connect(d)[0]
    for _ in range(2):
        reused, out = c.connect(d, reuse=True)
        assert not reused, out
    assert h.resumed_flags(d, 3) == ["0", "0", "0"]
    assert stopped_counts(d) == (len(d.probe_ports) + 3, 0, 3, 0)


def test_cache_off_tickets_still_resume(certs, http_backend, tlsterm, tmp_path):
    d = tlsterm(res_config(http_backend.port, tls={"session_cache": {"size": 0}}))
    c = Client(certs, tmp_path)
    assert not c.connect(d)[0]
    assert c.connect(d, reuse=True)[0]
    # ... but a client that does not do tickets cannot resume
    c2 = Client(certs, tmp_path, "noticket")
    assert not c2.connect(d, opts=["-no_ticket"])[0]
    assert not c2.connect(d, reuse=True, opts=["-no_ticket"])[0]


def test_ticket_key_rotation(certs, http_backend, tlsterm, tmp_path):
    rotate = max(2, int(round(2 * h.SCALE)))        # seconds; longer for slow builds
    d = tlsterm(res_config(http_backend.port, tls={"tickets": {"rotate": "%ds" % rotate,
                                                                "lifetime": "%ds" % (5 * rotate)}}))
    started = time.monotonic()
    c = Client(certs, tmp_path)
    reused, out = c.connect(d)
    assert not reused
    assert "lifetime hint: %d (seconds)" % (5 * rotate) in out, out
    assert "session ticket key rotated" not in d.log()
    # A deliberate wait for the rotation interval (keys rotate lazily,
    # when a ticket is issued after `rotate` has passed).
    time.sleep(max(0.0, started + rotate + 0.5 - time.monotonic()))
    c2 = Client(certs, tmp_path, "after")
    assert not c2.connect(d)[0]                          # issues a ticket: rotates
    d.wait_log(r" info session ticket key rotated \(2 key\(s\) accepted\)$")
    reused, out = c.connect(d, reuse=True)
    assert reused, "a ticket sealed before the rotation did not resume:\n" + out
    assert c2.connect(d, reuse=True)[0]
    assert h.resumed_flags(d, 4) == ["0", "0", "1", "1"]
    assert len(re.findall(r"session ticket key rotated", d.log())) == 1, d.log_tail()
    assert stopped_counts(d) == (len(d.probe_ports) + 4, 0, 2, 2)


def test_ticket_lifetime_expiry(certs, http_backend, tlsterm, tmp_path):
    """A ticket older than `lifetime` is refused (full handshake), even
    though the key that sealed it is still held."""
    d = tlsterm(res_config(http_backend.port, tls={"tickets": {"rotate": "1h",
                                                                "lifetime": "1s"},
                                                   "session_cache": {"size": 0}}))
    c = Client(certs, tmp_path)
    reused, out = c.connect(d)
    assert not reused
    first = time.monotonic()
    # A deliberate wait past the lifetime (whole seconds, so up to 2s + 1).
    time.sleep(max(0.0, first + 2.2 - time.monotonic()))
    reused, out = c.connect(d, reuse=True, save=False, opts=["-trace"])
    assert not reused, "an expired ticket resumed:\n" + out
    # the client did offer its ticket: the server is the one refusing it
    hello = out.split("ServerHello", 1)[0]
    assert re.search(r"extension_type=session_ticket\(35\), length=[1-9]", hello), hello
    assert h.resumed_flags(d, 2) == ["0", "0"]
