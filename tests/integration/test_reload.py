# SPDX-License-Identifier: BSD-2-Clause
"""SIGHUP reload: the new generation is built completely beside the running
one; unchanged listeners keep their sockets, so clients never see a refused
or reset connection; connections finish on the generation they started on;
a broken config changes nothing; old generations are freed."""

import socket
import ssl
import threading
import time

import tlsterm_harness as h


def cfg_with(port, backend_port, cert, **kw):
    return h.config([h.listener("https", port, "app", cert=(cert,))],
                    {"app": backend_port}, **kw)


class Load:
    """Threads doing new connection + GET + close in a loop, counting every
    failure (refused, reset, bad answer) with its error."""

    def __init__(self, d, ctx, n=4):
        self.d, self.ctx = d, ctx
        self.ok = 0
        self.errors = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(n)]

    def run(self):
        while not self.stop.is_set():
            try:
                s = h.tls_connect(self.d.addr(), None, ctx=self.ctx)
                try:
                    body = h.http11_exchange(s)
                finally:
                    s.close()
                assert body == h.BODY, body
                with self.lock:
                    self.ok += 1
            except Exception as e:          # every kind of failure counts
                with self.lock:
                    self.errors.append(repr(e))

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *a):
        self.stop.set()
        for t in self.threads:
            t.join(h.T(30))

    def wait_more(self, n):
        start = self.ok
        h.wait_until(lambda: self.ok >= start + n or self.errors, h.T(30),
                     "%d more successful requests" % n)


def test_twenty_reloads_under_load_lose_nothing(certs, http_backend, tlsterm):
    port = h.free_port()
    d = tlsterm(cfg_with(port, http_backend.port, "rsa", log_level="info"))
    ctx = h.both_certs_ctx(certs)
    kinds = ["ec", "rsa"]
    t0 = time.monotonic()
    with Load(d, ctx) as load:
        for i in range(20):
            load.wait_more(5)
            d.rewrite(cfg_with(port, http_backend.port, kinds[i % 2], log_level="info"))
            d.reload()
        load.wait_more(5)
        # keep the load on for at least 20 s in all
        h.wait_until(lambda: time.monotonic() - t0 >= 20 or load.errors, h.T(60),
                     "20 seconds of load")
    assert load.errors == [], "%d failed of %d: %s" % (len(load.errors), load.ok + len(load.errors),
                                                      load.errors[:5])
    assert load.ok > 100, load.ok
    # the last reload (i = 19) installed the RSA certificate
    assert h.served_der(d, ctx) == certs.der("rsa")
    assert "reloaded %s: generation 21" % d.conf_path in d.log()


def test_connections_finish_on_their_generation(certs, backend, http_backend, tlsterm):
    other = backend(h.HttpBackend, body=b"other backend\n")
    port = h.free_port()
    d = tlsterm(cfg_with(port, http_backend.port, "rsa"))
    ctx = h.both_certs_ctx(certs)
    old = h.tls_connect(d.addr(), None, ctx=ctx)
    try:
        assert h.http11_exchange(old) == h.BODY
        d.rewrite(cfg_with(port, other.port, "ec"))
        d.reload()
        # the open connection keeps its backend and certificate ...
        assert old.getpeercert(binary_form=True) == certs.der("rsa")
        assert h.http11_exchange(old) == h.BODY
        # ... new ones get the new ones
        s = h.tls_connect(d.addr(), None, ctx=ctx)
        try:
            assert s.getpeercert(binary_form=True) == certs.der("ec")
            assert h.http11_exchange(s) == b"other backend\n"
        finally:
            s.close()
    finally:
        old.close()
    h.wait_until(lambda: len(d.close_lines()) == 2, h.T(10), "both close lines")
    gens = sorted(l["gen"] for l in d.close_lines())
    assert gens == ["1", "2"], [l["line"] for l in d.close_lines()]


def test_broken_config_changes_nothing(certs, http_backend, tlsterm):
    port = h.free_port()
    d = tlsterm(cfg_with(port, http_backend.port, "rsa"))
    ctx = h.both_certs_ctx(certs)
    keep = h.tls_connect(d.addr(), None, ctx=ctx)
    try:
        assert h.http11_exchange(keep) == h.BODY
        good = d.cfg
        d.rewrite("listeners: [\n  {name: https, listen: 127.0.0.1:%d, backend: nowhere\n" % port)
        text = d.reload(expect_ok=False)
        assert "error reload: %s:" % d.conf_path in text, text
        assert "still serving generation 1" in text, text
        # a config that parses but names a key file that is not there
        bad = cfg_with(port, http_backend.port, "rsa")
        d.rewrite(bad)
        with open(d.conf_path) as f:
            text_cfg = f.read()
        with open(d.conf_path, "w") as f:
            f.write(text_cfg.replace(certs.rsa_key, certs.rsa_key + ".missing"))
        text = d.reload(expect_ok=False)
        assert ".missing" in text and "still serving generation 1" in text, text
        # clients notice nothing
        assert h.http11_exchange(keep) == h.BODY
        assert h.served_der(d, ctx) == certs.der("rsa")
        d.rewrite(good)
        d.reload()
        assert "generation 2" in d.log()
    finally:
        keep.close()


def test_listeners_added_and_removed(certs, http_backend, tlsterm):
    a, b = h.free_port(), h.free_port()
    d = tlsterm(cfg_with(a, http_backend.port, "rsa"))
    ctx = h.both_certs_ctx(certs)
    both = h.config([h.listener("https", a, "app"), h.listener("extra", b, "app")],
                    {"app": http_backend.port})
    d.rewrite(both)
    d.reload()
    for port in (a, b):
        s = h.tls_connect(("127.0.0.1", port), None, ctx=ctx)
        assert h.http11_exchange(s) == h.BODY
        s.close()
    d.rewrite(h.config([h.listener("extra", b, "app")], {"app": http_backend.port}))
    d.reload()
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", a)) != 0, "removed listener still accepts"
    s = h.tls_connect(("127.0.0.1", b), None, ctx=ctx)
    assert h.http11_exchange(s) == h.BODY
    s.close()


def test_new_listener_on_a_busy_port_fails_the_reload(certs, http_backend, tlsterm):
    port = h.free_port()
    d = tlsterm(cfg_with(port, http_backend.port, "rsa"))
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        d.rewrite(h.config([h.listener("https", port, "app"),
                            h.listener("taken", busy.getsockname()[1], "app")],
                           {"app": http_backend.port}))
        text = d.reload(expect_ok=False)
        assert "Address already in use" in text, text
        s = h.tls_connect(d.addr("https"), certs.rsa_cert)
        assert h.http11_exchange(s) == h.BODY
        s.close()
    finally:
        busy.close()


def test_resumption_survives_reload(certs, http_backend, tlsterm):
    port = h.free_port()
    d = tlsterm(cfg_with(port, http_backend.port, "rsa"))
    ctx = h.client_context(certs.rsa_cert)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    s = h.tls_connect(d.addr(), None, ctx=ctx)
    assert h.http11_exchange(s) == h.BODY
    sess = s.session
    s.close()
    d.reload()
    raw = socket.create_connection(d.addr(), timeout=h.T(10))
    s2 = ctx.wrap_socket(raw, server_hostname="localhost", session=sess)
    try:
        assert s2.session_reused, "in-memory ticket keys were lost on reload"
        assert h.http11_exchange(s2) == h.BODY
    finally:
        s2.close()


def test_hundred_reloads_free_every_generation(certs, http_backend, tlsterm):
    port = h.free_port()
    d = tlsterm(cfg_with(port, http_backend.port, "rsa"))
    ctx = h.both_certs_ctx(certs)
    held = h.tls_connect(d.addr(), None, ctx=ctx)      # pins generation 1
    try:
        assert h.http11_exchange(held) == h.BODY
        rss = []
        for i in range(100):
            d.rewrite(cfg_with(port, http_backend.port, ["ec", "rsa"][i % 2]))
            d.reload()
            if i in (19, 99):
                rss.append(d.rss_kb())
        assert "generation 1 freed" not in d.log()
        assert h.http11_exchange(held) == h.BODY
    finally:
        held.close()
    d.wait_log(r"generation 1 freed")
    # generations 2..100 were freed as soon as the next one replaced them
    for g in range(1, 101):
        assert "generation %d freed" % g in d.log(), g
    # 80 more reloads must not grow the process by more than a few MB
    # (not under ASan: its quarantine holds freed memory on purpose, and
    # LeakSanitizer checks for leaks at exit instead)
    if not h.SANITIZERS:
        assert rss[1] - rss[0] < 4096, rss
