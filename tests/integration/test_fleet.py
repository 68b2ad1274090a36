# SPDX-License-Identifier: BSD-2-Clause
"""The fleet simulation (issue 17): three tlsterm instances on loopback
behind HAProxy (Debian's package) in `mode tcp`, `balance roundrobin`,
each server with `send-proxy-v2` and an HTTP check of that instance's
admin /healthz, all three on one ticket-key file made by `tlsterm -k`.

Clients connect from 127.0.0.2 to HAProxy's frontend; HAProxy connects to
tlsterm from 127.0.0.1 (trusted, `proxy_protocol_in`), so the backend's
X-Forwarded-For can only say 127.0.0.2 if the PROXY v2 header was read.

  1. a TLS 1.2 session (and a TLS 1.3 one when the build has it) made
     through one instance resumes on the other two;
  2. under a constant load (one simulated client per loader thread, each
     keeping its TLS session and offering it on every later connection),
     every instance is restarted in turn (SIGTERM: /healthz fails for
     timeouts.drain_notice, HAProxy takes the instance out, the drain;
     then started again on the same ports, and HAProxy must see it up
     before the next one), then the ticket key is rotated twice
     (`tlsterm -k` on the shared file; the watch reloads every instance,
     and every client connects between the two rotations), then the
     certificate all three serve is renewed (new certificate and key
     renamed over the old ones: one reload per instance, and a probe
     client making full handshakes measures when all three serve it);
  3. no request failed, no offered session failed to resume (a client's
     first connection is its only full handshake), the backend saw
     127.0.0.2 for every request, HAProxy counted no connection error, no
     retry and no redispatch, and the resumed=1 close lines of each
     instance (over its restarts) equal what the clients saw.

Each client keeps the newest session it was given, as a browser does: a
TLS 1.3 client gets a new ticket on every connection, a TLS 1.2 client
keeps the ticket of its full handshake for as long as it resumes.

The figures go to BUILDDIR/tests/fleet-summary.txt ($TLSTERM_BUILDDIR
when set, else the build root holding $TLSTERM_BIN when it has a Makefile,
else the test's temporary directory)."""

import asyncio
import csv
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest

import pki
import tlsterm_harness as h

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
CLIENT_IP = "127.0.0.2"         # the clients' source address
NAMES = ("a", "b", "c")
LOADERS = 4                     # loader threads, one simulated client each
PACE = 0.02                     # seconds between one client's requests
CHECK_INTER_MS, FALL, RISE = 200, 2, 2
# the documented rule: notice >= inter x fall + one inter (600 ms here);
# 1.5 s leaves room for a loaded machine
NOTICE_MS = int(h.T(1.5) * 1000)

pytestmark = pytest.mark.skipif(
    not os.access(HAPROXY, os.X_OK),
    reason="%s is not installed (Debian package haproxy; CI installs it)" % HAPROXY)


def summary_path(tmp_path):
    """Where the figures are kept (see the module's docstring)."""
    root = os.environ.get("TLSTERM_BUILDDIR", "")
    if not root and h.BIN:
        build = os.path.dirname(os.path.dirname(os.path.abspath(h.BIN)))
        if os.path.isfile(os.path.join(build, "Makefile")):
            root = build
    return os.path.join(root or str(tmp_path), "tests", "fleet-summary.txt")


# ---------------------------------------------------------------- backend

class FleetBackend(h.Backend):
    """The application behind one instance: records the X-Forwarded-For
    values of every request and answers with the instance's name, so a
    client knows which instance served it."""

    def __init__(self, instance, **kw):
        super().__init__(**kw)
        self.instance = instance
        self.xff = []               # one tuple of values per request

    async def handle(self, reader, writer, conn):
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return
        self.xff.append(tuple(h.header_values(head, "x-forwarded-for")))
        body = self.instance.encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                     % (len(body), body))
        await writer.drain()


# ---------------------------------------------------------------- HAProxy

class HAProxy:
    """haproxy -db (foreground) on a generated configuration, with a stats
    socket for the servers' states and counters."""

    def __init__(self, d, fe_port, servers):
        self.dir = str(d)
        os.makedirs(self.dir, exist_ok=True)
        sockdir = self.dir
        if len(os.path.join(sockdir, "stats.sock").encode()) >= 100:   # sun_path
            sockdir = tempfile.mkdtemp(prefix="tlsterm-haproxy-")
        self.sock = os.path.join(sockdir, "stats.sock")
        self.fe = ("127.0.0.1", fe_port)
        self.names = [s[0] for s in servers]
        self.log_path = os.path.join(self.dir, "haproxy.log")
        lines = ["server %s 127.0.0.1:%d check port %d" % s for s in servers]
        self.conf = os.path.join(self.dir, "haproxy.cfg")
        with open(self.conf, "w") as f:
            f.write("""global
    maxconn 512
    stats socket %(sock)s mode 600 level admin
    log stdout format raw local0 info

defaults
    mode tcp
    log global
    option tcplog
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    # a realistic balancer retries and redispatches; the test asserts that
    # it never had to (wretr, wredis and econ stay 0)
    retries 3
    option redispatch

frontend fleet
    bind 127.0.0.1:%(fe)d
    default_backend tlsterm

backend tlsterm
    balance roundrobin
    option httpchk GET /healthz
    http-check expect status 200
    default-server send-proxy-v2 inter %(inter)dms fall %(fall)d rise %(rise)d
    %(servers)s
""" % {"sock": self.sock, "fe": fe_port, "inter": CHECK_INTER_MS, "fall": FALL,
                "rise": RISE, "servers": "\n    ".join(lines)})
        r = h.run([HAPROXY, "-c", "-f", self.conf])
        assert r.returncode == 0, (r.stdout + r.stderr).decode(errors="replace")
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([HAPROXY, "-db", "-f", self.conf], stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=subprocess.STDOUT,
                                     preexec_fn=h.die_with_parent)
        h.wait_until(lambda: self.proc.poll() is not None or self._stat_ok(), h.T(10),
                     "haproxy's stats socket")
        assert self.proc.poll() is None, self.log()

    def _stat_ok(self):
        try:
            return bool(self.stats())
        except OSError:
            return False

    def command(self, cmd):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(h.T(5))
            s.connect(self.sock)
            s.sendall(cmd.encode() + b"\n")
            out = bytearray()
            while True:
                b = s.recv(65536)
                if not b:
                    return out.decode(errors="replace")
                out += b

    def stats(self):
        """{server name: row of `show stat`} of backend tlsterm."""
        text = self.command("show stat")
        if not text.startswith("# "):
            return {}
        rows = csv.DictReader(io.StringIO(text[2:]))
        return {r["svname"]: r for r in rows
                if r["pxname"] == "tlsterm" and r["svname"] in self.names}

    def status(self, name):
        return self.stats().get(name, {}).get("status")

    def wait_status(self, name, want, timeout):
        h.wait_until(lambda: self.status(name) == want, timeout,
                     "haproxy to see server %s %s (now %s)" % (name, want, self.status(name)))

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=h.T(10))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=h.T(10))
        self._log.close()


# ---------------------------------------------------------------- clients

class Answer:
    """What one request through the balancer saw."""

    def __init__(self, instance, reused, session, version, port, der):
        self.instance, self.reused, self.session = instance, reused, session
        self.version, self.port, self.der = version, port, der


def request(fe, ctx, session):
    """One HTTPS request through the balancer, from CLIENT_IP, offering
    `session` (None: a full handshake).  Returns an Answer; raises on any
    failure."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.settimeout(h.T(10))
    # as browsers do; without it Python's Finished and request, two small
    # writes, wait for a delayed ACK (40 ms) on every TLS 1.2 resumption
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        raw.bind((CLIENT_IP, 0))
        raw.connect(fe)
        port = raw.getsockname()[1]
        s = ctx.wrap_socket(raw, server_hostname="localhost", session=session)
    except BaseException:
        raw.close()
        raise
    try:
        s.sendall(b"GET /fleet HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        data = h.recv_all(s)
        # read to the end: a TLS 1.3 ticket has arrived by now
        a = Answer(None, s.session_reused, s.session, s.version(), port,
                   s.getpeercert(binary_form=True))
    finally:
        s.close()
    status, _, body = h.parse_response(data)
    if status != 200 or body.decode() not in NAMES:
        raise AssertionError("answer %d %r" % (status, body[:100]))
    a.instance = body.decode()
    return a


class Client:
    """A simulated client: one TLS version, one session it keeps (the
    newest it was given) and offers on every connection after its first.
    keep=False: a client that never offers a session (full handshakes
    only, to see the certificate each instance serves)."""

    def __init__(self, cid, version, cafile, keep=True):
        self.id = cid
        self.version = version
        self.ctx = h.pin_version(h.client_context(cafile), version)
        self.keep = keep
        self.session = None
        self.sent = 0
        self.ok = 0
        self.full = 0               # full handshakes
        self.resumed = {n: 0 for n in NAMES}
        self.failed = []            # (phase, error)
        self.not_resumed = []       # (phase, instance): offered, not resumed
        self.wrong_version = []

    def once(self, fe, phase):
        offered = self.session is not None
        self.sent += 1
        try:
            a = request(fe, self.ctx, self.session)
        except Exception as e:      # every failure is counted and reported
            self.failed.append((phase, "%s: %s" % (type(e).__name__, e)))
            return None
        self.ok += 1
        if a.version != h.log_version(self.version):
            self.wrong_version.append(a.version)
        if a.reused:
            self.resumed[a.instance] += 1
        else:
            self.full += 1
            if offered:
                self.not_resumed.append((phase, a.instance))
        if self.keep and a.session is not None:
            self.session = a.session
        return a


# ---------------------------------------------------------------- the fleet

def instance_cfg(backend_port, port, admin_port, keys, cert, key):
    cfg = h.config([h.listener("https", port, "app")], {"app": backend_port},
                   timeouts={"drain_notice": "%dms" % NOTICE_MS, "drain": "10s"},
                   tls={"tickets": {"key_file": keys}})
    cfg["listeners"][0]["certificates"] = [{"cert": cert, "key": key}]
    cfg["listeners"][0]["proxy_protocol_in"] = True
    cfg["listeners"][0]["trusted"] = ["127.0.0.1/32"]
    cfg["backends"]["app"]["forwarded_headers"] = True
    cfg["watch"] = {"debounce": "200ms"}
    cfg["admin"] = {"listen": "127.0.0.1:%d" % admin_port}
    return cfg


def reloads(d):
    return len(re.findall(r" info reloaded ", d.log()))


def client_close_lines(d):
    """Close lines of the connections the balancer brought from CLIENT_IP."""
    return [l for l in d.close_lines(include_probes=True, listener="https")
            if l["client"].startswith(CLIENT_IP + ":")]


def replace(src, dst):
    """As certbot and `tlsterm -k` do: written beside, renamed over."""
    shutil.copy(src, dst + ".tmp")
    os.rename(dst + ".tmp", dst)


def rotate(keys):
    r = h.run([h.BIN, "-k", keys], timeout=h.T(20))
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    return r.stdout.decode(errors="replace")


def test_fleet_behind_haproxy(backend, tlsterm, tmp_path):
    t_start = time.monotonic()
    versions = ["1.2", "1.3"] if h.HAVE_TLS13 else ["1.2"]
    keydir = tmp_path / "keys"
    keydir.mkdir()
    keys = str(keydir / "ticket.keys")
    assert "created with three new keys" in rotate(keys)
    # the certificate every instance serves (one file, as a shared volume
    # or a config-management push would give them), and its renewal
    ca = pki.CA(tmp_path / "pki", "fleet")
    old, new = (ca.issue(n, sans=["localhost"]) for n in ("old", "new"))
    live = tmp_path / "live"
    live.mkdir()
    cert_path, key_path = str(live / "cert.pem"), str(live / "key.pem")
    shutil.copy(old.chain, cert_path)
    shutil.copy(old.key, key_path)

    backends = {n: backend(FleetBackend, n) for n in NAMES}
    ports = {n: (h.free_port(), h.free_port()) for n in NAMES}
    cfgs = {n: instance_cfg(backends[n].port, ports[n][0], ports[n][1], keys, cert_path, key_path)
            for n in NAMES}
    gens = {n: [tlsterm(cfgs[n], name=n)] for n in NAMES}      # every start of each instance
    cur = lambda n: gens[n][-1]                                 # noqa: E731

    hap = HAProxy(tmp_path / "haproxy", h.free_port(),
                  [(n, ports[n][0], ports[n][1]) for n in NAMES])
    stop = threading.Event()
    threads, clients, direct, probes = [], [], [], []
    phase = ["resume across instances"]
    restarts, rotations, renewal = [], [], {}
    aborted = None                  # raised once the figures are written
    try:
        for n in NAMES:
            hap.wait_status(n, "UP", h.T(10))

        # ---- 1. a session made through one instance resumes on the other two
        for v in versions:
            cl = Client("direct-" + v, v, ca.cert)
            direct.append(cl)
            a = cl.once(hap.fe, phase[0])
            assert a and not a.reused, cl.failed
            resumed_on = {}
            for _ in range(9):              # roundrobin: the next two are the others
                b = cl.once(hap.fe, phase[0])
                assert b, cl.failed
                assert b.reused, "TLS %s: a session made on %s did not resume on %s" % (
                    v, a.instance, b.instance)
                resumed_on.setdefault(b.instance, b.port)
                if set(resumed_on) == set(NAMES):
                    break
            assert set(resumed_on) == set(NAMES), resumed_on
            for inst, port in resumed_on.items():
                line = cur(inst).wait_close(port=port)
                assert (line["resumed"], line["tls"]) == ("1", h.log_version(v)), line["line"]
                assert line["client"] == "%s:%d" % (CLIENT_IP, port), line["line"]
            assert not cl.not_resumed and not cl.failed

        # ---- 2. constant load
        clients = [Client(i, versions[i % len(versions)], ca.cert) for i in range(LOADERS)]

        def load(cl):
            while not stop.is_set():
                cl.once(hap.fe, phase[0])
                stop.wait(PACE)

        threads = [threading.Thread(target=load, args=(cl,), name="loader-%d" % cl.id,
                                    daemon=True) for cl in clients]
        phase[0] = "warm-up"
        for t in threads:
            t.start()

        def progress(n):
            """Waits until every client has had n more answers."""
            marks = [cl.ok for cl in clients]
            h.wait_until(lambda: all(cl.ok >= m + n for cl, m in zip(clients, marks)), h.T(20),
                         "%d more answers for every client (%s)" % (
                             n, [(cl.ok, cl.failed[-1:]) for cl in clients]))

        progress(5)

        # rolling restart, one instance after the other
        for n in NAMES:
            phase[0] = "restart " + n
            d = cur(n)
            t0 = time.monotonic()
            d.send_signal(signal.SIGTERM)
            d.wait_log(r"/healthz answers 503 for \d+ ms")
            hap.wait_status(n, "DOWN", h.T(10))
            t_down = time.monotonic() - t0
            assert "drain notice over" not in d.log(), \
                "the drain began before HAProxy took %s out: drain_notice too short" % n
            d.proc.wait(timeout=h.T(30))
            d.expect_open_at_stop = None        # counted below, not required to be 0
            problems = d.stop(send=False)
            assert not problems, problems
            m = re.search(r"drain notice over, stopping; (\d+) connection\(s\) open", d.log())
            assert m, d.log_tail()
            served_before = len(backends[n].xff)
            t1 = time.monotonic()
            gens[n].append(tlsterm(cfgs[n], name="%s%d" % (n, len(gens[n]) + 1)))
            hap.wait_status(n, "UP", h.T(10))
            t_up = time.monotonic() - t1
            # traffic comes back to it before the next one goes
            h.wait_until(lambda: len(backends[n].xff) >= served_before + 3, h.T(10),
                         "requests to reach the restarted %s" % n)
            restarts.append({"instance": n, "sigterm_to_down_s": t_down,
                             "open_at_drain": int(m.group(1)), "start_to_up_s": t_up,
                             "stop_s": t1 - t0})

        # ticket key rotated twice; every instance reloads by itself (watch)
        for i in (1, 2):
            phase[0] = "rotation %d" % i
            before = {n: reloads(cur(n)) for n in NAMES}
            t0 = time.monotonic()
            assert "rotated" in rotate(keys)
            for n in NAMES:
                h.wait_until(lambda: reloads(cur(n)) > before[n], h.T(10),
                             "%s to reload the rotated key file" % n)
                assert "error reload" not in cur(n).log(), cur(n).log_tail()
            rotations.append({"rotation": i, "all_reloaded_s": time.monotonic() - t0})
            progress(5)             # every client connects on the new keys

        # certificate renewal: certificate and key renamed over the old
        # ones; each instance reloads once (watch) and serves the new one.
        # A probe client (full handshakes: a resumed session shows the
        # certificate of its first handshake) finds when.
        phase[0] = "certificate renewal"
        before = {n: reloads(cur(n)) for n in NAMES}
        probe = Client("renewal-probe", versions[-1], ca.cert, keep=False)
        probes.append(probe)
        t0 = time.monotonic()
        replace(new.chain, cert_path)
        replace(new.key, key_path)
        first_new = {}

        def all_new():
            a = probe.once(hap.fe, phase[0])
            if a is not None and pki.which([old, new], a.der) == "new":
                first_new.setdefault(a.instance, time.monotonic() - t0)
            return set(first_new) == set(NAMES)

        h.wait_until(all_new, h.T(10), "every instance to serve the renewed certificate")
        renewal = first_new
        for n in NAMES:
            h.wait_until(lambda: reloads(cur(n)) > before[n], h.T(10), "%s to reload" % n)
        progress(5)
        # a renewal that writes two files is one reload
        assert [reloads(cur(n)) - before[n] for n in NAMES] == [1, 1, 1], \
            [cur(n).log_tail() for n in NAMES]
        assert not [n for n in NAMES if "error reload" in cur(n).log()]
        phase[0] = "after the renewal"
        progress(5)
    except Exception as e:
        aborted = e
    finally:
        stop.set()
        for t in threads:
            t.join(h.T(30))
        stats = hap.stats() if hap.proc.poll() is None else {}
        hap.stop()
    assert not any(t.is_alive() for t in threads), "a loader thread hangs"

    # ---- the whole fleet stops cleanly (in parallel: one notice for all)
    if aborted is None:
        for n in NAMES:
            cur(n).send_signal(signal.SIGTERM)
        for n in NAMES:
            problems = cur(n).stop(send=False, timeout=h.T(30))
            assert not problems, (n, problems)

    # ---- 3. figures (phase 1's clients and the renewal probe included)
    everyone = direct + clients + probes
    sent = sum(cl.sent for cl in everyone)
    ok = sum(cl.ok for cl in everyone)
    failed = [(cl.id, f) for cl in everyone for f in cl.failed]
    not_resumed = [(cl.id, cl.version) + nr for cl in everyone for nr in cl.not_resumed]
    seen = {n: sum(cl.resumed[n] for cl in everyone) for n in NAMES}
    logged = {n: sum(1 for d in gens[n] for l in client_close_lines(d) if l["resumed"] == "1")
              for n in NAMES}
    conns_logged = {n: sum(len(client_close_lines(d)) for d in gens[n]) for n in NAMES}
    xff = [x for b in backends.values() for x in b.xff]
    hap_counts = {n: {k: int(stats[n][k] or 0) for k in ("econ", "eresp", "wretr", "wredis")}
                  for n in NAMES} if stats else {}
    figures = [
        ("build", "%s (protocols: %s)" % (h.BIN, h.PROTOCOLS)),
        ("tls versions", ", ".join("TLS " + v for v in versions)),
        ("clients", "%d loader threads, one client each: %s" % (
            LOADERS, ", ".join("TLS " + cl.version for cl in clients))),
        ("requests sent", "%d (%d by the loaders)" % (sent, sum(cl.sent for cl in clients))),
        ("requests answered", ok),
        ("failed", len(failed)),
        ("full handshakes", "%d (%d by the renewal probe)" % (
            sum(cl.full for cl in everyone), sum(cl.full for cl in probes))),
        ("resumed", sum(seen.values())),
        ("resumption failures", len(not_resumed)),
        ("resumed per instance (clients)", " ".join("%s=%d" % kv for kv in seen.items())),
        ("resumed per instance (resumed=1 log lines)",
         " ".join("%s=%d" % kv for kv in logged.items())),
        ("connections per instance (log)", " ".join("%s=%d" % kv for kv in conns_logged.items())),
        ("backend requests", len(xff)),
        ("X-Forwarded-For other than %s" % CLIENT_IP, sum(1 for x in xff if x != (CLIENT_IP,))),
        ("restarts", len(restarts)),
    ] + [("restart %s" % r["instance"],
          "SIGTERM to HAProxy DOWN %.2fs, %d open at drain start, stopped in %.2fs, "
          "start to HAProxy UP %.2fs" % (r["sigterm_to_down_s"], r["open_at_drain"],
                                         r["stop_s"], r["start_to_up_s"]))
         for r in restarts] + [
        ("rotations", len(rotations)),
    ] + [("rotation %d" % r["rotation"], "all 3 instances reloaded %.2fs after tlsterm -k"
          % r["all_reloaded_s"]) for r in rotations] + [
        ("certificate renewal", "written to served by all 3 instances in %s (%s; "
         "watch.debounce 200ms)" % ("%.2fs" % max(renewal.values()) if renewal else "-",
                                    " ".join("%s=%.2fs" % kv for kv in sorted(renewal.items())))),
        ("haproxy econ/eresp/wretr/wredis",
         " ".join("%s=%s" % (n, "/".join(str(c[k]) for k in ("econ", "eresp", "wretr", "wredis")))
                  for n, c in hap_counts.items())),
        ("drain_notice", "%d ms (HAProxy inter %d ms, fall %d, rise %d)"
         % (NOTICE_MS, CHECK_INTER_MS, FALL, RISE)),
        ("duration", "%.1fs" % (time.monotonic() - t_start)),
    ]
    if aborted is not None:
        figures.insert(0, ("ABORTED", "in phase %r: %s" % (phase[0], aborted)))
    text = "".join("%s: %s\n" % kv for kv in figures)
    if failed:
        text += "failures:\n" + "".join("  client %s %s: %s\n" % (c, p, e) for c, (p, e) in failed)
    if not_resumed:
        text += "not resumed:\n" + "".join("  client %s (TLS %s) %s on %s\n" % nr
                                           for nr in not_resumed)
    path = summary_path(tmp_path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    print(text)
    if aborted is not None:
        raise aborted

    assert not failed, "failed requests:\n" + text
    assert not not_resumed, "offered sessions that did not resume:\n" + text
    assert not [v for cl in everyone for v in cl.wrong_version], text
    assert sent == ok and ok > 0
    # one full handshake per client that keeps its session, its first
    assert [cl.full for cl in direct + clients] == [1] * len(direct + clients), text
    assert len(restarts) == 3 and len(rotations) == 2 and set(renewal) == set(NAMES)
    assert all(r["open_at_drain"] >= 0 for r in restarts)
    # the balancer never met a refused or broken connection, never retried
    assert hap_counts and all(not any(c.values()) for c in hap_counts.values()), text
    # every instance resumed sessions, and its log agrees with the clients
    assert all(seen[n] > 0 for n in NAMES), text
    assert logged == seen, text
    # the backend saw every request, each from 127.0.0.2
    assert len(xff) == ok == sum(conns_logged.values()), text
    assert all(x == (CLIENT_IP,) for x in xff), text
