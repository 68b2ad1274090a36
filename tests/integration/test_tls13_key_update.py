# SPDX-License-Identifier: BSD-2-Clause
"""TLS 1.3 KeyUpdate: mbedTLS 3.6 cannot update keys, so a client's
KeyUpdate (openssl s_client's "k", or "K" asking for one back) ends that
connection - after everything before it was relayed, with a close_notify -
and the close line says why; other connections, open or new, are served as before, and
the daemon stops cleanly (the end-of-test checks: every connection
logged, exit 0, no sanitizer report)."""

import re
import subprocess
import threading

import pytest

import tlsterm_harness as h

pytestmark = h.needs_tls13()


class Interactive:
    """openssl s_client in its basic command mode (neither -quiet nor
    -ign_eof): a line starting with "k" or "K" is a command, anything else
    is sent to the server as typed."""

    def __init__(self, d, certs):
        self.p = subprocess.Popen(
            ["openssl", "s_client", "-connect", "127.0.0.1:%d" % d.port(), "-servername",
             "localhost", "-CAfile", certs.rsa_cert, "-tls1_3", "-verify_return_error", "-msg"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            preexec_fn=h.die_with_parent)
        self.chunks = []
        self.reader = threading.Thread(
            target=lambda: self.chunks.extend(iter(lambda: self.p.stdout.read1(65536), b"")),
            daemon=True)
        self.reader.start()

    def out(self):
        return b"".join(self.chunks).decode(errors="replace")

    def send(self, data):
        self.p.stdin.write(data)
        self.p.stdin.flush()

    def wait_for(self, what, pred, timeout=None):
        h.wait_until(lambda: pred(self.out()) or self.p.poll() is not None, timeout or h.T(10),
                     what)
        if not pred(self.out()) and self.p.poll() is not None:
            # s_client may exit (the server closed after the KeyUpdate) before
            # the reader thread has taken its last lines from the pipe
            self.reader.join(h.T(5))
        assert pred(self.out()), "%s; s_client exited %s:\n%s" % (what, self.p.returncode,
                                                                   self.out())

    def close(self):
        h.end_process(self.p)
        self.reader.join(h.T(5))


@pytest.fixture
def daemon(http_backend, tlsterm):
    return tlsterm(h.one_listener(http_backend.port))


@pytest.mark.parametrize("command", [b"k", b"K"], ids=["update_not_requested",
                                                       "update_requested"])
def test_key_update_ends_the_connection(certs, daemon, http_backend, command):
    # a bystander: a keep-alive connection open across the whole test
    other = h.tls_connect(daemon.addr(), certs.rsa_cert)
    try:
        assert other.version() == "TLSv1.3"
        assert h.http11_exchange(other) == h.BODY
        c = Interactive(daemon, certs)
        try:
            c.wait_for("the handshake", lambda o: "Verify return code: 0 (ok)" in o)
            assert re.search(r"^New, TLSv1\.3, ", c.out(), re.M), c.out()
            c.send(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            c.wait_for("the answer before the KeyUpdate", lambda o: h.BODY.decode() in o)
            c.send(command + b"\n")
            c.wait_for("s_client to send the KeyUpdate",
                       lambda o: re.search(r"^>>> .*Handshake .*KeyUpdate", o, re.M))
            # the server ends the connection: s_client sees it and exits
            h.wait_until(lambda: c.p.poll() is not None, h.T(10),
                         "s_client to see the connection end after the KeyUpdate:\n" + c.out())
            # s_client has exited, but its last lines may still be in the
            # pipe: read to the end before looking at them
            c.reader.join(h.T(5))
            assert not c.reader.is_alive(), "s_client's output did not end"
            # ... cleanly: with tlsterm's close_notify, not an error alert
            after = re.split(r"^>>> .*KeyUpdate", c.out(), maxsplit=1, flags=re.M)[1]
            assert re.search(r"^<<< .*Alert .*close_notify", after, re.M), after
            assert not re.search(r"^<<< .*Alert .*fatal", after, re.M), after
        finally:
            c.close()
        line = h.wait_until(lambda: next((l for l in daemon.close_lines(listener="https")
                                          if "KeyUpdate" in l["reason"]), None), h.T(10),
                            "a close line naming the KeyUpdate in:\n" + daemon.log_tail())
        assert line["tls"] == "TLSv1.3", line["line"]
        assert line["in"] == len(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"), line["line"]
        assert line["out"] > len(h.BODY), line["line"]      # the answer went out first
        assert not line["reason"].startswith("handshake"), line["line"]
        # the bystander is unaffected, and its close line is still to come
        assert h.http11_exchange(other) == h.BODY
        assert len(daemon.close_lines(listener="https")) == 1, daemon.log_tail()
        port = other.getsockname()[1]
    finally:
        other.close()
    assert daemon.wait_close(port=port)["reason"].startswith("done")
    # and new connections are served
    status, body, port = h.https_get(daemon.addr(), certs.rsa_cert)
    assert (status, body) == (200, h.BODY)
    assert daemon.wait_close(port=port)["tls"] == "TLSv1.3"
    assert http_backend.requests == 4
