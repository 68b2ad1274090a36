# SPDX-License-Identifier: BSD-2-Clause
"""Shared helpers for the tlsterm integration suite.

Everything here is plain stdlib: certificates come from the openssl CLI,
backends are asyncio servers running in a thread of the test process, and
the daemon is the real binary named by $TLSTERM_BIN.

Rules the helpers follow (and tests should too):
  * no sleep is used to wait for something: wait_until() polls a condition
    against a deadline;
  * every port is picked fresh (free_port), so parallel runs do not collide;
  * every loop and every blocking call has a deadline, scaled by SCALE when
    the daemon was built with sanitizers (TLSTERM_SANITIZERS non-empty) or
    when TLSTERM_TIMEOUT_SCALE says so.
"""

import asyncio
import hashlib
import json
import os
import random
import re
import signal
import socket
import ssl
import struct
import subprocess
import threading
import time

# ---------------------------------------------------------------- settings

SANITIZERS = os.environ.get("TLSTERM_SANITIZERS", "").strip()
SCALE = float(os.environ.get("TLSTERM_TIMEOUT_SCALE") or (4.0 if SANITIZERS else 1.0))
BIN = os.environ.get("TLSTERM_BIN", "")

BODY = b"Hello from the plain-HTTP backend behind tlsterm.\n"


def T(seconds):
    """A deadline in seconds, scaled for slow (sanitizer) builds."""
    return seconds * SCALE


def _version_output():
    """What `tlsterm -V` prints ("" when the binary cannot run)."""
    if not BIN or not os.access(BIN, os.X_OK):
        return ""
    try:
        r = subprocess.run([BIN, "-V"], capture_output=True, timeout=T(30))
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return r.stdout.decode(errors="replace")


_V = _version_output()
# `tlsterm -V`: "mbedTLS Mbed TLS 3.6.6; protocols: TLS 1.2, TLS 1.3" (on
# mbedTLS 2.28: "mbedTLS mbed TLS 2.28.3; protocols: TLS 1.2 (this mbedTLS
# has no TLS 1.3)")
_m = re.search(r"^mbedTLS [^;\n]*?(\d+)\.(\d+)\.(\d+)", _V, re.M)
MBEDTLS_VERSION = tuple(int(x) for x in _m.groups()) if _m else (0, 0, 0)
_m = re.search(r"protocols: ([^\n]*)", _V)
PROTOCOLS = _m.group(1).split("(", 1)[0].strip() if _m else ""
# TLS 1.3 is there when the mbedTLS it was built with has it (3.6 and newer)
HAVE_TLS13 = "TLS 1.3" in PROTOCOLS
# The newest version a default client negotiates, as the close line says it
DEFAULT_TLS = "TLSv1.3" if HAVE_TLS13 else "TLSv1.2"
# The versions a test parametrized over versions runs on; 1.3 is skipped
# (not dropped) on a build without it, so the report says so.
VERSIONS = ["1.2", "1.3"]
NO_TLS13 = "this tlsterm has no TLS 1.3 (tlsterm -V: protocols: %s)" % PROTOCOLS


def needs_tls13():
    """A skipif mark for tests of TLS 1.3 only (pytest is imported here so
    that the harness itself stays importable without it)."""
    import pytest
    return pytest.mark.skipif(not HAVE_TLS13, reason=NO_TLS13)


def version_param(v):
    """pytest.param for a "1.2" / "1.3" parameter, skipping 1.3 when the
    binary has no TLS 1.3."""
    import pytest
    marks = [] if v != "1.3" or HAVE_TLS13 else [pytest.mark.skip(reason=NO_TLS13)]
    return pytest.param(v, marks=marks, id="tls" + v)


def versions():
    """[version_param("1.2"), version_param("1.3")] for parametrize."""
    return [version_param(v) for v in VERSIONS]


def s_client_version_flag(v):
    """openssl s_client's flag pinning one version."""
    return {"1.2": "-tls1_2", "1.3": "-tls1_3"}[v]


def ssl_version(v):
    return {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}[v]


def pin_version(ctx, v):
    """Makes an ssl.SSLContext speak exactly TLS version v ("1.2"/"1.3")."""
    ctx.minimum_version = ctx.maximum_version = ssl_version(v)
    return ctx


def log_version(v):
    """The tls= field of the close line for version v."""
    return "TLSv" + v


# The TLS 1.3 suites by their RFC 8446 names (OpenSSL's, Python's, the
# config's `ciphersuites:`) -> the cipher= field of the close line
# (mbedTLS's own spelling).
SUITES13 = {
    "TLS_AES_128_GCM_SHA256": "TLS1-3-AES-128-GCM-SHA256",
    "TLS_AES_256_GCM_SHA384": "TLS1-3-AES-256-GCM-SHA384",
    "TLS_CHACHA20_POLY1305_SHA256": "TLS1-3-CHACHA20-POLY1305-SHA256",
}


# ---------------------------------------------------------------- waiting

def wait_until(pred, timeout, what="condition", interval=0.01):
    """Polls pred() until it returns a true value, which is returned.

    Raises AssertionError naming `what` when the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


_ports_given = set()


def free_port(host="127.0.0.1"):
    """A port nothing listens on right now (bind :0, read it, close), and
    never one this process was given before: two calls for one config (two
    listeners) once got the same port from the kernel, and the config was
    refused as listing one address twice (test_cert_types, Debian 13 CI)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(100):
        with socket.socket(fam, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port not in _ports_given:
            _ports_given.add(port)
            return port
    raise AssertionError("no fresh free port in 100 tries")


def ipv6_loopback_available():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def payload(n, seed=1):
    """n deterministic pseudo-random bytes."""
    return random.Random(seed).randbytes(n)


def sha256(b):
    return hashlib.sha256(b).hexdigest()


# ---------------------------------------------------------------- certificates

class Certs:
    """Self-signed RSA-2048 and ECDSA P-256 certificates for localhost,
    127.0.0.1 and ::1, plus an unrelated RSA key for negative tests."""

    def __init__(self, d):
        self.dir = str(d)
        p = lambda n: os.path.join(self.dir, n)  # noqa: E731
        self.rsa_cert, self.rsa_key = p("rsa-cert.pem"), p("rsa-key.pem")
        self.ec_cert, self.ec_key = p("ec-cert.pem"), p("ec-key.pem")
        self.other_key = p("other-rsa-key.pem")
        san = "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1"
        common = ["-x509", "-nodes", "-days", "30", "-subj", "/CN=localhost", "-addext", san]
        self._openssl(["req", "-newkey", "rsa:2048", *common,
                       "-keyout", self.rsa_key, "-out", self.rsa_cert])
        self._openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                       *common, "-keyout", self.ec_key, "-out", self.ec_cert])
        self._openssl(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                       "-out", self.other_key])

    @staticmethod
    def _openssl(args):
        r = subprocess.run(["openssl", *args], capture_output=True, timeout=60)
        assert r.returncode == 0, "openssl %s failed: %s" % (args[0], r.stderr.decode(errors="replace"))

    def pair(self, kind):
        return {"rsa": (self.rsa_cert, self.rsa_key), "ec": (self.ec_cert, self.ec_key)}[kind]

    def der(self, kind):
        with open(self.pair(kind)[0]) as f:
            return ssl.PEM_cert_to_DER_cert(f.read())


# ---------------------------------------------------------------- YAML writer

def _flow(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)          # a double-quoted YAML scalar
    if isinstance(v, list):
        return "[" + ", ".join(_flow(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join("%s: %s" % (k, _flow(x)) for k, x in v.items()) + "}"
    raise TypeError(type(v))


def to_yaml(obj, indent=0):
    """Block-style YAML for dicts / lists of dicts; scalars in flow style."""
    pad = "  " * indent
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            nested = (isinstance(v, dict) and v and any(isinstance(x, (dict, list)) for x in v.values())) or \
                     (isinstance(v, list) and any(isinstance(x, dict) for x in v))
            if nested:
                out.append("%s%s:" % (pad, k))
                out.append(to_yaml(v, indent + 1))
            else:
                out.append("%s%s: %s" % (pad, k, _flow(v)))
    elif isinstance(obj, list):
        for item in obj:
            if isinstance(item, dict):
                block = to_yaml(item, indent + 1).split("\n")
                block[0] = pad + "- " + block[0][len(pad) + 2:]
                out.extend(block)
            else:
                out.append("%s- %s" % (pad, _flow(item)))
    else:
        raise TypeError(type(obj))
    return "\n".join(out)


def listener(name, port, backend, cert=("rsa",), host="127.0.0.1", certs=None):
    """A listener entry; cert is a tuple of kinds, resolved at start()."""
    addr = "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)
    return {"name": name, "listen": [addr], "certificates": list(cert), "backend": backend}


def config(listeners, backends, workers=2, log_level="debug", timeouts=None,
           limits=None, tls=None):
    """A config dict.  listeners: listener() entries; backends: name -> port
    (or list of "host:port")."""
    cfg = {"workers": workers, "log": {"level": log_level}}
    if timeouts:
        cfg["timeouts"] = timeouts
    if limits:
        cfg["limits"] = limits
    if tls:
        cfg["tls"] = tls
    cfg["listeners"] = listeners
    cfg["backends"] = {
        name: {"servers": v if isinstance(v, list) else ["127.0.0.1:%d" % v]}
        for name, v in backends.items()}
    return cfg


def one_listener(backend_port, cert="rsa", name="https", opts=None, **kw):
    """The common case: listener `name` on a fresh 127.0.0.1 port in front
    of backend "app" on backend_port.  cert: a kind ("rsa", "ec") or a list
    of `certificates:` entries (pki.Leaf.entry()); opts: more keys of the
    listener entry (sni_strict, alpn, ...); **kw: config()'s."""
    l = listener(name, free_port(), "app", cert=(cert,) if isinstance(cert, str) else cert)
    l.update(opts or {})
    return config([l], {"app": backend_port}, **kw)


# ---------------------------------------------------------------- log parsing

_KV = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)')
_CLOSE = re.compile(r'^\S+ info (conn=\d+ .* reason=".*")$')
_ACCEPTED = re.compile(r'^\S+ debug conn=\d+ client=\S+ listener=\S+ accepted$')


def parse_kv(text):
    d = {}
    for k, v in _KV.findall(text):
        if v.startswith('"') and v.endswith('"') and len(v) >= 2:
            v = v[1:-1]
        d[k] = v
    for k in ("in", "out", "hs_ms", "ms", "open"):
        if k in d:
            try:
                d[k] = int(d[k])
            except ValueError:
                pass
    return d


def client_port(d):
    return int(d["client"].rsplit(":", 1)[1])


def resumed_flags(d, n):
    """The resumed= fields of the first n close lines of listener "https"."""
    lines = d.wait_close(listener="https", count=n)
    lines = [lines] if n == 1 else lines
    return [l["resumed"] for l in lines]


def assert_client_cert(line, leaf, verify):
    """The client-certificate fields of a close line name pki.Leaf `leaf`
    (subject, issuer, serial, SHA-256) and its verify result is `verify`."""
    assert line["client_cert"] == leaf.subject, line["line"]
    assert line["issuer"] == leaf.ca.subject, line["line"]
    assert line["serial"].replace(":", "").upper().lstrip("0") == leaf.serial.lstrip("0"), \
        (line["line"], leaf.serial)
    assert line["sha256"].replace(":", "").lower() == leaf.sha256, line["line"]
    assert line["verify"] == verify, line["line"]


SANITIZER_MARKERS = ("AddressSanitizer", "LeakSanitizer", "runtime error:",
                     "ThreadSanitizer", "UndefinedBehaviorSanitizer")


# ---------------------------------------------------------------- the daemon

try:
    import ctypes
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (ImportError, OSError, AttributeError):
    _prctl = None


def die_with_parent():
    """preexec_fn: SIGKILL the child when the test process dies, so an
    interrupted run never leaves a daemon behind.  (Nothing is imported
    here: the child of a threaded parent must not take the import lock.)"""
    if _prctl is not None:
        _prctl(1, 9, 0, 0, 0)       # PR_SET_PDEATHSIG, SIGKILL


class Tlsterm:
    """One tlsterm process on a config written to its own directory.

    start() returns once the "ready" line is logged and a TCP connect to
    every listen address succeeded (those probe connections are left out
    of close_lines()).  stop() checks that every accepted connection was
    logged closed, stops with SIGTERM, and checks the exit code, the open
    count at stop and the absence of sanitizer reports."""

    def __init__(self, workdir, cfg, certs=None, wrapper=None, name="tlsterm"):
        self.dir = str(workdir)
        os.makedirs(self.dir, exist_ok=True)
        self.name = name
        self.certs = certs
        self.wrapper = list(wrapper or [])
        self.proc = None
        self.cfg = cfg
        self.conf_path = os.path.join(self.dir, name + ".yaml")
        self.log_path = os.path.join(self.dir, name + ".log")
        self.out_path = os.path.join(self.dir, name + ".stdout")
        self.probe_ports = set()
        self.addrs = {}             # listener name -> [(host, port), ...]
        # None: do not check the count in "stopping; N connection(s) open"
        self.expect_open_at_stop = 0
        self.rotated = []
        self.log_file = cfg.get("log", {}).get("file") if isinstance(cfg, dict) else None
        self.stopped = False
        self.returncode = None
        self._write_config()

    # -- config
    def _write_config(self):
        if isinstance(self.cfg, str):
            text = self.cfg
        else:
            cfg = json.loads(json.dumps(self.cfg))      # deep copy
            for l in cfg.get("listeners", []):
                if "certificates" not in l:             # a redirect listener
                    addrs = l["listen"] if isinstance(l["listen"], list) else [l["listen"]]
                    self.addrs[l["name"]] = [self._split(a) for a in addrs]
                    continue
                certs = []
                for c in l.get("certificates", []):
                    if isinstance(c, str):
                        cert, key = self.certs.pair(c)
                        c = {"cert": cert, "key": key}
                    certs.append(c)
                l["certificates"] = certs
                addrs = l["listen"] if isinstance(l["listen"], list) else [l["listen"]]
                self.addrs[l["name"]] = [self._split(a) for a in addrs]
            text = to_yaml(cfg) + "\n"
        with open(self.conf_path, "w") as f:
            f.write(text)

    @staticmethod
    def _split(a):
        host, port = a.rsplit(":", 1)
        return host.strip("[]"), int(port)

    def addr(self, listener=None):
        if listener is None:
            listener = next(iter(self.addrs))
        return self.addrs[listener][0]

    def port(self, listener=None):
        return self.addr(listener)[1]

    # -- process
    @property
    def pid(self):
        return self.proc.pid

    def start(self, ready_timeout=None):
        assert BIN, "TLSTERM_BIN is not set (path of the tlsterm binary to test)"
        ready_timeout = ready_timeout or T(15)
        self._log_f = open(self.log_path, "wb")
        self._out_f = open(self.out_path, "wb")
        self.proc = subprocess.Popen(self.wrapper + [BIN, "-c", self.conf_path],
                                     stdin=subprocess.DEVNULL, stdout=self._out_f,
                                     stderr=self._log_f, cwd=self.dir,
                                     preexec_fn=die_with_parent)
        try:
            wait_until(lambda: self.proc.poll() is not None or " ready: " in self.log(),
                       ready_timeout, "the ready line of %s" % self.name)
            if self.proc.poll() is not None:
                raise AssertionError("tlsterm exited with %s before it was ready:\n%s"
                                     % (self.proc.returncode, self.log()))
            for addrs in self.addrs.values():
                for host, port in addrs:
                    self._probe(host, port, ready_timeout)
            access = not isinstance(self.cfg, dict) or self.cfg.get("log", {}).get("access", True)
            if self.log_level() in ("info", "debug") and access:
                wait_until(lambda: all(p in self._closed_ports() for p in self.probe_ports),
                           ready_timeout, "the probe connections to be logged closed")
        except BaseException:
            self.kill()
            raise
        return self

    def _probe(self, host, port, timeout):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        deadline = time.monotonic() + timeout
        while True:
            s = socket.socket(fam, socket.SOCK_STREAM)
            try:
                s.settimeout(timeout)
                s.connect((host, port))
                self.probe_ports.add(s.getsockname()[1])
                return
            except OSError:
                if time.monotonic() >= deadline:
                    raise AssertionError("cannot connect to %s:%d:\n%s" % (host, port, self.log()))
                time.sleep(0.02)
            finally:
                s.close()

    def log_level(self):
        if isinstance(self.cfg, dict):
            return self.cfg.get("log", {}).get("level", "info")
        return "info"

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=T(10))
            except subprocess.TimeoutExpired:
                pass
        self._close_files()

    def _close_files(self):
        for f in (getattr(self, "_log_f", None), getattr(self, "_out_f", None)):
            if f is not None and not f.closed:
                f.close()

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def rewrite(self, cfg):
        """Writes a new config (dict or text) for the next reload."""
        self.cfg = cfg
        self.addrs = {}
        self._write_config()

    def reload(self, expect_ok=True, timeout=None):
        """SIGHUP, then waits for the outcome line; returns the log text it
        added.  Reloads are numbered by their "SIGHUP: reloading" line."""
        n = self.log().count("SIGHUP: reloading")
        self.proc.send_signal(signal.SIGHUP)
        outcome = re.compile(r" info reloaded | error reload: .*still serving")

        def done():
            parts = self.log().split("SIGHUP: reloading")
            return len(parts) > n + 1 and outcome.search(parts[n + 1])
        wait_until(done, timeout or T(20), "the outcome of reload %d" % (n + 1))
        text = self.log().split("SIGHUP: reloading")[n + 1]
        ok = " info reloaded " in text
        assert ok == expect_ok, "reload %s, expected %s:\n%s" % (
            "succeeded" if ok else "failed", "success" if expect_ok else "failure", text)
        return text

    def rss_kb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS for pid %d" % self.proc.pid)

    # -- log
    def log(self):
        """The daemon's log so far: stderr, or with log.target file that
        file, after any rotated copies listed in self.rotated."""
        out = []
        for p in self.rotated + [self.log_file or self.log_path]:
            if not os.path.exists(p):
                continue
            with open(p, "rb") as f:
                out.append(f.read().decode("utf-8", errors="replace"))
        return "".join(out)

    def log_lines(self):
        return self.log().splitlines()

    def wait_log(self, regex, timeout=None, what=None):
        rx = re.compile(regex, re.M)
        m = wait_until(lambda: rx.search(self.log()), timeout or T(10),
                       what or "log line /%s/" % regex)
        return m

    def _closed_ports(self):
        ports = set()
        for line in self.log_lines():
            m = _CLOSE.match(line)
            if m:
                ports.add(client_port(parse_kv(m.group(1))))
        return ports

    def close_lines(self, include_probes=False, listener=None):
        """The per-connection close lines, parsed into dicts."""
        out = []
        for line in self.log_lines():
            m = _CLOSE.match(line)
            if not m:
                continue
            d = parse_kv(m.group(1))
            d["line"] = line
            if not include_probes and client_port(d) in self.probe_ports:
                continue
            if listener is not None and d.get("listener") != listener:
                continue
            out.append(d)
        return out

    def wait_close(self, port=None, listener=None, count=1, timeout=None):
        """Waits until `count` close lines (for the client `port` or the
        `listener`) are logged; returns the first one (or all when count > 1)."""
        def pick():
            ls = [d for d in self.close_lines(listener=listener)
                  if port is None or client_port(d) == port]
            return ls if len(ls) >= count else None
        ls = wait_until(pick, timeout or T(10),
                        "close line(s) for port=%s listener=%s in:\n%s" % (port, listener, self.log_tail()))
        return ls[0] if count == 1 else ls

    def log_tail(self, n=40):
        return "\n".join(self.log_lines()[-n:])

    def counts(self):
        text = self.log_lines()
        acc = sum(1 for line in text if _ACCEPTED.match(line))
        closed = sum(1 for line in text if _CLOSE.match(line))
        return acc, closed

    # -- stop and the end-of-test checks
    def stop(self, timeout=None, sig=signal.SIGTERM, send=True):
        """Stops the daemon with `sig` (send=False: it was sent already)
        and returns a list of problems (empty: fine).  Unless
        expect_open_at_stop says connections are deliberately left open,
        first waits until every accepted connection was logged closed."""
        if self.stopped:
            return []
        self.stopped = True
        problems = []
        timeout = timeout or T(15)
        if self.proc is None:
            return problems
        debug = self.log_level() == "debug"
        try:
            if self.proc.poll() is None and debug and self.expect_open_at_stop == 0:
                try:
                    wait_until(lambda: self.counts()[0] == self.counts()[1], T(10),
                               "every accepted connection to be logged closed")
                except AssertionError as e:
                    problems.append("%s (accepted, closed) = %s" % (e, self.counts()))
            if self.proc.poll() is not None and send:
                problems.append("tlsterm exited by itself with status %s" % self.proc.returncode)
            else:
                if send:
                    self.proc.send_signal(sig)
                try:
                    self.proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    problems.append("tlsterm did not exit within %.0fs of %s" % (timeout, sig.name))
                    self.proc.kill()
                    self.proc.wait(timeout=T(10))
                if self.proc.returncode != 0:
                    problems.append("exit status %s after %s, expected 0" % (self.proc.returncode, sig.name))
        finally:
            self.kill()
        self.returncode = self.proc.returncode
        log = self.log()
        if self.expect_open_at_stop is not None and self.returncode is not None:
            want = "stopping; %d connection(s) open" % self.expect_open_at_stop
            if want not in log:
                problems.append("no %r in the log" % want)
        if debug and self.counts()[0] != self.counts()[1]:
            problems.append("(accepted, closed) lines = %s after exit" % (self.counts(),))
        if self.returncode == 0 and not re.search(r" info stopped: ", log):
            problems.append("no 'stopped:' line in the log")
        for marker in SANITIZER_MARKERS:
            if marker in log:
                problems.append("sanitizer report (%r) in the log" % marker)
                break
        return problems


# ---------------------------------------------------------------- backends

class Backend:
    """An asyncio TCP server on 127.0.0.1 in its own thread.  Subclasses
    implement `async handle(reader, writer, conn)` where conn is a dict of
    per-connection results kept in self.conns."""

    conn_deadline = 120.0       # seconds per connection, scaled

    def __init__(self, host="127.0.0.1", port=0):
        self.host, self.port = host, port
        self.conns = []
        self.errors = []
        self._ready = threading.Event()
        self._thread = None
        self._loop = None
        self._stop = None
        self._tasks = set()
        self._lock = threading.Lock()

    def start(self):
        self._thread = threading.Thread(target=self._run, name=type(self).__name__, daemon=True)
        self._thread.start()
        if not self._ready.wait(T(10)):
            raise AssertionError("backend %s did not start" % type(self).__name__)
        if self.port == 0 or getattr(self, "_start_error", None):
            raise AssertionError("backend %s: %s" % (type(self).__name__, self._start_error))
        return self

    def _run(self):
        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(self._serve())
        finally:
            self._loop.close()

    async def _serve(self):
        self._stop = asyncio.Event()
        try:
            server = await asyncio.start_server(self._client, self.host, self.port,
                                                backlog=4096, limit=1 << 20)
        except OSError as e:
            self._start_error = e
            self._ready.set()
            return
        self.port = server.sockets[0].getsockname()[1]
        self._start_error = None
        self._ready.set()
        await self._stop.wait()
        server.close()
        for t in list(self._tasks):
            t.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)

    async def _client(self, reader, writer):
        conn = {"received": 0, "sent": 0, "eof": False, "error": None, "done": False}
        with self._lock:
            self.conns.append(conn)
        task = asyncio.current_task()
        self._tasks.add(task)
        try:
            await asyncio.wait_for(self.handle(reader, writer, conn), T(self.conn_deadline))
            conn["done"] = True
        except asyncio.CancelledError:
            conn["error"] = "cancelled"
        except Exception as e:      # recorded; tests look at conn["error"]
            conn["error"] = repr(e)
        finally:
            self._tasks.discard(task)
            try:
                writer.close()
            except Exception:       # the loop may be closing
                pass

    def stop(self):
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._stop.set)
            except RuntimeError:
                pass
        if self._thread is not None:
            self._thread.join(T(10))

    def wait_conns(self, n, timeout=None, done=True, what=None):
        """Waits until n connections were accepted (and, by default, ended)."""
        def count():
            return sum(1 for c in list(self.conns) if not done or c["done"] or c["error"])
        return wait_until(lambda: count() >= n, timeout or T(10),
                          what or "%d backend connection(s)%s" % (n, " to end" if done else ""))


class HttpBackend(Backend):
    """Answers every HTTP/1.x request with 200 and a fixed body; keeps the
    connection open for HTTP/1.1 unless "Connection: close" (and for 1.0 only
    with "Connection: keep-alive")."""

    def __init__(self, body=BODY, **kw):
        super().__init__(**kw)
        self.body = body
        self.requests = 0

    async def handle(self, reader, writer, conn):
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as e:
                conn["eof"] = True
                if e.partial:
                    raise
                return
            conn["received"] += len(head)
            lines = head.decode("latin-1").split("\r\n")
            method, target, version = lines[0].split(" ", 2)
            hdrs = {}
            for h in lines[1:]:
                if ":" in h:
                    k, v = h.split(":", 1)
                    hdrs[k.strip().lower()] = v.strip().lower()
            n = int(hdrs.get("content-length", "0"))
            if n:
                conn["received"] += len(await reader.readexactly(n))
            if version == "HTTP/1.1":
                keep = hdrs.get("connection") != "close"
            else:
                keep = hdrs.get("connection") == "keep-alive"
            body = self.body if method != "HEAD" else b""
            resp = ("%s 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                    "Connection: %s\r\n\r\n" % (version, len(self.body),
                                                "keep-alive" if keep else "close")).encode() + body
            self.requests += 1
            writer.write(resp)
            await writer.drain()
            conn["sent"] += len(resp)
            if not keep:
                return


class EchoBackend(Backend):
    """Echoes every byte; after EOF from its peer it finishes sending,
    then shuts down its write side.  Records a sha256 of what it got."""

    async def handle(self, reader, writer, conn):
        h = hashlib.sha256()
        while True:
            data = await reader.read(256 * 1024)
            if not data:
                break
            h.update(data)
            conn["received"] += len(data)
            writer.write(data)
            await writer.drain()
            conn["sent"] += len(data)
        conn["eof"] = True
        conn["sha256"] = h.hexdigest()
        if writer.can_write_eof():
            writer.write_eof()
        await writer.drain()


class ReadAllThenReply(Backend):
    """Reads until EOF, then sends `size` bytes of payload(size, seed) and
    closes."""

    def __init__(self, size, seed=7, **kw):
        super().__init__(**kw)
        self.size = size
        self.data = payload(size, seed)

    async def handle(self, reader, writer, conn):
        got = bytearray()
        while True:
            data = await reader.read(65536)
            if not data:
                break
            got += data
        conn["eof"] = True
        conn["request"] = bytes(got)
        conn["received"] = len(got)
        conn["sha256"] = sha256(got)
        view = memoryview(self.data)
        for off in range(0, len(view), 65536):
            writer.write(view[off:off + 65536])
            await writer.drain()
            conn["sent"] += len(view[off:off + 65536])


class Firehose(Backend):
    """Sends `total` bytes as fast as the peer takes them (`data` when
    given, else b"x" * total), then closes; stops at the first write
    error.  conn["sent"] counts bytes the transport accepted (within a
    chunk plus asyncio's 64 KiB buffer)."""

    def __init__(self, total, chunk=256 * 1024, data=None, **kw):
        super().__init__(**kw)
        self.total = total
        self.chunk = chunk
        self.data = data
        self.filler = b"x" * chunk

    async def handle(self, reader, writer, conn):
        while conn["sent"] < self.total:
            n = min(self.chunk, self.total - conn["sent"])
            if self.data is not None:
                writer.write(memoryview(self.data)[conn["sent"]:conn["sent"] + n])
            else:
                writer.write(self.filler[:n])
            conn["sent"] += n
            await writer.drain()


class HeadRecorder(Backend):
    """Records the head of every HTTP request it gets in self.heads (in
    arrival order, with a partial head cut short by EOF) and answers each
    with answer(head) -> (response bytes, keep the connection open); by
    default a keep-alive 200 with body "ok"."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.heads = []

    def answer(self, head):
        return b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", True

    async def handle(self, reader, writer, conn):
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as e:
                if e.partial:
                    self.heads.append(e.partial)
                return
            self.heads.append(head)
            resp, keep = self.answer(head)
            writer.write(resp)
            await writer.drain()
            if not keep:
                return


def head_headers(head):
    """[(lower-case name, value)] of an HTTP head, in order."""
    out = []
    for line in head.decode("latin-1").split("\r\n")[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            out.append((k.strip().lower(), v.strip()))
    return out


def header_values(head, name):
    """The values of header `name` (lower case) in an HTTP head, in order."""
    return [v for k, v in head_headers(head) if k == name]


class ProxyV2Capture(Backend):
    """Reads the PROXY v2 header (conn["header"]) and the request head
    behind it (conn["request"]), answers 200 and closes."""

    async def handle(self, reader, writer, conn):
        head = await reader.readexactly(16)
        body = await reader.readexactly(struct.unpack(">H", head[14:16])[0])
        conn["header"] = head + body
        conn["request"] = await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()


def proxy_tlvs(blob):
    """{type: value} of a run of PROXY v2 TLVs."""
    out = {}
    while blob:
        t, n = blob[0], struct.unpack(">H", blob[1:3])[0]
        out[t] = blob[3:3 + n]
        blob = blob[3 + n:]
    return out


# ---------------------------------------------------------------- clients

def client_context(cafile, **kw):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile)
    for k, v in kw.items():
        setattr(ctx, k, v)
    return ctx


def tls_connect(addr, cafile, server_hostname="localhost", timeout=None, ctx=None):
    """A blocking, verified TLS connection (handshake done)."""
    host, port = addr
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    ctx = ctx or client_context(cafile)
    raw = socket.socket(fam, socket.SOCK_STREAM)
    raw.settimeout(timeout or T(10))
    try:
        raw.connect((host, port))
        return ctx.wrap_socket(raw, server_hostname=server_hostname)
    except BaseException:
        raw.close()
        raise


def recv_all(sock, limit=64 << 20):
    out = bytearray()
    while len(out) < limit:
        try:
            b = sock.recv(65536)
        except ssl.SSLEOFError:
            break
        if not b:
            break
        out += b
    return bytes(out)


def parse_response(raw):
    head, sep, body = raw.partition(b"\r\n\r\n")
    assert sep, "no end of HTTP head in %r" % raw[:200]
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    hdrs = {}
    for h in lines[1:]:
        k, v = h.split(":", 1)
        hdrs[k.strip().lower()] = v.strip()
    return status, hdrs, body


def https_get(addr, cafile, server_hostname="localhost", path="/", timeout=None):
    """GET over HTTP/1.0 (the server closes).  Returns (status, body, local_port)."""
    s = tls_connect(addr, cafile, server_hostname, timeout)
    try:
        port = s.getsockname()[1]
        s.sendall(("GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n" % path).encode())
        raw = recv_all(s)
    finally:
        s.close()
    status, _, body = parse_response(raw)
    return status, body, port


def http11_exchange(sock, path="/"):
    """One keep-alive HTTP/1.1 request on an open TLS socket; returns the body."""
    sock.sendall(("GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % path).encode())
    buf = bytearray()
    while b"\r\n\r\n" not in buf:
        b = sock.recv(65536)
        assert b, "connection closed before the response head: %r" % bytes(buf)
        buf += b
    status, hdrs, body = parse_response(bytes(buf))
    assert status == 200
    n = int(hdrs["content-length"])
    body = bytearray(body)
    while len(body) < n:
        b = sock.recv(65536)
        assert b, "connection closed inside the response body"
        body += b
    return bytes(body)


class MemTLS:
    """A TLS client on ssl.SSLObject + MemoryBIO over a blocking raw socket,
    so the test controls exactly what goes on the wire (bare FIN,
    close_notify then FIN, partial records ...)."""

    def __init__(self, addr, cafile, server_hostname="localhost", timeout=None):
        host, port = addr
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.settimeout(timeout or T(10))
        self.sock.connect((host, port))
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = client_context(cafile).wrap_bio(self.inc, self.out, server_hostname=server_hostname)
        self.got_close_notify = False

    @property
    def local_port(self):
        return self.sock.getsockname()[1]

    def flush(self):
        data = self.out.read()
        if data:
            self.sock.sendall(data)

    def _feed(self):
        b = self.sock.recv(65536)
        if b:
            self.inc.write(b)
        else:
            self.inc.write_eof()
        return b

    def handshake(self):
        while True:
            try:
                self.obj.do_handshake()
                self.flush()
                return
            except ssl.SSLWantReadError:
                self.flush()
                if not self._feed():
                    raise AssertionError("EOF during the handshake")

    def write(self, data):
        self.obj.write(data)
        self.flush()

    def send_close_notify(self):
        """Queues and sends our close_notify (SSL_shutdown) without waiting
        for the peer's."""
        try:
            self.obj.unwrap()
        except ssl.SSLWantReadError:
            pass
        self.flush()

    def shutdown_write(self):
        self.sock.shutdown(socket.SHUT_WR)

    def get(self):
        """One keep-alive GET / on the established connection; returns the
        bytes up to the end of HttpBackend's body."""
        self.write(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        return self.read_until(BODY)

    def read_until(self, suffix, limit=1 << 20):
        """Reads application data until it ends with `suffix`."""
        out = bytearray()
        while not out.endswith(suffix):
            assert len(out) < limit, "no %r in %d bytes" % (suffix, len(out))
            try:
                b = self.obj.read(65536)
                assert b, "close_notify before %r" % suffix
                out += b
            except ssl.SSLWantReadError:
                assert self._feed(), "EOF before %r" % suffix
        return bytes(out)

    def read_all(self, limit=1 << 30):
        """Reads application data until close_notify or EOF."""
        out = bytearray()
        while len(out) < limit:
            try:
                b = self.obj.read(65536)
                if not b:       # CPython: close_notify seen, ours not sent
                    self.got_close_notify = True
                    break
                out += b
                continue
            except ssl.SSLZeroReturnError:
                self.got_close_notify = True
                break
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLEOFError:
                break
            self._feed()
        return bytes(out)

    def close(self):
        self.sock.close()


def client_hello(server_hostname="localhost"):
    """The bytes of a real ClientHello, as Python's OpenSSL sends it."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=server_hostname)
    try:
        obj.do_handshake()
        raise AssertionError("a handshake cannot complete without a server")
    except ssl.SSLWantReadError:
        pass
    hello = out.read()
    assert hello[0] == 0x16 and len(hello) > 100, hello[:16]
    return hello


def ticket_key_line():
    """A fresh line for a `tls.tickets.key_file` (48 random bytes, base64)."""
    r = subprocess.run(["openssl", "rand", "-base64", "48"], capture_output=True, check=True,
                       timeout=30)
    line = r.stdout.decode().strip()
    assert len(line) == 64, line
    return line


def ticket_key_file(path, *lines):
    """Writes a ticket key file (a comment, then `lines`, newest first);
    returns its path as a string."""
    with open(path, "w") as f:
        f.write("# tlsterm ticket keys, newest first\n")
        for l in lines:
            f.write(l + "\n")
    return str(path)


def ticket_key_instances(tlsterm, tmp_path, config):
    """Daemons a, b (key file [k1]), c ([k2]) and n ([k2, k1]: k2 new, k1
    still accepted), started in that order by the `tlsterm` fixture;
    config(key file path) is the config of each."""
    k1, k2 = ticket_key_line(), ticket_key_line()
    f1 = ticket_key_file(tmp_path / "k1.keys", k1)
    f2 = ticket_key_file(tmp_path / "k2.keys", k2)
    f21 = ticket_key_file(tmp_path / "k21.keys", k2, k1)
    return [tlsterm(config(f), name=name) for name, f in (("a", f1), ("b", f1), ("c", f2),
                                                           ("n", f21))]


def run(cmd, input=None, timeout=None, **kw):
    """subprocess.run with a deadline (the child is killed when it passes)."""
    return subprocess.run(cmd, input=input, capture_output=True, timeout=timeout or T(30), **kw)


def end_process(p, timeout=None):
    """Closes the stdin of an interactive client (s_client) and waits for
    it to exit, killing it at the deadline."""
    try:
        p.stdin.close()
    except BrokenPipeError:
        pass
    try:
        p.wait(timeout=timeout or T(10))
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(timeout=timeout or T(10))


def check_config(path, cfg, timeout=None):
    """Writes cfg (a config dict) to path and runs `tlsterm -t -c path`.
    Returns (returncode, stdout, stderr) with the output as text."""
    with open(path, "w") as f:
        f.write(to_yaml(cfg) + "\n")
    r = run([BIN, "-t", "-c", path], timeout=timeout or T(20))
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def proc_status(pid):
    """/proc/PID/status as {field: [words]}."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, v = line.split(":", 1)
            out[k] = v.split()
    return out


def both_certs_ctx(certs):
    """A TLS 1.2 client context that trusts both the RSA and the EC test
    certificate, so a test can see which one it is served."""
    ctx = client_context(certs.rsa_cert)
    ctx.load_verify_locations(certs.ec_cert)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def served_der(d, ctx):
    """The DER certificate daemon d serves to ctx, after one good exchange."""
    s = tls_connect(d.addr(), None, ctx=ctx)
    try:
        assert http11_exchange(s) == BODY
        return s.getpeercert(binary_form=True)
    finally:
        s.close()


def proc_cpu_seconds(pid):
    """utime + stime of a process and all its threads, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def hello_then_closed(sock, timeout):
    """Sends a ClientHello on a plain TCP socket (the peer may have closed
    it already) and returns how the peer ended it, as closed_by_peer()."""
    try:
        sock.sendall(client_hello())
    except (BrokenPipeError, ConnectionResetError):
        pass
    return closed_by_peer(sock, timeout)


def closed_by_peer(sock, timeout):
    """Waits until the peer closes a plain TCP socket: returns 'eof',
    'reset', or 'data:<bytes>' when the peer sent something first;
    raises AssertionError on timeout."""
    sock.settimeout(timeout)
    got = bytearray()
    try:
        while True:
            b = sock.recv(65536)
            if not b:
                return "eof" if not got else "data:" + bytes(got[:64]).hex()
            got += b
    except (ConnectionResetError, BrokenPipeError):
        return "reset" if not got else "data:" + bytes(got[:64]).hex()
    except socket.timeout:
        raise AssertionError("the peer did not close within %.1fs (got %d bytes)" % (timeout, len(got)))
