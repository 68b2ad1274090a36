#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""Soak: tlsterm under a long, mixed, moderate load (issue 18, section 2).

usage: soak.py [--seconds N] [--report FILE] [--keep] TLSTERM_BIN

One tlsterm (2 workers, log level info to a file, session tickets with
random in-memory keys, a session-ID cache) on loopback ports, with two
listeners:

  https  in front of backend "app": a pool of TWO plain-HTTP servers
         (separate processes) with forwarded_headers: true, fail_timeout 1s;
  bulk   an opaque TCP listener in front of backend "bulk", one server
         that sends N bytes of a fixed 4 MiB blob for a line "GET N".

Load, one thread per kind, each paced (the goal is stability, not
throughput: about 20 connections a second in all, on a shared 2-CPU
machine):

  full       a fresh ssl.SSLContext per connection (a full handshake), one
             GET of a random-size body, checked byte for byte;
  resumed    alternately a TLS ticket and (TLS 1.2, tickets off) a
             session-ID session offered again; a session that is offered
             and not resumed is a failure; each session is renewed by a
             full handshake after 20 uses;
  keepalive  3 to 12 GETs per TLS connection (a "Connection: close" from a
             draining backend is honoured: the client reconnects);
  bulk       1 to 4 MiB through the opaque listener, length and SHA-256
             checked;
  abort      client aborts: part of a ClientHello then FIN or RST; a whole
             ClientHello, the server's first flight, then FIN or RST; a
             bulk download closed (FIN or RST) after 64 KiB to 1 MiB; an
             HTTP response abandoned after its head.

Events: a backend restart every 20 s (one pool server at a time, from
15 s: SIGTERM - the server accepts what the kernel queued, closes its
socket, answers in-flight requests with Connection: close -, 2 s down,
started again on the same port), so new connections meet a refused
connect that passive health retries on the other server; a SIGHUP
reload every 30 s (from 10 s; the config alternates timeouts.idle so
each reload really changes something, tls does not change so ticket
keys and the session cache are kept), each checked for its "reloaded"
line.

Measures: tlsterm's VmRSS and open fds (/proc/PID/fd, split into TCP
connection sockets and the rest) every 10 s.  After warm-up (the first
third of the run, at least 20 s):
  * RSS: every sample within 5% of the post-warm-up median;
  * fds: every sample within max(5% of the median, 8) of the median: each
    open connection holds 2 fds (client and backend socket) and the load
    keeps up to about 5 connections open at a sampling instant, so the
    count moves by up to ~10 without any leak; the exact leak check is
  * quiescent fds: at the end of warm-up and at the end, the load pauses
    until tlsterm holds no TCP connection, and the fds by kind (listening
    sockets, other sockets, eventfd, epoll, files...) must be identical.

Unexpected failures (any makes the run fail, exit status 1): a request
that fails or is not 200, a wrong body, a resumption refused when a
session was offered, a reload without its "reloaded" line, tlsterm
exiting, an error-level log line (allow-list: none), a warn line other
than the passive-health one a restart causes, an access line whose reason
is not a clean end unless it belongs to an aborting client and matches
that abort's expected reasons (ABORT_REASONS below), handshake counts
that disagree between the clients and tlsterm, and at the end anything
but exit 0 on SIGTERM with "stopping; 0 connection(s) open" and the
"stopped:" line.

Every process it starts is stopped by PID (and dies with it: PDEATHSIG).
Loopback only.
"""
import argparse
import collections
import hashlib
import json
import os
import platform
import random
import re
import select
import shutil
import signal
import socket
import ssl
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
INTEG = os.path.join(REPO, "tests", "integration")

BLOB_SEED = 18
BLOB_MAX = 4 << 20
SAMPLE_EVERY = 10.0
RELOAD_FIRST, RELOAD_EVERY = 10.0, 30.0
RESTART_FIRST, RESTART_EVERY, RESTART_DOWN = 15.0, 20.0, 2.0
RSS_TOL = 0.05
FD_TOL, FD_ABS = 0.05, 8

# Access-line reasons that are a clean end
CLEAN = re.compile(r'^(done|done \(.*\)|client closed before sending anything)$')
# What each kind of client abort may leave as the reason of its access
# line (state, reason).  Anything else, on any connection, is unexpected.
HS_ABORT = [("in handshake", re.compile(r"^handshake failed: (peer closed the connection"
                                        r"|.*Connection reset by peer.*)$"))]
XFER_ABORT = [("established", re.compile(r"^(client (read|write): (Connection reset by peer"
                                         r"|Broken pipe)|done|done \(.*\))$"))]
ABORT_REASONS = {
    "hello-part-fin": HS_ABORT,
    "hello-part-rst": HS_ABORT,
    "after-flight-fin": HS_ABORT,
    "after-flight-rst": HS_ABORT,
    "bulk-cut-fin": XFER_ABORT,
    "bulk-cut-rst": XFER_ABORT,
    "http-cut-rst": XFER_ABORT,
}
# Lines at error level that the run may log: none.
ERROR_ALLOW = []
# Lines at warn level that the run may log: passive health noticing a
# restarting pool server (the retry on the other server is what we test).
WARN_ALLOW = [re.compile(r"^backend=app server=127\.0\.0\.1:\d+ is down for \d+ ms: "
                         r"Connection refused$")]


def blob():
    return random.Random(BLOB_SEED).randbytes(BLOB_MAX)


# ====================================================================== backends
# `soak.py --serve http|bulk PORT NAME` runs one backend server (a separate
# process, so that a restart is a real process restart).  Thread per
# connection.  SIGTERM: accept whatever the kernel has queued, close the
# listening socket (from then on connects are refused), let in-flight
# requests finish with "Connection: close", exit when every connection is
# gone (at most 10 s; then the rest are cut and counted as forced).

class Server:
    def __init__(self, kind, port, name):
        self.kind, self.port, self.name = kind, port, name
        self.blob = blob()
        self.draining = False
        self.lock = threading.Lock()
        self.conns = set()
        self.stats = collections.Counter()
        self.ls = None
        deadline = time.monotonic() + 10
        while True:         # a connection of someone else may hold the port a moment
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
                break
            except OSError:
                s.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        s.listen(512)
        s.setblocking(False)
        self.ls = s

    def run(self):
        r, w = os.pipe()
        signal.signal(signal.SIGTERM, lambda *a: os.write(w, b"x"))
        print("ready %d" % self.port, flush=True)
        while True:
            rd, _, _ = select.select([self.ls, r], [], [])
            if r in rd:
                break
            self.accept_all()
        # stop: the kernel's queue is accepted, then the socket closes, with
        # no Python in between that could let a connection be stranded
        with self.lock:
            self.draining = True
        self.accept_all()
        self.ls.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with self.lock:
                if not self.conns:
                    break
            time.sleep(0.02)
        with self.lock:
            left = list(self.conns)
        for c in left:
            self.stats["forced"] += 1
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        sys.stderr.write("stats %s\n" % json.dumps(dict(self.stats)))
        sys.stderr.flush()
        os._exit(0)

    def accept_all(self):
        while True:
            try:
                c, _ = self.ls.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                self.stats["accept_error"] += 1
                sys.stderr.write("accept: %s\n" % e)
                return
            c.setblocking(True)
            c.settimeout(60)
            with self.lock:
                self.conns.add(c)
            self.stats["accepted"] += 1
            threading.Thread(target=self.serve_one, args=(c,), daemon=True).start()

    def serve_one(self, c):
        try:
            if self.kind == "http":
                self.http(c)
            else:
                self.bulk(c)
        except (ConnectionError, socket.timeout, OSError) as e:
            self.stats["conn_error"] += 1
            self.stats["conn_error:%s" % type(e).__name__] += 1
        finally:
            with self.lock:
                self.conns.discard(c)
            try:
                c.close()
            except OSError:
                pass

    def http(self, c):
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                b = c.recv(65536)
                if not b:
                    if buf:
                        self.stats["partial_head"] += 1
                    return
                buf += b
            head, _, buf = buf.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, version = lines[0].split(" ", 2)
            hdrs = {}
            for line in lines[1:]:
                k, _, v = line.partition(":")
                hdrs[k.strip().lower()] = v.strip()
            n = int(hdrs.get("content-length", "0"))
            while len(buf) < n:
                b = c.recv(65536)
                if not b:
                    return
                buf += b
            buf = buf[n:]
            problems = []
            if hdrs.get("x-forwarded-proto") != "https":
                problems.append("X-Forwarded-Proto %r" % hdrs.get("x-forwarded-proto"))
            if hdrs.get("x-forwarded-for") != "127.0.0.1":
                problems.append("X-Forwarded-For %r" % hdrs.get("x-forwarded-for"))
            if not hdrs.get("x-forwarded-port", "").isdigit():
                problems.append("X-Forwarded-Port %r" % hdrs.get("x-forwarded-port"))
            m = re.match(r"^/data/(\d+)$", target)
            if problems or not m or method != "GET":
                status, body = 500, ("bad request: %s %s\n" % (target, problems)).encode()
                self.stats["bad_request"] += 1
            else:
                status, body = 200, self.blob[:int(m.group(1))]
            with self.lock:
                draining = self.draining
            keep = (version == "HTTP/1.1" and hdrs.get("connection", "").lower() != "close"
                    and not draining)
            if draining:
                self.stats["drain_close"] += 1
            c.sendall(b"%s %d X\r\nContent-Length: %d\r\nX-Server: %s\r\nConnection: %s\r\n\r\n"
                      % (version.encode(), status, len(body), self.name.encode(),
                         b"keep-alive" if keep else b"close") + body)
            self.stats["requests"] += 1
            if not keep:
                return

    def bulk(self, c):
        line = b""
        while not line.endswith(b"\n"):
            b = c.recv(64)
            if not b:
                return
            line += b
            if len(line) > 64:
                return
        n = min(int(line.split()[1]), BLOB_MAX)
        view = memoryview(self.blob)[:n]
        for off in range(0, n, 256 * 1024):
            c.sendall(view[off:off + 256 * 1024])
        c.shutdown(socket.SHUT_WR)
        self.stats["bodies"] += 1


def serve_main(kind, port, name):
    # The soak holds our stdin open: EOF means it is gone, so are we.  (Not
    # PR_SET_PDEATHSIG: that fires when the *thread* that started us ends,
    # and restarts are done by a thread that ends before the soak does.)
    def orphan_watch():
        while os.read(0, 4096):
            pass
        os._exit(1)
    threading.Thread(target=orphan_watch, daemon=True).start()
    Server(kind, port, name).run()


# ====================================================================== helpers

def stable_port():
    """A free loopback port below the kernel's ephemeral range, so that no
    connection's local port can take it while a restarting backend is down."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = map(int, f.read().split())
    except (OSError, ValueError):
        lo, hi = 32768, 60999
    pool = range(10000, lo) if lo > 12000 else range(hi + 1, 65535)
    rnd = random.Random()
    for _ in range(500):
        p = rnd.choice(pool)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p))
                return p
            except OSError:
                continue
    raise RuntimeError("no free port below the ephemeral range")


class BackendProc:
    def __init__(self, kind, name, port, workdir):
        self.kind, self.name, self.port = kind, name, port
        self.log_path = os.path.join(workdir, "backend-%s.log" % name)
        self.proc = None
        self.starts = 0
        self.stats = collections.Counter()
        self.stop_seconds = []

    def start(self, timeout=20):
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "--serve", self.kind, str(self.port),
                 self.name], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log)
        deadline = time.monotonic() + timeout
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                self.kill()
                raise RuntimeError("backend %s did not start (see %s)" % (self.name, self.log_path))
            r, _, _ = select.select([self.proc.stdout], [], [], left)
            if r:
                b = os.read(self.proc.stdout.fileno(), 100)
                if not b:
                    continue
                line += b
        assert line.startswith(b"ready"), line
        self.starts += 1

    def stop(self, timeout=20):
        """SIGTERM, wait (the server drains); returns seconds it took."""
        if self.proc is None or self.proc.poll() is not None:
            return 0.0
        t = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self.proc.stdout.close()
        self.proc.stdin.close()
        dt = time.monotonic() - t
        self.stop_seconds.append(dt)
        return dt

    def kill(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        for f in (self.proc.stdin, self.proc.stdout):
            if f is not None and not f.closed:
                f.close()

    def collect_stats(self):
        with open(self.log_path) as f:
            for line in f:
                if line.startswith("stats "):
                    self.stats.update(json.loads(line[6:]))
        return self.stats


def proc_fd_kinds(pid):
    """{kind: count} of tlsterm's fds and the set of its socket inodes."""
    kinds = collections.Counter()
    inodes = set()
    d = "/proc/%d/fd" % pid
    for fd in os.listdir(d):
        try:
            t = os.readlink(os.path.join(d, fd))
        except OSError:
            continue        # closed meanwhile
        m = re.match(r"^socket:\[(\d+)\]$", t)
        if m:
            inodes.add(int(m.group(1)))
            kinds["socket"] += 1
        elif t.startswith("anon_inode:"):
            kinds[t] += 1
        elif t.startswith("pipe:"):
            kinds["pipe"] += 1
        else:
            kinds["file " + t] += 1
    return kinds, inodes


def fd_listing(pid):
    """fd -> target (with the TCP state of sockets), for a failure report."""
    states = tcp_states()
    out = []
    d = "/proc/%d/fd" % pid
    for fd in sorted(os.listdir(d), key=int):
        try:
            t = os.readlink(os.path.join(d, fd))
        except OSError:
            continue
        m = re.match(r"^socket:\[(\d+)\]$", t)
        if m:
            t += " tcp-state=%s" % states.get(int(m.group(1)), "none")
        out.append("%s=%s" % (fd, t))
    return ", ".join(out)


def tcp_states():
    """{inode: hex state} for every TCP socket of the network namespace."""
    out = {}
    for p in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(p) as f:
                next(f)
                for line in f:
                    v = line.split()
                    out[int(v[9])] = v[3]
        except OSError:
            pass
    return out


def fd_snapshot(pid):
    """Total fds, TCP connection sockets (any state but LISTEN) and the fds
    by kind with sockets split into listen / connection / other."""
    kinds, inodes = proc_fd_kinds(pid)
    states = tcp_states()
    listen = sum(1 for i in inodes if states.get(i) == "0A")
    conn = sum(1 for i in inodes if i in states and states[i] != "0A")
    other = len(inodes) - listen - conn
    kinds.pop("socket", None)
    kinds["socket (listening)"] = listen
    kinds["socket (not TCP or gone)"] = other
    total = sum(kinds.values()) + conn
    return total, conn, dict(kinds)


def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.split()
    return out


def proc_cpu(pid):
    with open("/proc/%d/stat" % pid) as f:
        v = f.read().rsplit(")", 1)[1].split()
    return (int(v[11]) + int(v[12])) / os.sysconf("SC_CLK_TCK")


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


class Failure(Exception):
    pass


# ====================================================================== the run

class Soak:
    def __init__(self, h, args, workdir):
        self.h = h
        self.args = args
        self.dir = workdir
        self.blob = blob()
        self.lock = threading.Lock()
        self.count = collections.Counter()          # operations and events
        self.lat = collections.defaultdict(list)    # op -> seconds
        self.failures = []                          # (t, what, detail)
        self.fail_count = collections.Counter()
        self.abort_ports = collections.defaultdict(list)    # port -> [kind]
        self.hs = collections.Counter()             # client side: full / resumed
        self.servers_seen = collections.Counter()
        self.stop = threading.Event()
        self.paused = threading.Event()
        self.idle = {}
        self.idle_cv = threading.Condition()
        self.samples = []
        self.quiescent = []
        self.reloads = []
        self.restarts = []
        self.restart_lock = threading.Lock()
        self.t0 = None
        self.scale = h.SCALE
        self.notes = []
        self.stderr = ""

    # -------------------------------------------------------------- bookkeeping
    def now(self):
        return time.monotonic() - self.t0 if self.t0 else 0.0

    def fail(self, what, detail):
        with self.lock:
            self.fail_count[what] += 1
            if len(self.failures) < 200:
                self.failures.append((round(self.now(), 1), what, detail))
        print("[soak %6.1fs] FAILURE %s: %s" % (self.now(), what, detail), file=sys.stderr,
              flush=True)

    def note(self, key, n=1):
        with self.lock:
            self.count[key] += n

    def say(self, *a):
        print("[soak %6.1fs]" % self.now(), *a, file=sys.stderr, flush=True)

    # -------------------------------------------------------------- set-up
    def config(self, idle):
        h = self.h
        https = h.listener("https", self.https_port, "app", cert=("rsa",))
        bulk = h.listener("bulk", self.bulk_port, "bulk", cert=("ec",))
        return {
            "workers": 2,
            "log": {"level": "info", "target": "file", "file": self.log_path},
            "timeouts": {"handshake": "10s", "idle": idle, "connect": "2s", "drain": "10s"},
            # far above the load's few connections, and within a 1024-fd limit
            "limits": {"max_connections": 400},
            "tls": {"tickets": {"enabled": True},
                    "session_cache": {"size": 1000, "timeout": "10m"}},
            "listeners": [https, bulk],
            "backends": {
                "app": {"servers": ["127.0.0.1:%d" % b.port for b in self.pool],
                        "forwarded_headers": True, "fail_timeout": "1s"},
                "bulk": {"servers": ["127.0.0.1:%d" % self.bulk_be.port]},
            },
        }

    def setup(self):
        h = self.h
        os.makedirs(os.path.join(self.dir, "certs"))
        self.certs = h.Certs(os.path.join(self.dir, "certs"))
        self.pool = [BackendProc("http", n, stable_port(), self.dir) for n in ("a", "b")]
        self.bulk_be = BackendProc("bulk", "bulk", stable_port(), self.dir)
        for b in self.pool + [self.bulk_be]:
            b.start()
        self.https_port, self.bulk_port = h.free_port(), h.free_port()
        # log.file; tlsterm's stderr goes to the harness's tlsterm.log
        self.log_path = os.path.join(self.dir, "tlsterm", "soak.log")
        os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
        self.idle_values = ["120s", "121s"]
        self.d = h.Tlsterm(os.path.join(self.dir, "tlsterm"), self.config(self.idle_values[0]),
                           certs=self.certs)
        self.d.start()
        self.log_off = 0
        self.log_buf = b""
        self.log_lines = []
        self.https_addr = ("127.0.0.1", self.https_port)
        self.bulk_addr = ("127.0.0.1", self.bulk_port)
        self.hello = h.client_hello()

    # -------------------------------------------------------------- log follower
    def read_log(self):
        """Appends the log's new complete lines to self.log_lines."""
        with open(self.log_path, "rb") as f:
            f.seek(self.log_off)
            data = f.read()
        self.log_off += len(data)
        self.log_buf += data
        *done, self.log_buf = self.log_buf.split(b"\n")
        for line in done:
            self.log_lines.append(line.decode("utf-8", errors="replace"))
        return len(done)

    # -------------------------------------------------------------- clients
    def ctx(self, cafile, tickets=True, tls12=False):
        c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        c.load_verify_locations(cafile)
        if not tickets:
            c.options |= ssl.OP_NO_TICKET
        if tls12:
            c.maximum_version = ssl.TLSVersion.TLSv1_2
        return c

    def connect(self, addr, ctx, session=None, what=""):
        raw = socket.create_connection(addr, timeout=15 * self.scale)
        try:
            s = ctx.wrap_socket(raw, server_hostname="localhost", session=session)
        except BaseException:
            raw.close()
            raise
        if s.session_reused:
            self.note("hs_resumed")
        else:
            self.note("hs_full")
            if session is not None:
                port = s.getsockname()[1]
                s.close()
                raise Failure("resumption refused: %s offered a session (client port %d)"
                              % (what, port))
        return s

    def get(self, s, buf, size=None, close=False):
        """One GET /data/N on TLS socket s; returns (keep-alive?, leftover)."""
        n = random.randint(0, 16384) if size is None else size
        s.sendall(b"GET /data/%d HTTP/1.1\r\nHost: localhost\r\n%s\r\n"
                  % (n, b"Connection: close\r\n" if close else b""))
        while b"\r\n\r\n" not in buf:
            b = s.recv(65536)
            if not b:
                raise Failure("closed before the response head (%d bytes)" % len(buf))
            buf += b
        head, _, rest = bytes(buf).partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        length = int(hdrs.get("content-length", "-1"))
        body = bytearray(rest)
        while len(body) < length:
            b = s.recv(65536)
            if not b:
                raise Failure("closed inside the response body (%d of %d)" % (len(body), length))
            body += b
        left = bytearray(body[length:])
        body = bytes(body[:length])
        if status != 200:
            raise Failure("status %d: %r" % (status, body[:200]))
        if body != self.blob[:n]:
            raise Failure("wrong body for /data/%d (%d bytes)" % (n, len(body)))
        if left:
            raise Failure("%d bytes after the response" % len(left))
        with self.lock:
            self.servers_seen[hdrs.get("x-server", "?")] += 1
        return hdrs.get("connection", "").lower() != "close", left

    def op_full(self, st):
        ctx = self.ctx(self.certs.rsa_cert)         # fresh: nothing to resume
        s = self.connect(self.https_addr, ctx, what="full")
        try:
            self.get(s, bytearray())
        finally:
            s.close()

    def op_resumed(self, st):
        if "variants" not in st:
            st["variants"] = [{"name": "ticket", "ctx": self.ctx(self.certs.rsa_cert)},
                              {"name": "session-id", "ctx": self.ctx(self.certs.rsa_cert,
                                                                     tickets=False, tls12=True)}]
            if self.h.HAVE_TLS13:
                st["variants"].append({"name": "ticket-1.2",
                                       "ctx": self.ctx(self.certs.rsa_cert, tls12=True)})
            st["i"] = 0
        v = st["variants"][st["i"] % len(st["variants"])]
        st["i"] += 1
        sess = v.get("session")
        if sess is not None and v.get("uses", 0) >= 20:
            sess = None                                 # renew now and then
        try:
            s = self.connect(self.https_addr, v["ctx"], session=sess, what="resumed/" + v["name"])
        except Failure:
            v["session"] = None         # start again from a full handshake
            raise
        try:
            if sess is not None:
                self.note("resumed/" + v["name"])
                v["uses"] += 1
            else:
                v["uses"] = 0
            self.get(s, bytearray())
            v["session"] = s.session
        finally:
            s.close()

    def op_keepalive(self, st):
        if "ctx" not in st:
            st["ctx"] = self.ctx(self.certs.rsa_cert)
            st["n"] = 0
        st["n"] += 1
        sess = st.get("session") if st["n"] % 2 else None
        want = random.randint(3, 12)
        done = 0
        while done < want:
            s = self.connect(self.https_addr, st["ctx"], session=sess, what="keepalive")
            try:
                buf = bytearray()
                keep = True
                while keep and done < want:
                    keep, buf = self.get(s, buf)
                    done += 1
                    self.note("keepalive_requests")
                    if not keep:
                        self.note("keepalive_server_close")
                    elif done < want:
                        time.sleep(0.02)
                st["session"] = s.session
                sess = st["session"]
            finally:
                s.close()

    def op_bulk(self, st):
        if "ctx" not in st:
            st["ctx"] = self.ctx(self.certs.ec_cert)
            st["n"] = 0
        st["n"] += 1
        sess = st.get("session") if st["n"] % 2 else None
        n = random.randint(1 << 20, BLOB_MAX)
        s = self.connect(self.bulk_addr, st["ctx"], session=sess, what="bulk")
        try:
            s.sendall(b"GET %d\n" % n)
            hsh = hashlib.sha256()
            got = 0
            while True:
                b = s.recv(262144)
                if not b:
                    break
                hsh.update(b)
                got += len(b)
            st["session"] = s.session
        finally:
            s.close()
        if got != n or hsh.digest() != hashlib.sha256(memoryview(self.blob)[:n]).digest():
            raise Failure("bulk body: %d of %d bytes, sha256 %s" % (got, n,
                          "differs" if got == n else "-"))
        self.note("bulk_bytes", n)

    def _close(self, sock, rst):
        if rst:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()

    def op_abort(self, st):
        kinds = list(ABORT_REASONS)
        kind = kinds[st.setdefault("i", 0) % len(kinds)]
        st["i"] += 1
        self.note("abort/" + kind)
        rst = kind.endswith("-rst")
        if kind.startswith("hello-part") or kind.startswith("after-flight"):
            raw = socket.create_connection(self.https_addr, timeout=15 * self.scale)
            port = raw.getsockname()[1]
            with self.lock:
                self.abort_ports[port].append(kind)
            try:
                if kind.startswith("hello-part"):
                    raw.sendall(self.hello[:random.randint(1, len(self.hello) - 1)])
                    time.sleep(random.uniform(0, 0.05))
                else:
                    raw.sendall(self.hello)
                    if not raw.recv(65536):
                        raise Failure("EOF instead of the server's first flight")
            finally:
                self._close(raw, rst)
            return
        if kind.startswith("bulk-cut"):
            s = self.connect(self.bulk_addr, self.ctx(self.certs.ec_cert), what="abort")
            port = s.getsockname()[1]
            with self.lock:
                self.abort_ports[port].append(kind)
            try:
                s.sendall(b"GET %d\n" % BLOB_MAX)
                want, got = random.randint(64 << 10, 1 << 20), 0
                while got < want:
                    b = s.recv(65536)
                    if not b:
                        raise Failure("bulk ended after %d bytes" % got)
                    got += len(b)
            finally:
                self._close(s, rst)
            return
        # http-cut-rst: a response abandoned after its head
        s = self.connect(self.https_addr, self.ctx(self.certs.rsa_cert), what="abort")
        port = s.getsockname()[1]
        with self.lock:
            self.abort_ports[port].append(kind)
        try:
            s.sendall(b"GET /data/%d HTTP/1.1\r\nHost: localhost\r\n\r\n" % BLOB_MAX)
            buf = b""
            while b"\r\n\r\n" not in buf:
                b = s.recv(65536)
                if not b:
                    raise Failure("closed before the response head")
                buf += b
            if not buf.startswith(b"HTTP/1.1 200 "):
                raise Failure("status line %r" % buf[:40])
        finally:
            self._close(s, rst)

    # -------------------------------------------------------------- load threads
    def checkpoint(self, name):
        if not self.paused.is_set():
            return
        with self.idle_cv:
            self.idle[name] = True
            self.idle_cv.notify_all()
        while self.paused.is_set() and not self.stop.is_set():
            time.sleep(0.02)
        with self.idle_cv:
            self.idle[name] = False

    def loader(self, name, op, pace):
        st = {}
        while not self.stop.is_set():
            self.checkpoint(name)
            if self.stop.is_set():
                break
            t = time.monotonic()
            try:
                op(st)
                with self.lock:
                    self.count["op/" + name] += 1
                    self.lat[name].append(time.monotonic() - t)
            except Failure as e:
                self.fail(name, str(e))
            except Exception as e:      # socket errors, ssl errors, timeouts
                self.fail(name, "%s: %s" % (type(e).__name__, e))
            self.stop.wait(pace * random.uniform(0.5, 1.5))
        with self.idle_cv:
            self.idle[name] = True
            self.idle_cv.notify_all()

    def quiesce(self, label):
        """Pauses the load, waits for tlsterm to hold no TCP connection and
        records its fds by kind; resumes the load."""
        with self.restart_lock:
            self.paused.set()
            try:
                with self.idle_cv:
                    ok = self.idle_cv.wait_for(lambda: all(self.idle.get(n) for n in self.threads),
                                               timeout=60 * self.scale)
                if not ok:
                    self.fail("quiesce", "%s: load threads did not pause within 60 s" % label)
                # tlsterm holds no socket but its listeners (a socket that
                # closes while we look is "gone": wait for none of those
                # either), the same in two looks 100 ms apart
                pid = self.d.pid
                deadline = time.monotonic() + 15 * self.scale
                last = None
                while True:
                    total, conn, kinds = fd_snapshot(pid)
                    settled = conn == 0 and kinds["socket (not TCP or gone)"] == 0
                    if settled and last == (total, kinds):
                        break
                    if time.monotonic() > deadline:
                        self.fail("quiesce", "%s: 15 s after the load paused tlsterm still holds "
                                  "%d TCP connection socket(s) and %d socket(s) not in "
                                  "/proc/net/tcp: %s" % (label, conn,
                                                         kinds["socket (not TCP or gone)"],
                                                         fd_listing(pid)))
                        break
                    last = (total, kinds) if settled else None
                    time.sleep(0.1)
                snap = {"label": label, "t": round(self.now(), 1), "fds": total,
                        "conn": conn, "kinds": kinds, "rss_kb": self.rss()}
                self.quiescent.append(snap)
                self.say("quiescent (%s): %d fds %s, RSS %d kB" % (label, total, kinds,
                                                                    snap["rss_kb"]))
            finally:
                self.paused.clear()

    def rss(self):
        return int(proc_status(self.d.pid)["VmRSS"][0])

    # -------------------------------------------------------------- events
    def sample(self):
        pid = self.d.pid
        try:
            st = proc_status(pid)
            total, conn, kinds = fd_snapshot(pid)
            cpu = proc_cpu(pid)
        except (OSError, KeyError) as e:
            self.fail("sample", "cannot read /proc/%d: %s" % (pid, e))
            return
        s = {"t": round(self.now(), 1), "rss_kb": int(st["VmRSS"][0]), "fds": total,
             "conn": conn, "threads": int(st["Threads"][0]), "cpu_s": round(cpu, 2),
             "load": loadavg()}
        self.samples.append(s)
        self.say("sample rss=%d kB fds=%d (conn %d) threads=%d cpu=%.1fs load %s"
                 % (s["rss_kb"], s["fds"], s["conn"], s["threads"], cpu, s["load"]))

    def reload(self):
        n_before = sum(1 for l in self.log_lines if " info reloaded " in l)
        idle = self.idle_values[(len(self.reloads) + 1) % 2]
        self.d.rewrite(self.config(idle))
        t = time.monotonic()
        self.d.send_signal(signal.SIGHUP)
        deadline = t + 20 * self.scale
        ok = False
        while time.monotonic() < deadline:
            self.read_log()
            lines = self.log_lines
            if sum(1 for l in lines if " info reloaded " in l) > n_before:
                ok = True
                break
            if any(" error reload: " in l for l in lines[-50:]):
                break
            time.sleep(0.02)
        dt = time.monotonic() - t
        self.reloads.append({"t": round(self.now(), 1), "ok": ok, "seconds": round(dt, 3),
                             "idle": idle})
        self.note("reloads")
        if not ok:
            self.fail("reload", "no 'reloaded' line within %.0f s of SIGHUP at %.1f s"
                      % (20 * self.scale, self.now()))
        else:
            self.say("reloaded in %.0f ms (timeouts.idle %s)" % (dt * 1000, idle))

    def restarter(self, end):
        i = 0
        nxt = RESTART_FIRST
        while not self.stop.is_set():
            if self.stop.wait(max(0.0, nxt - self.now())):
                break
            if self.now() + RESTART_DOWN + 8 > end:
                break
            b = self.pool[i % 2]
            i += 1
            with self.restart_lock:
                t = self.now()
                try:
                    dt = b.stop()
                    time.sleep(RESTART_DOWN)
                    b.start()
                    self.restarts.append({"t": round(t, 1), "server": b.name,
                                          "stop_s": round(dt, 2),
                                          "down_s": round(self.now() - t, 2)})
                    self.note("restarts")
                    self.say("restarted backend %s (port %d): drained in %.2f s, down %.1f s"
                             % (b.name, b.port, dt, self.now() - t))
                except Exception as e:
                    self.fail("restart", "backend %s: %s" % (b.name, e))
            nxt += RESTART_EVERY

    # -------------------------------------------------------------- the run
    def run(self):
        secs = self.args.seconds
        warm = max(20.0, round(secs / 3.0 / SAMPLE_EVERY) * SAMPLE_EVERY)
        self.warm = warm
        self.threads = {"full": (self.op_full, 0.25), "resumed": (self.op_resumed, 0.15),
                        "keepalive": (self.op_keepalive, 0.3), "bulk": (self.op_bulk, 0.4),
                        "abort": (self.op_abort, 0.2)}
        self.load_start = loadavg()
        self.t0 = time.monotonic()
        workers = [threading.Thread(target=self.loader, args=(n, op, pace), name=n, daemon=True)
                   for n, (op, pace) in self.threads.items()]
        for w in workers:
            w.start()
        rs = threading.Thread(target=self.restarter, args=(secs,), name="restarter", daemon=True)
        rs.start()
        next_sample, next_reload = 0.0, RELOAD_FIRST
        quiesced = False
        try:
            while True:
                now = self.now()
                if self.d.proc.poll() is not None:
                    self.fail("tlsterm", "exited with status %s at %.1f s"
                              % (self.d.proc.returncode, now))
                    break
                if now >= next_sample:
                    self.sample()
                    next_sample += SAMPLE_EVERY
                    if not quiesced and now >= warm:
                        self.quiesce("end of warm-up")
                        quiesced = True
                    if now >= secs:
                        break
                if now >= next_reload:
                    self.reload()
                    next_reload += RELOAD_EVERY
                self.read_log()
                time.sleep(min(0.2, max(0.0, min(next_sample, next_reload) - self.now())))
        finally:
            self.stop.set()
            self.paused.clear()
            for w in workers + [rs]:
                w.join(60 * self.scale)
        self.duration = self.now()
        if self.d.proc.poll() is None:
            self.paused.set()
            self.quiesce("end")
        self.load_end = loadavg()

    def finish(self):
        """Stops tlsterm and the backends; returns the end-of-run problems."""
        self.read_log()
        problems = self.d.stop(timeout=30 * self.scale)
        for b in self.pool + [self.bulk_be]:
            b.stop()
            b.collect_stats()
        self.read_log()
        if self.log_buf:
            self.log_lines.append(self.log_buf.decode("utf-8", errors="replace"))
        for p in problems:
            self.fail("stop", p)
        with open(self.d.log_path, errors="replace") as f:      # stderr
            self.stderr = f.read()
        if any(m in self.stderr for m in self.h.SANITIZER_MARKERS):
            self.fail("sanitizer", "report on tlsterm's stderr:\n" + self.stderr[:3000])
        return problems

    # -------------------------------------------------------------- analysis
    def analyse(self):
        h = self.h
        acc = collections.Counter()
        by_state = collections.Counter()
        resumed_lines = 0
        hs_lines = 0
        self.levels = collections.Counter()
        self.events = collections.Counter()
        matched_aborts = collections.Counter()
        for line in self.log_lines:
            parts = line.split(" ", 2)
            if len(parts) < 3:
                continue
            level, msg = parts[1], parts[2]
            self.levels[level] += 1
            if level == "error" and not any(r.search(msg) for r in ERROR_ALLOW):
                self.fail("log error line", line)
            elif level == "warn":
                if any(r.search(msg) for r in WARN_ALLOW):
                    self.events["warn: server down (passive health)"] += 1
                else:
                    self.fail("log warn line", line)
            if any(m in line for m in h.SANITIZER_MARKERS):
                self.fail("sanitizer", line)
            if level != "info":
                continue
            if " is up again" in msg:
                self.events["info: server up again"] += 1
            if msg.startswith("reloaded "):
                self.events["info: reloaded"] += 1
            if msg.startswith("SIGHUP: reloading"):
                self.events["info: SIGHUP: reloading"] += 1
            if not (msg.startswith("conn=") and ' reason="' in msg) or " req=" in msg.split(
                    " client=", 1)[0]:
                continue
            d = h.parse_kv(msg)
            reason, state = d.get("reason", ""), d.get("state", "")
            acc[reason if len(reason) < 90 else reason[:90] + "..."] += 1
            by_state[state] += 1
            if d.get("tls", "-") != "-":
                hs_lines += 1
                if d.get("resumed") == "1":
                    resumed_lines += 1
            if CLEAN.match(reason):
                continue
            port = h.client_port(d)
            # the aborts that used this client port, oldest first (a port
            # comes round again after a while); each explains one line
            kinds = self.abort_ports.get(port, [])
            for i, kind in enumerate(kinds):
                if any(s == state and r.match(reason) for s, r in ABORT_REASONS[kind]):
                    matched_aborts[kind] += 1
                    del kinds[i]
                    break
            else:
                self.fail("access line", "%s (aborts left on this client port: %s)"
                          % (line, kinds or "none"))
        self.access = acc
        self.by_state = by_state
        self.matched_aborts = matched_aborts
        self.resumed_lines = resumed_lines
        self.hs_lines = hs_lines
        # the stopped: line against what the clients saw
        self.stopped_line = ""
        for line in self.log_lines:
            if " info stopped: " in line:
                self.stopped_line = line.split(" info ", 1)[1]
        m = re.search(r"(\d+) full and (\d+) resumed handshake", self.stopped_line)
        self.stopped_hs = (int(m.group(1)), int(m.group(2))) if m else None
        c_full, c_res = self.count["hs_full"], self.count["hs_resumed"]
        if self.stopped_hs is None:
            self.fail("stop", "no handshake counts in the stopped: line %r" % self.stopped_line)
        elif self.stopped_hs != (c_full, c_res):
            self.fail("accounting", "stopped: line says %d full + %d resumed handshakes, the "
                      "clients completed %d full + %d resumed" % (*self.stopped_hs, c_full, c_res))
        if resumed_lines != c_res:
            self.fail("accounting", "%d access lines say resumed=1, the clients resumed %d"
                      % (resumed_lines, c_res))
        if self.events["info: reloaded"] != len(self.reloads):
            self.fail("reload", "%d 'reloaded' lines for %d SIGHUPs"
                      % (self.events["info: reloaded"], len(self.reloads)))
        # the series
        post = [s for s in self.samples if s["t"] >= self.warm]
        self.post = post
        self.verdicts = []
        if len(post) < 3:
            self.fail("series", "only %d samples after warm-up" % len(post))
            return
        rss_med = statistics.median(s["rss_kb"] for s in post)
        fd_med = statistics.median(s["fds"] for s in post)
        self.rss_med, self.fd_med = rss_med, fd_med
        fd_tol = max(FD_TOL * fd_med, FD_ABS)
        self.fd_tol = fd_tol
        self.rss_dev = max(abs(s["rss_kb"] - rss_med) / rss_med for s in post)
        self.fd_dev = max(abs(s["fds"] - fd_med) for s in post)
        for s in post:
            if abs(s["rss_kb"] - rss_med) > RSS_TOL * rss_med and self.h.SANITIZERS:
                # ASan's quarantine (256 MB by default) keeps freed memory
                # for a while: RSS grows by design; LeakSanitizer at exit
                # (a report on stderr fails the run) is the leak check there
                self.notes.append("RSS sample at %.0f s: %d kB, %.1f%% from the median (not "
                                  "asserted on a sanitizer build)" % (
                                      s["t"], s["rss_kb"], 100 * (s["rss_kb"] - rss_med) / rss_med))
            elif abs(s["rss_kb"] - rss_med) > RSS_TOL * rss_med:
                self.fail("rss", "sample at %.0f s: %d kB, %.1f%% from the post-warm-up median "
                          "%d kB (limit 5%%)" % (s["t"], s["rss_kb"],
                                                 100 * (s["rss_kb"] - rss_med) / rss_med, rss_med))
            if abs(s["fds"] - fd_med) > fd_tol:
                self.fail("fds", "sample at %.0f s: %d fds, %+d from the post-warm-up median %g "
                          "(limit ±%.1f)" % (s["t"], s["fds"], s["fds"] - fd_med, fd_med, fd_tol))
        # slope by least squares, for the report
        ts = [s["t"] for s in post]
        tm = statistics.mean(ts)
        den = sum((t - tm) ** 2 for t in ts) or 1.0
        rm = statistics.mean(s["rss_kb"] for s in post)
        self.rss_slope = sum((s["t"] - tm) * (s["rss_kb"] - rm) for s in post) / den * 60
        if len(self.quiescent) == 2:
            a, b = self.quiescent
            if a["kinds"] != b["kinds"] or a["fds"] != b["fds"]:
                diff = {k: (a["kinds"].get(k, 0), b["kinds"].get(k, 0))
                        for k in set(a["kinds"]) | set(b["kinds"])
                        if a["kinds"].get(k, 0) != b["kinds"].get(k, 0)}
                self.fail("fd leak", "quiescent fds %d at %.0f s, %d at %.0f s: %s"
                          % (a["fds"], a["t"], b["fds"], b["t"], diff))
        else:
            self.fail("quiesce", "%d quiescent snapshots, expected 2" % len(self.quiescent))

    # -------------------------------------------------------------- report
    def report(self, cmd, started, problems):
        h = self.h
        out = []
        w = out.append
        ok = not self.fail_count
        w("# tlsterm soak: %s, %.0f s\n" % ("PASS" if ok else "FAIL", self.duration))
        w("_Generated by `%s` on %s (%.0f s in all, set-up and shutdown included). "
          "Do not edit by hand; rerun the soak._\n" % (cmd, time.strftime(
              "%Y-%m-%d %H:%M UTC", time.gmtime(started)), time.time() - started))
        w("## Method\n")
        w("See the docstring of `tests/bench/soak.py` for the whole of it.  One tlsterm, 2 workers, "
          "log level info to a file, tickets (random in-memory keys) and a session-ID cache of "
          "1,000 entries; listener `https` before a pool of two plain-HTTP servers "
          "(`forwarded_headers: true`, `fail_timeout: 1s`, separate Python processes), listener "
          "`bulk` (opaque TCP) before one server that sends N bytes of a fixed 4 MiB blob.  "
          "One client thread per kind of load, each paced between operations:\n")
        w("| thread | what it does | pace |")
        w("|---|---|---|")
        desc = {"full": "fresh `ssl.SSLContext` per connection (full handshake), one GET of 0-16 KiB, "
                        "body checked byte for byte",
                "resumed": "offers its last session again: alternately a TLS ticket and a session ID "
                           "(tickets off, TLS 1.2); a refused offer is a failure; a full handshake "
                           "after 20 uses",
                "keepalive": "3-12 GETs per connection, 20 ms apart; every other connection offers "
                             "the last session; a `Connection: close` from a draining server is "
                             "honoured",
                "bulk": "1-4 MiB through the opaque listener, length and SHA-256 checked; every "
                        "other connection resumed",
                "abort": "in turn: %s" % ", ".join(ABORT_REASONS)}
        for n, (op, pace) in self.threads.items():
            w("| %s | %s | %.0f ms ± 50%% |" % (n, desc[n], pace * 1000))
        w("")
        w("Events: a SIGHUP reload every %.0f s from %.0f s (the config alternates `timeouts.idle` "
          "120s/121s; each must log `reloaded`); a restart of one pool server every %.0f s from "
          "%.0f s, alternating (SIGTERM: the server accepts what the kernel queued, closes its "
          "socket, answers in-flight requests with `Connection: close`; %.0f s down; started again "
          "on the same port, chosen below the ephemeral range).\n"
          % (RELOAD_EVERY, RELOAD_FIRST, RESTART_EVERY, RESTART_FIRST, RESTART_DOWN))
        w("Samples every %.0f s: VmRSS from `/proc/PID/status`, open fds from `/proc/PID/fd` "
          "(*conn* = those that are TCP sockets in a state other than LISTEN, from "
          "`/proc/net/tcp`).  Warm-up: the first %.0f s.\n" % (SAMPLE_EVERY, self.warm))
        w("Criteria after warm-up: every RSS sample within %d%% of the median; every fd sample "
          "within max(%d%% of the median, %d): each open connection holds two fds (client and "
          "backend socket) and the five load threads keep up to about five connections open at "
          "a sampling instant, so the count moves by up to ~10 with no leak at all.  The exact "
          "leak check is the quiescent one: at the end of warm-up and at the end the load pauses "
          "until tlsterm holds no TCP connection, and its fds by kind must be identical.\n"
          % (RSS_TOL * 100, FD_TOL * 100, FD_ABS))
        w("Unexpected failures: any failed request, non-200, wrong body, refused resumption, "
          "reload without `reloaded`, tlsterm exiting, any `error` log line (allow-list: "
          "none), any `warn` line but `backend=app server=... is down for N ms: Connection "
          "refused` (passive health during restarts), any access line whose reason is not a "
          "clean end (`done`, `done (...)`, `client closed before sending anything`) unless its "
          "client port is an aborting client's and the reason is one that abort may cause:\n")
        for kind, pats in ABORT_REASONS.items():
            w("- %s: %s" % (kind, "; ".join('state "%s", reason /%s/' % (s, r.pattern)
                                            for s, r in pats)))
        w("\nand the handshake counts of the clients, of the access lines and of the `stopped:` "
          "line must agree; at the end SIGTERM must give exit 0, `stopping; 0 connection(s) "
          "open` and the `stopped:` line.\n")
        w("The configuration (generation 1; reloads alternate `timeouts.idle`):\n")
        cfg = self.config(self.idle_values[0])
        for l in cfg["listeners"]:
            l["certificates"] = [{"cert": "%s-cert.pem" % k, "key": "%s-key.pem" % k}
                                 for k in l["certificates"]]
        w("```yaml\n%s\n```\n" % self.h.to_yaml(cfg))
        w("## Command and machine\n")
        w("```\n%s\n```\n" % cmd)
        w("- tlsterm: `%s` (%s)" % (h.BIN, h._V.strip().replace("\n", "; ")))
        try:
            head = subprocess.run(["git", "-C", REPO, "log", "-1", "--format=%h %s", "--", "src"],
                                  capture_output=True, text=True, timeout=10).stdout.strip()
            dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--", "src"],
                                   capture_output=True, text=True, timeout=10).stdout.strip()
            w("- source: the checkout this script is in; last commit touching src/: %s%s"
              % (head[:120], " (src/ has uncommitted changes)" if dirty else ""))
        except (OSError, subprocess.SubprocessError):
            pass
        w("- machine: %d CPUs, %s, Python %s, %s" % (os.cpu_count(), platform.release(),
                                                    platform.python_version(),
                                                    ssl.OPENSSL_VERSION))
        w("- 1/5/15-min load average at start: %s; at end: %s (the machine is shared with "
          "other test runs)" % (self.load_start, self.load_end))
        cpu = self.samples[-1]["cpu_s"] if self.samples else 0
        w("- tlsterm CPU time over the run: %.1f s (%.1f%% of one CPU)\n"
          % (cpu, 100 * cpu / max(self.duration, 1)))
        w("## RSS and fd series\n")
        w("| t (s) | phase | VmRSS (kB) | fds | of which TCP conns | threads | tlsterm CPU (s) | load avg |")
        w("|---:|---|---:|---:|---:|---:|---:|---|")
        for s in self.samples:
            w("| %.0f | %s | %d | %d | %d | %d | %.1f | %s |"
              % (s["t"], "warm-up" if s["t"] < self.warm else "measured", s["rss_kb"], s["fds"],
                 s["conn"], s["threads"], s["cpu_s"], s["load"]))
        w("")
        if self.post and hasattr(self, "rss_med"):
            w("- RSS after warm-up: median %d kB, min %d, max %d, largest deviation %.2f%% "
              "(limit 5%%); least-squares slope %+.1f kB/min"
              % (self.rss_med, min(s["rss_kb"] for s in self.post),
                 max(s["rss_kb"] for s in self.post), 100 * self.rss_dev, self.rss_slope))
            w("- fds after warm-up: median %g, min %d, max %d, largest deviation %g (limit ±%.1f)"
              % (self.fd_med, min(s["fds"] for s in self.post), max(s["fds"] for s in self.post),
                 self.fd_dev, self.fd_tol))
        for q in self.quiescent:
            w("- quiescent (%s, %.0f s): %d fds, %d TCP conns, RSS %d kB: %s"
              % (q["label"], q["t"], q["fds"], q["conn"], q["rss_kb"],
                 ", ".join("%s %d" % kv for kv in sorted(q["kinds"].items()))))
        w("")
        w("## Operations\n")
        w("| operation | done | failed | median ms | max ms |")
        w("|---|---:|---:|---:|---:|")
        for n in self.threads:
            lat = sorted(self.lat[n])
            w("| %s | %d | %d | %.0f | %.0f |" % (n, self.count["op/" + n], self.fail_count[n],
                                                 1000 * statistics.median(lat) if lat else 0,
                                                 1000 * lat[-1] if lat else 0))
        w("")
        w("- handshakes completed by the clients: %d full, %d resumed (%s)"
          % (self.count["hs_full"], self.count["hs_resumed"],
             ", ".join("%s %d" % (k.split("/", 1)[1], v) for k, v in sorted(self.count.items())
                       if k.startswith("resumed/"))))
        w("- keep-alive: %d requests, %d connections ended by a draining server's "
          "`Connection: close`" % (self.count["keepalive_requests"],
                                   self.count["keepalive_server_close"]))
        w("- bulk: %.0f MiB checked" % (self.count["bulk_bytes"] / (1 << 20)))
        w("- aborts: %s" % ", ".join("%s %d" % (k.split("/", 1)[1], v)
                                     for k, v in sorted(self.count.items())
                                     if k.startswith("abort/")))
        w("- pool servers that answered: %s" % ", ".join(
            "%s %d" % kv for kv in sorted(self.servers_seen.items())))
        w("- reloads: %d, all with `reloaded`: %s; time from SIGHUP to the line: max %.0f ms"
          % (len(self.reloads), all(r["ok"] for r in self.reloads),
             1000 * max([r["seconds"] for r in self.reloads] or [0])))
        w("- backend restarts: %d (%s); drain before exit: max %.2f s"
          % (len(self.restarts), ", ".join("%s at %.0f s" % (r["server"], r["t"])
                                           for r in self.restarts),
             max([r["stop_s"] for r in self.restarts] or [0])))
        for b in self.pool + [self.bulk_be]:
            w("- backend %s: %s" % (b.name, ", ".join("%s %s" % kv for kv in sorted(b.stats.items()))))
        w("")
        w("## tlsterm's log\n")
        w("- lines by level: %s" % ", ".join("%s %d" % kv for kv in sorted(self.levels.items())))
        w("- events: %s" % ", ".join("%s %d" % kv for kv in sorted(self.events.items())))
        w("- access lines: %d (%d with a handshake, %d resumed=1); by state: %s"
          % (sum(self.access.values()), self.hs_lines, self.resumed_lines,
             ", ".join("%s %d" % kv for kv in sorted(self.by_state.items()))))
        w("- aborts whose access line matched the expected reasons: %s"
          % ", ".join("%s %d" % kv for kv in sorted(self.matched_aborts.items())))
        w("- `%s`" % self.stopped_line)
        w("\n| reason | access lines |")
        w("|---|---:|")
        for r, n in self.access.most_common():
            w("| %s | %d |" % (r.replace("|", "\\|"), n))
        w("")
        if self.stderr.strip():
            w("tlsterm's standard error:\n\n```\n%s\n```\n" % self.stderr.strip()[:3000])
        for n in self.notes:
            w("- note: %s" % n)
        w("## Failures\n")
        if not self.fail_count:
            w("None: zero unexpected failures.\n")
        else:
            w("%d in all: %s\n" % (sum(self.fail_count.values()), ", ".join(
                "%s %d" % kv for kv in self.fail_count.most_common())))
            for t, what, detail in self.failures[:60]:
                w("- %.1f s, %s: `%s`" % (t, what, detail.replace("`", "'")[:600]))
            w("")
        return "\n".join(out) + "\n"


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve_main(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        return 0
    ap = argparse.ArgumentParser(description="tlsterm soak (issue 18)")
    ap.add_argument("tlsterm", help="the tlsterm binary")
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--report", help="also write the Markdown report here")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    os.environ["TLSTERM_BIN"] = os.path.abspath(args.tlsterm)
    sys.path.insert(0, INTEG)
    import tlsterm_harness as h     # noqa: E402  (reads TLSTERM_BIN at import)
    started = time.time()
    cmd = "python3 tests/bench/soak.py --seconds %g %s" % (args.seconds, args.tlsterm)
    workdir = tempfile.mkdtemp(prefix="tlsterm-soak.")
    print("[soak] work directory %s" % workdir, file=sys.stderr, flush=True)
    soak = Soak(h, args, workdir)
    problems = []
    try:
        soak.setup()
        soak.run()
        problems = soak.finish()
        soak.analyse()
    except BaseException as e:
        soak.fail("soak", "%s: %s" % (type(e).__name__, e))
        traceback.print_exc()
        raise
    finally:
        d = getattr(soak, "d", None)
        if d is not None:
            d.kill()
        for b in getattr(soak, "pool", []) + ([soak.bulk_be] if hasattr(soak, "bulk_be") else []):
            b.kill()
    text = soak.report(cmd, started, problems)
    with open(os.path.join(workdir, "report.md"), "w") as f:
        f.write(text)
    with open(os.path.join(workdir, "series.json"), "w") as f:
        json.dump({"samples": soak.samples, "quiescent": soak.quiescent, "reloads": soak.reloads,
                   "restarts": soak.restarts, "failures": soak.failures}, f, indent=1)
    if args.report:
        with open(args.report, "w") as f:
            f.write(text)
    print(text)
    ok = not soak.fail_count
    if ok and not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print("[soak] work directory kept: %s" % workdir, file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
