# SPDX-License-Identifier: BSD-2-Clause
"""systemd integration, without a running systemd: the unit files pass
`systemd-analyze verify` and keep their `systemd-analyze security` exposure
level; the daemon speaks the sd_notify datagram protocol (READY, RELOADING,
STOPPING, WATCHDOG) to path and abstract sockets, from its main pid; and
with socket activation (LISTEN_FDS) it serves on the sockets it was passed
instead of binding its own.  Every case holds for the libsystemd build and
for the --without-systemd one, which speaks the protocols itself."""

import os
import re
import shutil
import signal
import socket
import struct
import sys
import tempfile
import threading
import time

import pytest

import tlsterm_harness as h

SRCDIR = os.environ.get("TLSTERM_SRCDIR") or \
    os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SERVICE_IN = os.path.join(SRCDIR, "systemd", "tlsterm.service.in")
SOCKET_UNIT = os.path.join(SRCDIR, "systemd", "tlsterm.socket")

# `systemd-analyze security --offline=true` rates tlsterm.service 2.3 with
# systemd 252 (root start, then the daemon's own privilege drop: the
# remaining points are User=, CAP_SETUID/CAP_SETGID, @privileged for
# setuid/capset, network access and IPAddressDeny=; the privileged
# reader's CAP_DAC_READ_SEARCH and CAP_SETPCAP took it from 2.1).  A change
# that loosens the sandbox shows up here.
MAX_EXPOSURE = 2.3 + 0.2

# The daemon's defaults the unit is sized for (tlsterm.yaml(5)).
DEFAULT_DRAIN_S = 30
DEFAULT_MAX_CONNECTIONS = 100000

ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze (systemd) is not installed")


# ---------------------------------------------------------------- unit files

def render_service(sbindir, sysconfdir):
    """The template with the substitutions Makefile.am's rule makes."""
    with open(SERVICE_IN) as f:
        text = f.read()
    return text.replace("@sbindir@", sbindir).replace("@sysconfdir@", sysconfdir)


def install_units(d):
    """tlsterm.service (ExecStart= naming the binary under test, through a
    symlink called tlsterm) and tlsterm.socket in directory d."""
    sbindir = os.path.join(str(d), "sbin")
    os.makedirs(sbindir, exist_ok=True)
    os.symlink(os.path.abspath(h.BIN), os.path.join(sbindir, "tlsterm"))
    service = os.path.join(str(d), "tlsterm.service")
    with open(service, "w") as f:
        f.write(render_service(sbindir, os.path.join(str(d), "etc")))
    sock = os.path.join(str(d), "tlsterm.socket")
    shutil.copyfile(SOCKET_UNIT, sock)
    return service, sock


def unit_settings(text):
    """{(section, key): [values]} of a unit file."""
    out, section = {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        k, _, v = line.partition("=")
        out.setdefault((section, k.strip()), []).append(v.strip())
    return out


def seconds(v):
    m = re.fullmatch(r"(\d+)(s|min)?", v)
    assert m, "cannot read the time span %r" % v
    return int(m.group(1)) * (60 if m.group(2) == "min" else 1)


@needs_analyze
def test_units_pass_systemd_analyze_verify(tmp_path):
    service, sock = install_units(tmp_path)
    # --man=no: the man pages of Documentation= are not installed here
    r = h.run([ANALYZE, "verify", "--man=no", service, sock], timeout=h.T(60))
    err = r.stderr.decode(errors="replace")
    print(err)
    assert r.returncode == 0, "systemd-analyze verify failed:\n" + err
    # unknown keys and unparsable values are only warnings to verify
    ours = [l for l in err.splitlines() if "tlsterm" in l]
    assert not ours, "systemd-analyze verify warns:\n" + "\n".join(ours)


@needs_analyze
def test_service_exposure_level(tmp_path):
    service, _ = install_units(tmp_path)
    r = h.run([ANALYZE, "security", "--offline=true", "--no-pager", service], timeout=h.T(60))
    out = r.stdout.decode(errors="replace")
    err = r.stderr.decode(errors="replace")
    m = re.search(r"Overall exposure level for tlsterm\.service: (\d+(?:\.\d+)?)", out)
    assert m, "no exposure level in the output (exit %d):\n%s\n%s" % (r.returncode, out, err)
    level = float(m.group(1))
    print("systemd-analyze security: tlsterm.service exposure %.1f (at most %.1f)\n%s"
          % (level, MAX_EXPOSURE, "\n".join(l for l in out.splitlines() if "\u2717" in l)))
    assert level <= MAX_EXPOSURE, out


def test_service_unit_settings():
    """What the daemon relies on, in the unit as make generates it."""
    s = unit_settings(render_service("/usr/sbin", "/etc"))
    one = lambda k: s[("Service", k)][-1]  # noqa: E731
    assert one("Type") == "notify"
    assert one("NotifyAccess") == "main"
    assert s[("Service", "ExecStartPre")] == ["/usr/sbin/tlsterm -t -c /etc/tlsterm/tlsterm.yaml"]
    assert s[("Service", "ExecStart")] == ["/usr/sbin/tlsterm -c /etc/tlsterm/tlsterm.yaml"]
    assert s[("Service", "ExecReload")][-1] == "/bin/kill -HUP $MAINPID"
    assert one("KillSignal") == "SIGTERM"
    # the default drain must end before systemd's SIGKILL
    assert seconds(one("TimeoutStopSec")) > DEFAULT_DRAIN_S
    assert seconds(one("WatchdogSec")) > 0
    assert int(one("LimitNOFILE")) >= 2 * DEFAULT_MAX_CONNECTIONS + 64
    caps = set(one("CapabilityBoundingSet").split())
    assert caps == {"CAP_NET_BIND_SERVICE", "CAP_SETUID", "CAP_SETGID", "CAP_DAC_READ_SEARCH",
                    "CAP_SETPCAP"}
    assert set(one("RestrictAddressFamilies").split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}
    assert not re.search(r"@\w+@", render_service("/usr/sbin", "/etc"))


def test_generated_service_matches_template():
    """make's systemd/tlsterm.service is the template with the configured
    sbindir and sysconfdir (checked when the binary under test sits in a
    build tree, as under `make check`)."""
    built = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(h.BIN))),
                         "systemd", "tlsterm.service")
    if not os.path.exists(built):
        pytest.skip("no generated %s next to TLSTERM_BIN" % built)
    with open(built) as f:
        text = f.read()
    assert not re.search(r"@\w+@", text), "placeholder left in %s" % built
    m = re.search(r"^ExecStart=(/\S*)/tlsterm -c (/\S*)/tlsterm/tlsterm\.yaml$", text, re.M)
    assert m, "no ExecStart=SBINDIR/tlsterm -c SYSCONFDIR/tlsterm/tlsterm.yaml in %s" % built
    assert text == render_service(m.group(1), m.group(2))


def test_socket_unit_addresses_are_explicit():
    """tlsterm matches passed sockets by their exact address.  A bare
    port would be a dual-stack [::] socket that also holds the IPv4 port,
    so a 0.0.0.0 listen address could not be bound beside it."""
    with open(SOCKET_UNIT) as f:
        s = unit_settings(f.read())
    listen = s[("Socket", "ListenStream")]
    assert listen
    for a in listen:
        assert re.fullmatch(r"(\d+\.\d+\.\d+\.\d+|\[[0-9a-fA-F:.]+\]):\d+", a), \
            "ListenStream=%s is not ADDRESS:PORT as tlsterm.yaml writes it" % a
    if any(a.startswith("[") for a in listen):
        assert s[("Socket", "BindIPv6Only")] == ["ipv6-only"]
    assert s[("Socket", "Service")] == ["tlsterm.service"]
    assert s.get(("Socket", "Accept"), ["no"]) == ["no"]


# ---------------------------------------------------------------- sd_notify

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)


class NotifySocket:
    """The receiving end of $NOTIFY_SOCKET, as systemd sets it up: a
    datagram socket with SO_PASSCRED.  A thread records every datagram
    with its sender's pid, the kernel's receive time (SO_TIMESTAMPNS; the
    time it was read where that is missing) and the daemon's log as it
    was when the datagram was read (the daemon logs before it notifies,
    so the snapshot must show the log line)."""

    def __init__(self, tmp_path, abstract=False, log_path=None):
        self.log_path = log_path
        if abstract:
            name = "tlsterm-test-%d-%s" % (os.getpid(), os.urandom(6).hex())
            self.env = "@" + name
            bind = "\0" + name
        else:
            d = str(tmp_path)
            if len(os.path.join(d, "notify").encode()) >= 100:  # sun_path is 108 bytes
                d = tempfile.mkdtemp(prefix="tlsterm-notify-")
            bind = self.env = os.path.join(d, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.bind(bind)
        self.sock.settimeout(0.05)
        self.msgs = []
        self.statuses = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="notify", daemon=True)
        self._thread.start()

    def _log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", errors="replace")
        except (OSError, TypeError):
            return ""

    def _run(self):
        anc = socket.CMSG_SPACE(struct.calcsize("iII")) + socket.CMSG_SPACE(16)
        while not self._stop.is_set():
            try:
                data, ancdata, _, _ = self.sock.recvmsg(4096, anc)
            except socket.timeout:
                continue
            except OSError:
                return
            m = {"state": data.decode(errors="replace"), "pid": None, "t": time.time(),
                 "log": self._log()}
            for level, kind, cdata in ancdata:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    m["pid"] = struct.unpack("iII", cdata[:12])[0]
                elif level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = struct.unpack("qq", cdata[:16])
                    m["t"] = sec + nsec / 1e9
            with self._lock:
                # STATUS= (the periodic open/accepted counts) is text for
                # `systemctl status`, not a state change: kept apart so
                # the state sequences below stay exact
                (self.statuses if m["state"].startswith("STATUS=") else self.msgs).append(m)

    def states(self):
        with self._lock:
            return [m["state"] for m in self.msgs]

    def wait(self, n, what=None, timeout=None):
        """Waits for n datagrams in all; returns all of them."""
        h.wait_until(lambda: len(self.states()) >= n, timeout or h.T(10),
                     what or "%d notify datagram(s), got %r" % (n, self.states()))
        with self._lock:
            return list(self.msgs)

    def count(self, state):
        return self.states().count(state)

    def close(self):
        self._stop.set()
        self._thread.join(h.T(10))
        self.sock.close()
        if not self.env.startswith("@"):
            try:
                os.unlink(self.env)
            except OSError:
                pass


@pytest.fixture
def notify_socket(tmp_path):
    made = []

    def make(abstract=False, name="tlsterm"):
        ns = NotifySocket(tmp_path, abstract, log_path=str(tmp_path / name / (name + ".log")))
        made.append(ns)
        return ns

    yield make
    for ns in made:
        ns.close()


def drain_cfg(backend_port):
    # a long drain: the daemon stays up after SIGTERM while a client is open
    return h.one_listener(backend_port, timeouts={"drain": "600s"})



def test_notify_ready_reload_stopping(certs, http_backend, tlsterm, notify_socket):
    ns = notify_socket()
    d = tlsterm(drain_cfg(http_backend.port), wrapper=["env", "NOTIFY_SOCKET=" + ns.env])
    ready = ns.wait(1)[0]
    assert ready["state"] == "READY=1"
    assert ready["pid"] == d.pid, "sent by pid %s, the daemon is %d" % (ready["pid"], d.pid)
    assert " ready: " in ready["log"], "READY=1 before the ready line:\n" + ready["log"]

    # SIGHUP: RELOADING=1, the reload, READY=1
    d.reload()
    reloading, ready = ns.wait(3)[1:3]
    assert (reloading["state"], ready["state"]) == ("RELOADING=1", "READY=1")
    assert "SIGHUP: reloading" in reloading["log"]
    assert " info reloaded " in ready["log"].split("SIGHUP: reloading")[-1]

    # a failed reload: still serving the old generation, so READY=1 again
    addr = d.addr()
    d.rewrite("listeners: [\n")
    d.reload(expect_ok=False)
    assert [m["state"] for m in ns.wait(5)[3:5]] == ["RELOADING=1", "READY=1"]

    # SIGTERM: STOPPING=1 as the drain starts, while a client keeps the
    # daemon up
    c = h.MemTLS(addr, certs.rsa_cert)
    try:
        c.handshake()
        assert c.get().startswith(b"HTTP/1.1 200 OK\r\n")
        d.send_signal(signal.SIGTERM)
        assert ns.wait(6)[5]["state"] == "STOPPING=1"
        assert d.proc.poll() is None, "tlsterm exited instead of draining"
        assert c.get().startswith(b"HTTP/1.1 200 OK\r\n")
    finally:
        c.close()
    d.expect_open_at_stop = 1
    problems = d.stop(send=False)
    assert not problems, problems
    assert ns.states() == ["READY=1", "RELOADING=1", "READY=1", "RELOADING=1", "READY=1",
                           "STOPPING=1"]
    assert {m["pid"] for m in ns.msgs} == {d.pid}


def test_notify_abstract_socket(http_backend, tlsterm, notify_socket):
    ns = notify_socket(abstract=True)
    d = tlsterm(h.one_listener(http_backend.port), wrapper=["env", "NOTIFY_SOCKET=" + ns.env])
    assert ns.wait(1)[0]["state"] == "READY=1"
    problems = d.stop()
    assert not problems, problems
    assert [m["state"] for m in ns.wait(2)] == ["READY=1", "STOPPING=1"]
    assert {m["pid"] for m in ns.msgs} == {d.pid}


# WATCHDOG_PID is the daemon's own pid, known only once it runs: the shell
# exports its $$ and execs tlsterm, which keeps that pid.
WATCHDOG_PID_IS_MINE = ["sh", "-c", 'WATCHDOG_PID=$$; export WATCHDOG_PID; exec "$0" "$@"']


def test_watchdog_keepalives(http_backend, tlsterm, notify_socket):
    ns = notify_socket()
    usec = 200000
    d = tlsterm(h.one_listener(http_backend.port),
                wrapper=["env", "NOTIFY_SOCKET=" + ns.env, "WATCHDOG_USEC=%d" % usec]
                + WATCHDOG_PID_IS_MINE)
    ns.wait(1)
    h.wait_until(lambda: ns.count("WATCHDOG=1") >= 5, h.T(10), "5 WATCHDOG=1 keep-alives")
    msgs = list(ns.msgs)
    assert msgs[0]["state"] == "READY=1"
    assert {m["pid"] for m in msgs} == {d.pid}
    # every WATCHDOG_USEC/2: never faster (timers may run late, not early)
    t = [m["t"] for m in msgs if m["state"] == "WATCHDOG=1"][:5]
    mean = (t[-1] - t[0]) / (len(t) - 1)
    print("WATCHDOG_USEC=%d: keep-alives every %.0f ms on average" % (usec, mean * 1000))
    assert mean >= usec / 2 / 1e6 * 0.5, "keep-alives every %.3fs" % mean


def test_watchdog_for_another_pid_is_ignored(http_backend, tlsterm, notify_socket):
    """WATCHDOG_PID names another process (a child inherited the
    environment): no keep-alives.  An absence, so it is watched for ten
    would-be intervals."""
    ns = notify_socket()
    d = tlsterm(h.one_listener(http_backend.port),
                wrapper=["env", "NOTIFY_SOCKET=" + ns.env, "WATCHDOG_USEC=100000", "WATCHDOG_PID=1"])
    ns.wait(1)
    with pytest.raises(AssertionError):
        h.wait_until(lambda: ns.count("WATCHDOG=1"), 0.5, "a WATCHDOG=1")
    problems = d.stop()
    assert not problems, problems
    assert [m["state"] for m in ns.wait(2)] == ["READY=1", "STOPPING=1"]


# ---------------------------------------------------------------- socket activation

# What systemd does for tlsterm.socket: bind and listen, then exec the
# service with the sockets as fds 3, 4, ... and LISTEN_FDS/LISTEN_PID set
# (LISTEN_PID is the launcher's pid, which exec keeps).  Each socket's
# address and inode go to stderr (the daemon's log).
#   python3 -c LAUNCHER [--pid=N] [--kind=udp|unbound] ADDR... -- COMMAND...
LAUNCHER = r"""
import os, socket, sys
args = sys.argv[1:]
cut = args.index("--")
opts = [a for a in args[:cut] if a.startswith("--")]
addrs = [a for a in args[:cut] if not a.startswith("--")]
cmd = args[cut + 1:]
pid = str(os.getpid())
kind = "tcp"
for o in opts:
    k, v = o[2:].split("=", 1)
    if k == "pid":
        pid = v
    elif k == "kind":
        kind = v
fds = []
for a in addrs:
    host, port = a.rsplit(":", 1)
    host = host.strip("[]")
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM)
    if fam == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    if kind != "unbound":
        s.bind((host, int(port)))
    if kind == "tcp":
        s.listen(64)
    sys.stderr.write("launcher: fd %d = %s socket:[%d]\n"
                     % (3 + len(fds), a, os.fstat(s.fileno()).st_ino))
    fds.append(s.detach())
high = [os.dup(fd) for fd in fds]
for fd in fds:
    os.close(fd)
for i, fd in enumerate(high):
    os.dup2(fd, 3 + i)
    os.close(fd)
os.environ["LISTEN_FDS"] = str(len(fds))
os.environ["LISTEN_PID"] = pid
os.environ["LISTEN_FDNAMES"] = ":".join(["tlsterm.socket"] * len(fds))
sys.stderr.flush()
os.execv(cmd[0], cmd)
"""


def launcher(*addrs, pid=None, kind=None):
    opts = (["--pid=%s" % pid] if pid else []) + (["--kind=%s" % kind] if kind else [])
    return [sys.executable, "-c", LAUNCHER] + opts + list(addrs) + ["--"]


def addr_text(host, port):
    return "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)


def launcher_inodes(log):
    """{address: inode} the launcher passed."""
    return {a: int(i) for a, i in re.findall(r"^launcher: fd \d+ = (\S+) socket:\[(\d+)\]$", log, re.M)}


def listening_inodes(port):
    """Inodes of every TCP socket listening on `port`, system-wide."""
    out = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                        out.add(int(fields[9]))
        except FileNotFoundError:
            pass
    return out


def socket_inodes(pid):
    out = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            m = re.fullmatch(r"socket:\[(\d+)\]", os.readlink("/proc/%d/fd/%s" % (pid, fd)))
        except OSError:
            continue
        if m:
            out.add(int(m.group(1)))
    return out


def connect_refused(host, port):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.settimeout(h.T(5))
        return s.connect_ex((host, port)) != 0


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_socket_activation_serves_on_the_passed_socket(certs, http_backend, tlsterm, host):
    if ":" in host and not h.ipv6_loopback_available():
        pytest.skip("::1 is not available")
    port = h.free_port(host)
    a = addr_text(host, port)
    cfg = h.config([h.listener("https", port, "app", host=host)], {"app": http_backend.port})
    d = tlsterm(cfg, wrapper=launcher(a))
    passed = launcher_inodes(d.log())
    assert list(passed) == [a], d.log()
    # the only socket listening on the port is the one passed, and the
    # daemon has it: tlsterm bound none of its own
    assert listening_inodes(port) == {passed[a]}
    assert passed[a] in socket_inodes(d.pid)
    assert "socket activation" not in d.log()
    status, body, _ = h.https_get((host, port), certs.rsa_cert)
    assert (status, body) == (200, h.BODY)
    # a reload keeps serving on it
    d.reload()
    assert listening_inodes(port) == {passed[a]}
    status, body, _ = h.https_get((host, port), certs.rsa_cert)
    assert (status, body) == (200, h.BODY)


def test_socket_activation_binds_what_was_not_passed(certs, http_backend, tlsterm):
    """Two listen addresses, one passed: tlsterm binds the other itself."""
    p1, p2 = h.free_port(), h.free_port()
    cfg = h.config([h.listener("one", p1, "app"), h.listener("two", p2, "app")],
                   {"app": http_backend.port})
    d = tlsterm(cfg, wrapper=launcher(addr_text("127.0.0.1", p1)))
    passed = launcher_inodes(d.log())
    assert listening_inodes(p1) == {passed["127.0.0.1:%d" % p1]}
    mine = listening_inodes(p2)
    assert mine and mine <= socket_inodes(d.pid) and not mine & set(passed.values())
    for p in (p1, p2):
        assert h.https_get(("127.0.0.1", p), certs.rsa_cert)[:2] == (200, h.BODY)


def test_socket_activation_unknown_address_is_closed(certs, http_backend, tlsterm):
    """A passed socket the configuration does not name is closed with a
    warning, not left to queue connections nobody accepts."""
    port, stray = h.free_port(), h.free_port()
    cfg = h.config([h.listener("https", port, "app")], {"app": http_backend.port})
    d = tlsterm(cfg, wrapper=launcher(addr_text("127.0.0.1", port), addr_text("127.0.0.1", stray)))
    d.wait_log(r"^\S+ warn socket activation: 127\.0\.0\.1:%d is not in %s; closing it$"
               % (stray, re.escape(d.conf_path)))
    assert launcher_inodes(d.log())["127.0.0.1:%d" % stray] not in socket_inodes(d.pid)
    assert listening_inodes(stray) == set(), "the stray socket still listens"
    assert connect_refused("127.0.0.1", stray)
    assert h.https_get(d.addr(), certs.rsa_cert)[:2] == (200, h.BODY)
    # a reload that adds the address binds it afresh
    cfg["listeners"].append(h.listener("late", stray, "app"))
    d.rewrite(cfg)
    d.reload()
    assert h.https_get(("127.0.0.1", stray), certs.rsa_cert)[:2] == (200, h.BODY)


def test_socket_activation_for_another_pid_is_ignored(certs, http_backend, tlsterm):
    """LISTEN_PID names another process: the fds are not for us."""
    port, other = h.free_port(), h.free_port()
    cfg = h.config([h.listener("https", port, "app")], {"app": http_backend.port})
    d = tlsterm(cfg, wrapper=launcher(addr_text("127.0.0.1", other), pid=1))
    assert "socket activation" not in d.log()
    mine = listening_inodes(port)
    assert mine and mine <= socket_inodes(d.pid)
    assert h.https_get(d.addr(), certs.rsa_cert)[:2] == (200, h.BODY)


@pytest.mark.parametrize("kind", ["udp", "unbound"])
def test_socket_activation_rejects_a_non_listening_socket(tmp_path, certs, kind):
    port = h.free_port()
    path = str(tmp_path / "tlsterm.yaml")
    cfg = h.config([h.listener("https", port, "app")], {"app": h.free_port()})
    cfg["listeners"][0]["certificates"] = [{"cert": certs.rsa_cert, "key": certs.rsa_key}]
    with open(path, "w") as f:
        f.write(h.to_yaml(cfg) + "\n")
    r = h.run(launcher(addr_text("127.0.0.1", port), kind=kind) + [h.BIN, "-c", path],
              timeout=h.T(30), preexec_fn=h.die_with_parent)
    err = r.stderr.decode(errors="replace")
    assert r.returncode == 1, err
    assert "socket activation: fd 3 is not a listening TCP socket" in err
    assert " ready: " not in err


# ---------------------------------------------------------------- STATUS= (issue 16)

STATUS_RE = re.compile(r"^STATUS=(serving|draining): (\d+) open connections, (\d+) accepted, "
                       r"(\d+) HTTP requests$")


def status_msgs(ns):
    """[(receive time, (state, open, accepted, requests))] of every STATUS=
    line the daemon sent (a datagram may hold several assignments); a
    STATUS= line in any other shape fails the test."""
    out = []
    with ns._lock:
        # NotifySocket may keep STATUS= datagrams apart (ns.statuses)
        msgs = sorted(ns.msgs + getattr(ns, "statuses", []), key=lambda m: m["t"])
    for m in msgs:
        for line in m["state"].split("\n"):
            if line.startswith("STATUS="):
                s = STATUS_RE.match(line)
                assert s, "STATUS= line not as documented: %r" % line
                out.append((m["t"], (s.group(1),) + tuple(int(x) for x in s.groups()[1:])))
    return out


def wait_status(ns, want, after, what):
    """Waits (at most one 5 s period and a margin) for a STATUS= line
    received after `after` that says `want`."""
    return h.wait_until(lambda: [s for t, s in status_msgs(ns) if t > after and s == want],
                        h.T(5) + 2, "%s: STATUS= %r; got %r" % (what, want, status_msgs(ns)))


def test_notify_status_line(certs, http_backend, tlsterm, notify_socket):
    """STATUS= (what `systemctl status` shows) at start and refreshed every
    5 s with the open connections, the connections accepted and the HTTP
    requests seen (on forwarded_headers backends)."""
    ns = notify_socket()
    cfg = h.one_listener(http_backend.port)
    cfg["backends"]["app"]["forwarded_headers"] = True
    d = tlsterm(cfg, wrapper=["env", "NOTIFY_SOCKET=" + ns.env])
    probes = len(d.probe_ports)
    h.wait_until(lambda: status_msgs(ns), h.T(2), "a STATUS= line at start: %r" % ns.states())
    ready = [m["t"] for m in ns.msgs if "READY=1" in m["state"].split("\n")]
    assert ready, ns.states()
    t0, first = status_msgs(ns)[0]
    assert abs(t0 - ready[0]) < h.T(1), "STATUS= %.2fs from READY=1" % (t0 - ready[0])
    assert first[0] == "serving" and first[3] == 0 and first[2] <= probes, first
    assert {m["pid"] for m in ns.msgs} == {d.pid}

    # 2 connections, 4 requests; then one held open with a fifth
    s = h.tls_connect(d.addr(), certs.rsa_cert)
    try:
        for _ in range(3):
            assert h.http11_exchange(s) == h.BODY
    finally:
        s.close()
    assert h.https_get(d.addr(), certs.rsa_cert)[:2] == (200, h.BODY)
    d.wait_close(listener="https", count=2)
    held = h.tls_connect(d.addr(), certs.rsa_cert)
    try:
        assert h.http11_exchange(held) == h.BODY
        after = time.time()
        wait_status(ns, ("serving", 1, 3 + probes, 5), after, "the refresh with a connection open")
    finally:
        held.close()
    d.wait_close(listener="https", count=3)
    wait_status(ns, ("serving", 0, 3 + probes, 5), time.time(), "the refresh after it closed")


def test_notify_status_while_draining(certs, http_backend, tlsterm, notify_socket):
    ns = notify_socket()
    d = tlsterm(drain_cfg(http_backend.port), wrapper=["env", "NOTIFY_SOCKET=" + ns.env])
    probes = len(d.probe_ports)
    c = h.MemTLS(d.addr(), certs.rsa_cert)
    try:
        c.handshake()
        assert c.get().startswith(b"HTTP/1.1 200 OK\r\n")
        after = time.time()
        d.send_signal(signal.SIGTERM)
        h.wait_until(lambda: ns.count("STOPPING=1"), h.T(5), "STOPPING=1")
        wait_status(ns, ("draining", 1, 1 + probes, 0), after, "the drain")
        assert c.get().startswith(b"HTTP/1.1 200 OK\r\n")
    finally:
        c.close()
    d.expect_open_at_stop = 1
    problems = d.stop(send=False)
    assert not problems, problems
