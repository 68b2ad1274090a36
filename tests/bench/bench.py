#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""Side-by-side benchmark: tlsterm vs hitch vs HAProxy in front of nginx.

Driven by tests/bench/run.sh (see docs/performance.md, which this script
regenerates, for the method).  Loopback only; every process it starts is
stopped by PID when it exits, also on failure or Ctrl-C.

usage: bench.py [--quick] [--tls 1.2|1.3] [TLSTERM_BIN]

--tls 1.2 (the default): all three proxies and tlsload TLS 1.2 only; writes
docs/performance.md and tests/bench/results/latest.tsv.
--tls 1.3: TLS 1.3 only (tlsterm must be built against mbedTLS 3.6); writes
docs/performance-tls13.md and tests/bench/results/latest-tls13.tsv.
"""
import argparse
import datetime
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
PROXY_CPU = "0"    # proxies run here ...
OTHER_CPU = "1"    # ... clients and nginx here (see docs/performance.md)
PROXIES = ["tlsterm", "hitch", "haproxy"]
NOFILE = 20000     # RLIMIT_NOFILE for everything started; raised in main()
TLS = "1.2"        # protocol version under test (--tls)

started = []       # Popen objects, stopped in cleanup()
saved_sysctl = {}


def log(*a):
    print("[bench %s]" % time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


# ----------------------------------------------------------------- processes
def spawn(argv, **kw):
    kw.setdefault("stdin", subprocess.DEVNULL)
    p = subprocess.Popen(argv, **kw)
    started.append(p)
    return p


def descendants(pid):
    """pid and all its descendants (from /proc/*/stat ppid)."""
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                s = f.read()
        except OSError:
            continue
        ppid = int(s[s.rindex(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def stop(p, grace=5.0):
    if p.poll() is not None:
        return
    tree = descendants(p.pid)
    try:
        p.terminate()
        p.wait(grace)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(5)
    except ProcessLookupError:
        pass
    for pid in tree[1:]:          # children that outlived their parent
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def cleanup():
    for p in reversed(started):
        try:
            stop(p)
        except Exception as e:  # keep stopping the others
            log("stop %s: %s" % (p.args[:2], e))
    started.clear()
    reap()
    for k, v in saved_sysctl.items():
        try:
            with open(k, "w") as f:
                f.write(v)
        except OSError:
            pass
    saved_sysctl.clear()


def reap():
    t = time.time() + 5
    while time.time() < t:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.1)


def on_signal(sig, frame):
    raise KeyboardInterrupt("signal %d" % sig)


def tree_cpu(pid):
    """utime+stime (s) of pid and its descendants, all threads included."""
    t = 0
    for p in descendants(pid):
        try:
            with open("/proc/%d/stat" % p) as f:
                s = f.read()
        except OSError:
            continue
        v = s[s.rindex(")") + 2:].split()
        t += int(v[11]) + int(v[12])
    return t / TICK


def tree_rss(pid):
    t = 0
    for p in descendants(pid):
        try:
            with open("/proc/%d/statm" % p) as f:
                t += int(f.read().split()[1]) * PAGE
        except OSError:
            pass
    return t


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=15):
    t = time.time() + timeout
    while time.time() < t:
        if proc.poll() is not None:
            raise RuntimeError("%s exited with %s" % (proc.args[0], proc.returncode))
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("port %d did not open" % port)


def run(argv, timeout, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)


def pinned(cpu, argv):
    return ["taskset", "-c", cpu] + argv


# --------------------------------------------------------------- preparation
def ensure_tools():
    need = [t for t in ("hitch", "haproxy", "nginx", "wrk", "curl", "openssl", "taskset", "ss", "cc")
            if not shutil.which(t)]
    pkgs = {"hitch": "hitch", "haproxy": "haproxy", "nginx": "nginx-light", "wrk": "wrk",
            "curl": "curl", "openssl": "openssl", "taskset": "util-linux", "ss": "iproute2", "cc": "gcc"}
    want = sorted({pkgs[t] for t in need})
    if not os.path.exists("/usr/include/openssl/ssl.h"):
        want.append("libssl-dev")
    if not want:
        return
    log("installing", " ".join(want))
    prc = "/usr/sbin/policy-rc.d"
    had = os.path.exists(prc)
    if not had:
        with open(prc, "w") as f:
            f.write("#!/bin/sh\nexit 101\n")
        os.chmod(prc, 0o755)
    try:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-q"], check=False, env=env, timeout=300)
        subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends"] + want,
                       check=True, env=env, timeout=600)
    finally:
        if not had:
            os.unlink(prc)


def build_tlsterm(bindir):
    log("building tlsterm in", bindir)
    if not os.path.exists(os.path.join(REPO, "configure")):
        subprocess.run(["./autogen.sh"], cwd=REPO, check=True)
    os.makedirs(bindir, exist_ok=True)
    if not os.path.exists(os.path.join(bindir, "Makefile")):
        subprocess.run([os.path.join(REPO, "configure"), "-q"], cwd=bindir, check=True)
    subprocess.run(["make", "-j2", "-s"], cwd=bindir, check=True)
    return os.path.join(bindir, "src", "tlsterm")


def crypto_floor_bin(tlsterm_bin, tmp):
    """tests/bench/crypto_floor from the build dir of TLSTERM_BIN (built there
    with make if it is an automake build dir)."""
    bdir = os.path.dirname(os.path.dirname(os.path.abspath(tlsterm_bin)))
    cf = os.path.join(bdir, "tests", "bench", "crypto_floor")
    if not os.path.exists(cf) and os.path.exists(os.path.join(bdir, "Makefile")):
        subprocess.run(["make", "-s", "tests/bench/crypto_floor"], cwd=bdir, check=False)
    if os.path.exists(cf):
        return cf
    # last resort: a build dir of our own
    b = build_tlsterm(os.path.join(tmp, "build"))
    subprocess.run(["make", "-s", "tests/bench/crypto_floor"], cwd=os.path.dirname(os.path.dirname(b)),
                   check=True)
    return os.path.join(tmp, "build", "tests", "bench", "crypto_floor")


def make_certs(tmp):
    out = {}
    for kind, args in (("ecdsa", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]),
                       ("rsa", ["-newkey", "rsa:2048"])):
        c, k, pem = ["%s/%s-%s.pem" % (tmp, kind, s) for s in ("cert", "key", "combined")]
        subprocess.run(["openssl", "req", "-x509"] + args + ["-nodes", "-days", "2", "-subj", "/CN=localhost",
                        "-keyout", k, "-out", c], check=True, capture_output=True)
        with open(pem, "w") as f:
            f.write(open(c).read() + open(k).read())
        out[kind] = (c, k, pem)
    return out


def start_nginx(tmp):
    root = os.path.join(tmp, "www")
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "100b"), "wb") as f:
        f.write(b"x" * 99 + b"\n")
    with open(os.path.join(root, "1m"), "wb") as f:
        f.write(os.urandom(1 << 20))
    with open(os.path.join(root, "100m"), "wb") as f:
        blk = os.urandom(1 << 20)
        for _ in range(100):
            f.write(blk)
    port = free_port()
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write("""user root;
daemon off;
worker_processes 1;
worker_rlimit_nofile %(nofile)d;
pid %(t)s/nginx.pid;
error_log %(t)s/nginx-error.log warn;
events { worker_connections %(wc)d; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_timeout 600s;
  keepalive_requests 10000000;
  client_header_timeout 600s;
  client_body_timeout 600s;
  client_body_temp_path %(t)s/nginx-body;
  proxy_temp_path %(t)s/nginx-proxy;
  fastcgi_temp_path %(t)s/nginx-fcgi;
  uwsgi_temp_path %(t)s/nginx-uwsgi;
  scgi_temp_path %(t)s/nginx-scgi;
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:%(p)d backlog=4096;
    root %(r)s;
    location /upload { client_max_body_size 200m; client_body_buffer_size 1m; return 200 "ok\\n"; }
  }
}
""" % {"t": tmp, "p": port, "r": root, "nofile": NOFILE, "wc": NOFILE - 100})
    p = spawn(pinned(OTHER_CPU, ["nginx", "-p", tmp, "-c", conf, "-e", tmp + "/nginx-error.log"]),
              stdout=subprocess.DEVNULL, stderr=open(tmp + "/nginx.stderr", "w"))
    wait_port(port, p)
    return p, port, os.path.join(root, "100m")


def start_proxies(tmp, tlsterm, cert, backend, tag):
    c, k, pem = cert
    procs = {}
    # tlsterm
    q = free_port()
    yml = os.path.join(tmp, "tlsterm-%s.yaml" % tag)
    with open(yml, "w") as f:
        f.write("""workers: 2
log: {level: warn}
limits: {max_connections: 100000}
listeners:
  - name: bench
    listen: ["127.0.0.1:%d"]
    certificates: [{cert: %s, key: %s}]
    backend: app
backends:
  app: {servers: ["127.0.0.1:%d"]}
""" % (q, c, k, backend))
    if TLS == "1.3":
        with open(yml, "a") as f:
            f.write('tls: {min_version: "1.3"}\n')
    elif has_tls13(tlsterm):
        # an mbedTLS 3.6 build offers TLS 1.3 by default, which wrk and curl
        # would take while hitch and HAProxy are held to 1.2 (a 2.28 build
        # has only 1.2: its configuration stays as it always was)
        with open(yml, "a") as f:
            f.write('tls: {max_version: "1.2"}\n')
    p = spawn(pinned(PROXY_CPU, [tlsterm, "-c", yml]), stdout=subprocess.DEVNULL,
              stderr=open("%s/tlsterm-%s.log" % (tmp, tag), "w"))
    procs["tlsterm"] = (p, q)
    # hitch
    q = free_port()
    p = spawn(pinned(PROXY_CPU, ["hitch", "--backend=[127.0.0.1]:%d" % backend, "--frontend=[127.0.0.1]:%d" % q,
                                 "--workers=2", "--tls-protos=TLSv%s" % TLS, "--daemon=off", "--backlog=4096",
                                 "--ocsp-dir=%s" % tmp, "--log-level=1",
                                 "--user=nobody", "--group=nogroup", pem]),
              stdout=subprocess.DEVNULL, stderr=open("%s/hitch-%s.log" % (tmp, tag), "w"))
    procs["hitch"] = (p, q)
    # haproxy
    q = free_port()
    cfg = os.path.join(tmp, "haproxy-%s.cfg" % tag)
    with open(cfg, "w") as f:
        f.write(haproxy_cfg(2, q, pem, TLS, backend))
    p = spawn(pinned(PROXY_CPU, ["haproxy", "-db", "-f", cfg]), stdout=subprocess.DEVNULL,
              stderr=open("%s/haproxy-%s.log" % (tmp, tag), "w"))
    procs["haproxy"] = (p, q)
    for name, (p, q) in procs.items():
        try:
            wait_port(q, p)
        except RuntimeError:
            with open("%s/%s-%s.log" % (tmp, name, tag)) as f:
                raise RuntimeError("%s did not start: %s" % (name, f.read()[-2000:]))
    time.sleep(1)
    return procs


def haproxy_cfg(threads, port, pem, tls, backend, frontend_extra=""):
    """HAProxy in TCP mode terminating TLS `tls` ("1.2"/"1.3") on port;
    frontend_extra: lines (each "  ...\\n") added to the frontend."""
    return """global
  nbthread %d
  maxconn %d
defaults
  mode tcp
  timeout connect 5s
  timeout client 600s
  timeout server 600s
frontend f
  bind 127.0.0.1:%d ssl crt %s ssl-min-ver TLSv%s ssl-max-ver TLSv%s
%s  default_backend b
backend b
  server s 127.0.0.1:%d
""" % (threads, NOFILE // 2 - 100, port, pem, tls, tls, frontend_extra, backend)


def has_tls13(tlsterm):
    """whether this tlsterm build has TLS 1.3 (`tlsterm -V` lists it)"""
    if tlsterm not in _tls13_cache:
        r = run([tlsterm, "-V"], 10)
        _tls13_cache[tlsterm] = "TLS 1.3" in r.stdout + r.stderr
    return _tls13_cache[tlsterm]


_tls13_cache = {}


# --------------------------------------------------------------------- tests
def kv(line):
    return dict(x.split("=", 1) for x in line.split() if "=" in x)


def test_handshakes(tlsload, proc, port, secs, resume):
    cpu0 = tree_cpu(proc.pid)
    argv = [tlsload, "hs", "-p", str(port), "-c", "32", "-d", str(secs)] + (["-r"] if resume else []) + \
        (["-3"] if TLS == "1.3" else [])
    r = run(pinned(OTHER_CPU, argv), timeout=secs + 60)
    cpu1 = tree_cpu(proc.pid)
    line = [l for l in r.stdout.splitlines() if l.startswith("DONE")]
    if not line:
        raise RuntimeError("tlsload: %s %s" % (r.stdout, r.stderr))
    d = kv(line[0])
    ok = int(d["ok"])
    secs_m = float(d["secs"])
    return {
        "conn_per_s": ok / secs_m,
        "cpu_us_per_conn": (cpu1 - cpu0) / ok * 1e6 if ok else float("nan"),
        "proxy_cpu_pct": (cpu1 - cpu0) / secs_m * 100,
        "client_cpu_pct": float(d["client_cpu_s"]) / secs_m * 100,
        "errors": int(d["err"]),
        "resumed_pct": int(d["resumed"]) / ok * 100 if ok else 0.0,
        "_cipher": d["cipher"], "_group": d["group"], "_proto": d.get("proto", "?"),
    }


def to_ms(v):
    m = re.match(r"([\d.]+)(us|ms|s)", v)
    return float(m.group(1)) * {"us": 1e-3, "ms": 1, "s": 1e3}[m.group(2)]


def test_wrk(proc, port, secs, scheme="https"):
    cpu0 = tree_cpu(proc.pid)
    r = run(pinned(OTHER_CPU, ["wrk", "-t1", "-c64", "-d%ds" % secs, "--latency",
                               "%s://127.0.0.1:%d/100b" % (scheme, port)]), timeout=secs + 60)
    cpu1 = tree_cpu(proc.pid)
    out = r.stdout
    reqs = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = to_ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = to_ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    e = re.search(r"Socket errors: (.*)", out)
    return {"req_per_s": rps, "p50_ms": p50, "p99_ms": p99,
            "cpu_us_per_req": (cpu1 - cpu0) / reqs * 1e6 if reqs else float("nan"),
            "proxy_cpu_pct": (cpu1 - cpu0) / secs * 100,
            "errors": (int(m.group(1)) if m else 0), "_sockerr": e.group(1) if e else ""}


def test_bulk(proc, port, upload_file, direction):
    size = os.path.getsize(upload_file)
    if direction == "down":
        argv = ["curl", "-k", "-sS", "-v", "-o", "/dev/null", "-w", "%{size_download} %{time_total} %{http_code}",
                "https://127.0.0.1:%d/100m" % port]
    else:
        argv = ["curl", "-k", "-sS", "-v", "-o", "/dev/null", "-H", "Expect:", "-T", upload_file, "-w",
                "%{size_upload} %{time_total} %{http_code}", "https://127.0.0.1:%d/upload" % port]
    cpu0 = tree_cpu(proc.pid)
    r = run(pinned(OTHER_CPU, argv), timeout=300)
    cpu1 = tree_cpu(proc.pid)
    n, t, code = r.stdout.split()
    n, t = int(n), float(t)
    m = re.search(r"SSL connection using (\S+) / (\S+)(?: / (\S+))?", r.stderr)
    if n != size or code != "200":
        raise RuntimeError("bulk %s: %d bytes, http %s" % (direction, n, code))
    return {"mib_per_s": n / t / (1 << 20), "cpu_s_per_gib": (cpu1 - cpu0) / (n / (1 << 30)),
            "_cipher": m.group(2) if m else "?", "_proto": m.group(1) if m else "?",
            "_group": (m.group(3) or "?") if m else "?"}


def probe_s_client(port):
    """One `openssl s_client -brief` handshake with OpenSSL's client defaults
    (what wrk and curl offer too): negotiated version, suite, group."""
    r = run(pinned(OTHER_CPU, ["openssl", "s_client", "-brief", "-connect", "127.0.0.1:%d" % port,
                               "-servername", "localhost"]), 30, stdin=subprocess.DEVNULL)
    out = r.stdout + r.stderr

    def get(*keys):
        for k in keys:
            m = re.search(r"^%s:\s*(.+?)\s*$" % re.escape(k), out, re.M)
            if m:
                return m.group(1)
        return "?"
    return {"proto": get("Protocol version"), "cipher": get("Ciphersuite"),
            "group": get("Negotiated TLS1.3 group", "Peer Temp Key", "Server Temp Key").split(",")[0],
            "sig": get("Signature type")}


def relay_floor(tmp, bport, runs, secs, floor, tsv):
    """Keep-alive CPU per request of tests/bench/relay_floor.c (plain TCP, no
    TLS, the four socket calls a relayed request needs): what the kernel
    charges any proxy on this machine."""
    binary = os.path.join(tmp, "relay_floor")
    subprocess.run(["cc", "-O2", "-o", binary, os.path.join(HERE, "relay_floor.c")], check=True)
    q = free_port()
    p = spawn(pinned(PROXY_CPU, [binary, str(q), str(bport)]), stdout=subprocess.DEVNULL,
              stderr=open(tmp + "/relay_floor.log", "w"))
    wait_port(q, p)
    rl = []
    for i in range(runs):
        log("relay floor keep-alive run", i + 1)
        rl.append(test_wrk(p, q, secs, "http"))
    stop(p)
    started.remove(p)
    for key in ("cpu_us_per_req", "p99_ms", "req_per_s"):
        floor["relay_" + key] = med(rl, key)
        for i, r in enumerate(rl):
            tsv.append(("-", "relay_floor", "relay_floor", key, str(i + 1), r[key]))
        tsv.append(("-", "relay_floor", "relay_floor", key, "median", floor["relay_" + key]))


def set_sysctl(path, value):
    with open(path) as f:
        old = f.read().strip()
    saved_sysctl.setdefault(path, old)
    with open(path, "w") as f:
        f.write(value)


def test_memory(tlsload, proc, port, n, backend, timeout):
    base = tree_rss(proc.pid)
    c = spawn(pinned(OTHER_CPU, [tlsload, "hold", "-r", "-p", str(port), "-n", str(n), "-c", "256",
                                 "-t", str(timeout), "-S", "16"] + (["-3"] if TLS == "1.3" else [])),
              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        line = c.stdout.readline()
        d = kv(line)
        time.sleep(2)
        rss = tree_rss(proc.pid)
        bconns = len(run(["ss", "-Htn", "state", "established", "dst", "127.0.0.1:%d" % backend], 30)
                     .stdout.splitlines())
        c.stdin.write("check\n")
        c.stdin.flush()
        chk = kv(c.stdout.readline())
        c.stdin.write("quit\n")
        c.stdin.flush()
        c.wait(60)
    finally:
        stop(c)
        started.remove(c)
    held = int(d.get("ok", 0))
    if TLS == "1.3":
        log("  memory: established %s, resumed %s, proto %s" % (d.get("ok"), d.get("resumed"), d.get("proto")))
    alive = held - int(chk.get("closed", held))
    time.sleep(3)  # let the proxy drop them
    r = {"established": held, "still_open": alive, "rss_before": base, "rss_with": rss,
            "bytes_per_conn": (rss - base) / alive if alive else float("nan"),
            "backend_conns": bconns, "secs_to_establish": float(d.get("secs", 0))}
    if TLS == "1.3":
        r["resumed_pct"] = int(d.get("resumed", 0)) / held * 100 if held else float("nan")
    return r


# ------------------------------------------------------------------- report
def med(runs, key):
    v = [r[key] for r in runs if key in r]
    return statistics.median(v) if v else float("nan")


def fmt(v, nd=1):
    if isinstance(v, str):
        return v
    if v != v:
        return "n/a"
    if abs(v) >= 1000:
        return "{:,.0f}".format(v)
    return ("{:.%df}" % nd).format(v)


def ratio(a, b):
    return a / b if b and b == b and a == a else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--tls", choices=("1.2", "1.3"), default="1.2",
                    help="protocol version all proxies and clients are pinned to (default 1.2)")
    ap.add_argument("tlsterm", nargs="?")
    a = ap.parse_args()
    quick = a.quick
    global TLS
    TLS = a.tls
    runs = 1 if quick else 3
    hs_secs = 4 if quick else 10
    wrk_secs = 5 if quick else 10
    mem_sizes = [1000, 5000] if quick else [5000, 50000]
    bulk_n = 1 if quick else 3

    meta = {}
    # become a child subreaper, so that workers that outlive their master
    # (hitch) are reparented to us and reaped, not left as zombies
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except Exception:
        pass
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    if os.cpu_count() < 2:
        global OTHER_CPU
        OTHER_CPU = "0"
    global NOFILE
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (400000, 400000))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    NOFILE = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    # a proxy holds 2 descriptors per connection (client + backend)
    cap = NOFILE // 2 - 250
    if mem_sizes[-1] > cap:
        log("RLIMIT_NOFILE hard limit is %d: idle-connection test capped at %d" % (NOFILE, cap))
        mem_sizes = [min(n, cap) for n in mem_sizes]
    meta["nofile"] = NOFILE

    ensure_tools()
    meta["load_start"] = open("/proc/loadavg").read().split()[0]
    tmp = tempfile.mkdtemp(prefix="tlsterm-bench-")
    t_start = time.time()
    tsv = []   # (pass, test, proxy, metric, run, value)
    res = {}   # res[pass][test][proxy] = [run dicts]
    try:
        tlsterm = a.tlsterm or build_tlsterm(os.path.join(tempfile.gettempdir(), "tlsterm-bench-build"))
        tlsterm = os.path.abspath(tlsterm)
        if TLS == "1.3" and not has_tls13(tlsterm):
            raise SystemExit("bench: --tls 1.3 needs tlsterm built against mbedTLS 3.6 (`%s -V` lists no "
                             "TLS 1.3)" % tlsterm)
        tlsload = os.path.join(tmp, "tlsload")
        subprocess.run(["cc", "-O2", "-o", tlsload, os.path.join(HERE, "tlsload.c"), "-lssl", "-lcrypto"],
                       check=True)
        floor = {}
        if TLS == "1.2":
            cf = crypto_floor_bin(tlsterm, tmp)
        else:
            # optional here: skipped (floors n/a) if it does not build
            try:
                cf = crypto_floor_bin(tlsterm, tmp)
            except (subprocess.CalledProcessError, OSError) as e:
                log("crypto floor not built, skipped:", e)
                cf = None
            meta["crypto_floor"] = cf is not None
        if cf:
            log("crypto floor", cf)
            for l in run(pinned(PROXY_CPU, [cf]), 300).stdout.splitlines():
                p = l.split("\t")
                if len(p) == 3:
                    floor[p[0]] = float(p[2])
                    tsv.append(("-", "crypto_floor", "tlsterm", p[0] + ":" + p[1], "median", float(p[2])))
        meta["versions"] = versions(tlsterm)
        certs = make_certs(tmp)
        nginx, bport, upfile = start_nginx(tmp)
        relay_floor(tmp, bport, runs, wrk_secs, floor, tsv)
        # 50k backend connections from one address need more than 28k ports
        set_sysctl("/proc/sys/net/ipv4/ip_local_port_range", "1024 65535")
        for cpass in ("ecdsa", "rsa"):
            log("pass", cpass)
            procs = start_proxies(tmp, tlsterm, certs[cpass], bport, cpass)
            R = res.setdefault(cpass, {})
            idle = {n: tree_rss(p.pid) for n, (p, q) in procs.items()}
            R["idle_rss"] = {n: [{"rss": v}] for n, v in idle.items()}
            if TLS == "1.3":
                probes = meta.setdefault("s_client", {})[cpass] = {}
                for name, (p, q) in procs.items():
                    probes[name] = probe_s_client(q)
                    log(cpass, "s_client", name, probes[name])
            tests = [("full", lambda p, q: test_handshakes(tlsload, p, q, hs_secs, False)),
                     ("resumed", lambda p, q: test_handshakes(tlsload, p, q, hs_secs, True)),
                     ("keepalive", lambda p, q: test_wrk(p, q, wrk_secs))]
            for tname, fn in tests:
                for i in range(runs):
                    for name in PROXIES:
                        p, q = procs[name]
                        log(cpass, tname, name, "run", i + 1)
                        r = fn(p, q)
                        R.setdefault(tname, {}).setdefault(name, []).append(r)
            for direction in ("down", "up"):
                for i in range(bulk_n):
                    for name in PROXIES:
                        p, q = procs[name]
                        log(cpass, "bulk", direction, name, "run", i + 1)
                        R.setdefault("bulk_" + direction, {}).setdefault(name, []).append(
                            test_bulk(p, q, upfile, direction))
            if cpass == "ecdsa":
                for n in mem_sizes:
                    for name in PROXIES:
                        p, q = procs[name]
                        log(cpass, "memory", n, name)
                        R.setdefault("mem_%d" % n, {}).setdefault(name, []).append(
                            test_memory(tlsload, p, q, n, bport, 120 if quick else 240))
            for name, (p, q) in procs.items():
                if p.poll() is not None:
                    log("WARNING: %s exited early with %s" % (name, p.returncode))
                stop(p)
                started.remove(p)
            reap()
        meta["elapsed"] = time.time() - t_start
        meta["load_end"] = open("/proc/loadavg").read().split()[0]
        for cpass, R in res.items():
            for tname, byp in R.items():
                for name, rl in byp.items():
                    for i, r in enumerate(rl):
                        for k, v in r.items():
                            if not k.startswith("_"):
                                tsv.append((cpass, tname, name, k, str(i + 1), v))
                    for k in rl[0]:
                        if not k.startswith("_"):
                            tsv.append((cpass, tname, name, k, "median", med(rl, k)))
        write_outputs(res, floor, meta, tsv, quick)
    finally:
        cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def versions(tlsterm):
    def first(argv):
        try:
            r = run(argv, 10)
            return (r.stdout + r.stderr).strip().splitlines()[0]
        except Exception:
            return "?"
    lscpu = run(["lscpu"], 10).stdout
    model = re.search(r"Model name:\s+(.*)", lscpu)
    return {
        "tlsterm": " / ".join(run([tlsterm, "-V"], 10).stdout.strip().splitlines()),
        "hitch": first(["hitch", "--version"]),
        "haproxy": first(["haproxy", "-v"]),
        "nginx": first(["nginx", "-v"]),
        "wrk": first(["wrk", "-v"]),
        "openssl": first(["openssl", "version"]),
        "kernel": os.uname().release,
        "cpu": "%s, %d CPUs" % (model.group(1) if model else "?", os.cpu_count()),
        "os": os_release(),
    }


def os_release():
    name, ver = "?", ""
    try:
        m = re.search(r'^PRETTY_NAME="?([^"\n]*)', open("/etc/os-release").read(), re.M)
        name = m.group(1) if m else "?"
        ver = open("/etc/debian_version").read().strip()
    except OSError:
        pass
    return "%s%s" % (name, " (%s)" % ver if ver else "")


def out_names():
    """(markdown path relative to the repository, TSV file name in results/)"""
    if TLS == "1.3":
        return "docs/performance-tls13.md", "latest-tls13.tsv"
    return "docs/performance.md", "latest.tsv"


def write_outputs(res, floor, meta, tsv, quick):
    mdname, tsvname = out_names()
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", tsvname), "w") as f:
        f.write("pass\ttest\tproxy\tmetric\trun\tvalue\n")
        for row in tsv:
            v = row[5]
            f.write("\t".join(row[:5]) + "\t" + (("%.6g" % v) if isinstance(v, float) else str(v)) + "\n")
    md = render(res, floor, meta, quick)
    # the section tests/bench/three_builds.py writes (run.sh's default mode)
    # is kept: this mode rewrites only its own part of the file
    try:
        old = open(os.path.join(REPO, mdname)).read()
        i = old.find("\n## Three mbedTLS builds side by side")
        if i >= 0:
            j = old.find("\n## ", i + 1)
            md = md.rstrip() + "\n" + (old[i:j + 1] if j >= 0 else old[i:])
    except OSError:
        pass
    with open(os.path.join(REPO, mdname), "w") as f:
        f.write(md)
    log("wrote %s and tests/bench/results/%s" % (mdname, tsvname))


def platform(V):
    """(OS, "mbedTLS x.y.z", "OpenSSL x.y.z", hitch version, HAProxy version) from versions()"""
    def pick(pat, text, default="?"):
        m = re.search(pat, text or "")
        return m.group(1) if m else default
    osname = V.get("os", "?")
    m = re.match(r"Debian GNU/Linux (\d+) \((\w+)\)(?: \((\S+)\))?", osname)
    if m:
        osname = "Debian %s (%s%s)" % (m.group(1), m.group(2), ", " + m.group(3) if m.group(3) else "")
    return (osname, "mbedTLS %s" % pick(r"Mbed ?TLS (\d[\w.]*)", V.get("tlsterm")),
            "OpenSSL %s" % pick(r"OpenSSL (\S+)", V.get("openssl")),
            pick(r"hitch (\S+)", V.get("hitch")), pick(r"version (\S+)", V.get("haproxy")))


# The method paragraphs both TLS versions share, put into either template.
METHOD_BACKEND = """- **Backend**: nginx, `worker_processes 1`, keep-alive on, `access_log off`, serving a 100-byte file, a
  1 MiB and a 100 MiB file (random bytes), and `/upload`, which reads and discards a request body of up to
  200 MiB and answers 200.
"""
METHOD_PLACEMENT = """- **CPU placement**: the machine has 2 CPUs. Every proxy is pinned to CPU 0 (`taskset -c 0`, all its
  processes and threads); nginx and all clients (tlsload, wrk, curl) are pinned to CPU 1. The proxy then
  never competes with the load generator, so its CPU time per operation is clean and the throughput figures
  are *one-core* throughput. Tests alternate between the proxies run by run, so drift hits all three alike.
- **Proxy CPU** is utime+stime, from `/proc/PID/stat`, of the proxy process and all its descendants
  (hitch forks workers), all threads included, read before and after each load.
"""

METHOD13 = """%(backend)s- **Proxies**, all three running at the same time, each in front of the same nginx, each with the same
  certificate (first pass ECDSA P-256, second pass RSA-2048), **TLS 1.3 only**, default cipher suites and
  groups (the negotiated suite and key-exchange group are recorded below):
  tlsterm `workers: 2`, `log.level: warn`, `tls: {min_version: "1.3"}`; hitch `--workers=2
  --tls-protos=TLSv1.3` (default ciphers; workers run as `nobody`, hitch refuses root);
  HAProxy %(haproxy)s `nbthread 2`, `mode tcp`, `bind ... ssl crt PEM ssl-min-ver TLSv1.3 ssl-max-ver TLSv1.3`.
  hitch and HAProxy use the system OpenSSL, whose default groups put the hybrid post-quantum
  `X25519MLKEM768` first; OpenSSL clients (tlsload, wrk, curl) offer it first too, so against hitch and
  HAProxy every handshake (full and resumed) does an ML-KEM-768 encapsulation on top of X25519, while
  mbedTLS has no ML-KEM and tlsterm takes the client's other key share, X25519. The handshake rows
  therefore compare different key exchanges; the groups are listed per pass.
%(placement)s- **Client**: `tests/bench/tlsload.c -3` (TLS 1.3 only), a single-threaded epoll client on OpenSSL (compiled
  by the harness). Its CPU use is reported as *client CPU %%*; at 100%% the client, not the proxy, limits
  connections/s (the CPU-per-connection figure stays valid).
- **(a) full handshakes**: 32 concurrent clients, each: new TCP connection, full TLS 1.3 handshake,
  `GET /100b` with `Connection: close`, read the response, close; for %(hs)s.
- **(b) resumed handshakes**: the same, but every connection after the first offers the session ticket of
  the first full handshake. In TLS 1.3 the ticket is a NewSessionTicket message sent after the handshake:
  tlsload takes it from OpenSSL's new-session callback while the first response is read, then turns
  OpenSSL's client session cache off, as that cache would mark the ticket used after one resumption; every
  later connection offers the same ticket (RFC 8446 advises clients to use a ticket once; all three servers
  accept reuse). *resumed %%* counts handshakes `SSL_session_reused` reports as resumed. OpenSSL clients
  offer only `psk_dhe_ke`, so a resumed TLS 1.3 handshake still does a key exchange (but no signature).
- **(c) keep-alive**: `wrk -t1 -c64 -d%(wrk)s --latency https://127.0.0.1:PORT/100b`; requests/s, p50/p99
  latency from wrk, proxy CPU per request. wrk uses OpenSSL's client defaults; as the proxies accept only
  TLS 1.3, every wrk connection is TLS 1.3 (or fails), negotiated as `openssl s_client` shows below.
- **(d) bulk**: `curl -k` downloading the 100 MiB file and uploading 100 MiB to `/upload` (`curl -T`),
  %(bulk)s; MiB/s and proxy CPU s per GiB. OpenSSL clients list TLS_AES_256_GCM_SHA384 first and mbedTLS
  3.6 takes the client's first choice; the suite curl negotiated with each proxy is shown with the tables.
- **(e) memory** (ECDSA pass): tlsload opens N TLS 1.3 connections (the first a full handshake, which also
  waits for the server's NewSessionTicket, the rest resumed with that ticket; 256 handshakes in flight; source
  addresses 127.0.0.2-127.0.0.17), then sends nothing. Bytes per connection = (RSS with N open - RSS just
  before) / N still open, where RSS is the sum of VmRSS over the proxy's processes. *backend conns* =
  established connections to nginx while they are held (a proxy that connects to the backend only when the
  client speaks holds none).
- **(f) crypto floor**: `tests/bench/crypto_floor` (mbedTLS, pinned to CPU 0; it measures TLS 1.2's
  primitives, which TLS 1.3 shares): full-handshake floor = server signature (ECDSA P-256 or RSA-2048) +
  ECDHE for the negotiated group + record work (AEAD over ~1 KiB of handshake/request/response records;
  TLS 1.3's HKDF key schedule is left out); bulk floor = the negotiated AEAD's CPU s per GiB (it measures
  AES-128-GCM and ChaCha20-Poly1305 only, so an AES-256-GCM suite has no floor: n/a).
"""


def render(res, floor, meta, quick):
    V = meta["versions"]
    L = []
    w = L.append
    runs = "from 1 run (--quick)" if quick else "the median of 3 runs"
    t13 = TLS == "1.3"
    tsvname = out_names()[1]
    if t13:
        w("# tlsterm performance, TLS 1.3: side by side with hitch and HAProxy\n")
        w("**TLS 1.3 only** (all three proxies and all clients), on %s: tlsterm with %s, %s, hitch %s, "
          "HAProxy %s. The TLS 1.2 comparison is [`docs/performance.md`](performance.md).\n" % platform(V))
    else:
        w("# tlsterm performance: side by side with hitch and HAProxy\n")
    w("_Generated by `tests/bench/run.sh%s%s` on %s in %.0f s. Do not edit by hand; rerun the harness._\n"
      % (" --quick" if quick else "", " --tls 1.3" if t13 else "",
         datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), meta["elapsed"]))
    w("Every figure is %s. Raw numbers (every run and the medians): "
      "[`tests/bench/results/%s`](../tests/bench/results/%s).\n" % (runs, tsvname, tsvname))
    if t13:
        w("[`docs/performance-analysis.md`](performance-analysis.md) (hand-written) analyses the TLS 1.2 "
          "figures; profile any load with `tests/bench/profile.py full|resumed|keepalive|download|upload "
          "[TLSTERM_BIN]`.\n")
    else:
        w("Where the time goes for every missed target, with profiles and what would close the gap: "
          "[`docs/performance-analysis.md`](performance-analysis.md) (hand-written; profile any load with "
          "`tests/bench/profile.py full|resumed|keepalive|download|upload [TLSTERM_BIN]`).\n")
    w("## Reproduce\n")
    if t13:
        w("```sh\ntests/bench/run.sh [--quick] --tls 1.3 [TLSTERM_BIN]\n```\n")
        w("TLSTERM_BIN must be built against mbedTLS 3.6 (`tlsterm -V` lists TLS 1.3). These figures were "
          "taken in a Debian 13 root (chroot sharing the host's kernel and network namespace), tlsterm built "
          "there: `mkdir -p /root/bbench && cd /root/bbench && /work/main/configure -q && make -j2 "
          "src/tlsterm`, then `tests/bench/run.sh --tls 1.3 /root/bbench/src/tlsterm`.\n")
    else:
        w("```sh\ntests/bench/run.sh [--quick] [TLSTERM_BIN]\n```\n")
    w("Run as root on an otherwise idle machine with at least 2 CPUs. Without `TLSTERM_BIN` the harness "
      "builds tlsterm in `$TMPDIR/tlsterm-bench-build`; it installs hitch, haproxy, nginx-light, wrk and "
      "libssl-dev with apt-get when they are missing (services kept from starting by a temporary "
      "`/usr/sbin/policy-rc.d`). A full run takes about 15-25 minutes, `--quick` (one run each, shorter "
      "loads, 1,000/5,000 idle connections instead of 5,000/50,000) under 5 minutes. Everything listens on "
      "and connects to 127.0.0.0/8 only; every process the harness starts is stopped by PID when it ends, "
      "also on failure or Ctrl-C; `net.ipv4.ip_local_port_range` is widened to 1024-65535 during the run "
      "and restored afterwards.\n")
    w("## Environment\n")
    for k in (("os",) if t13 else ()) + ("cpu", "kernel", "tlsterm", "hitch", "haproxy", "nginx", "wrk",
                                         "openssl"):
        w("- **%s**: %s" % (k, V[k]))
    w("- **1-min load average** at start / end: %s / %s (the harness itself adds about 2; much more means "
      "something else ran and the figures are noisy)" % (meta.get("load_start", "?"), meta.get("load_end", "?")))
    w("")
    w("## Method\n")
    margs = {"hs": "%s s" % ("4" if quick else "10"), "wrk": "5s" if quick else "10s",
             "bulk": "1 download and 1 upload per proxy" if quick else "3 of each per proxy, median",
             "haproxy": platform(V)[4], "backend": METHOD_BACKEND,
             "placement": METHOD_PLACEMENT}
    if t13:
        w(METHOD13 % margs)
    else:
        w("""%(backend)s- **Proxies**, all three running at the same time, each in front of the same nginx, each with the same
  certificate (first pass ECDSA P-256, second pass RSA-2048), TLS 1.2 only, default cipher suites and curves
  (the negotiated suite and key-exchange group are recorded below):
  tlsterm `workers: 2`, `log.level: warn`; hitch `--workers=2 --tls-protos=TLSv1.2` (default ciphers;
  workers run as `nobody`, hitch refuses root);
  HAProxy 2.6 `nbthread 2`, `mode tcp`, `bind ... ssl crt PEM ssl-min-ver TLSv1.2 ssl-max-ver TLSv1.2`.
%(placement)s- **Client**: `tests/bench/tlsload.c`, a single-threaded epoll client on OpenSSL (compiled by the harness).
  Its CPU use is reported as *client CPU %%*; at 100%% the client, not the proxy, limits connections/s
  (the CPU-per-connection figure stays valid).
- **(a) full handshakes**: 32 concurrent clients, each: new TCP connection, full TLS 1.2 handshake,
  `GET /100b` with `Connection: close`, read the response, close; for %(hs)s.
- **(b) resumed handshakes**: the same, but every connection after the first offers the session ticket of
  the first full handshake; *resumed %%* counts handshakes OpenSSL reports as resumed.
- **(c) keep-alive**: `wrk -t1 -c64 -d%(wrk)s --latency https://127.0.0.1:PORT/100b`; requests/s, p50/p99
  latency from wrk, proxy CPU per request.
- **(d) bulk**: `curl -k` downloading the 100 MiB file and uploading 100 MiB to `/upload` (`curl -T`),
  %(bulk)s; MiB/s and proxy CPU s per GiB. Note that hitch and HAProxy honour the client's order
  (OpenSSL's default puts AES-256-GCM first) while tlsterm prefers ChaCha20-Poly1305, so the bulk rows
  compare different AEADs; the floor target uses tlsterm's own AEAD.
- **(e) memory** (ECDSA pass): tlsload opens N TLS connections (the first a full handshake, the rest
  resumed with its ticket; 256 handshakes in flight; source addresses 127.0.0.2-127.0.0.17), then sends
  nothing. Bytes per connection = (RSS with N open - RSS just before) / N still open, where RSS is the sum
  of VmRSS over the proxy's processes. *backend conns* = established connections to nginx while they are held
  (a proxy that connects to the backend only when the client speaks holds none).
- **(f) crypto floor**: `tests/bench/crypto_floor` (mbedTLS, pinned to CPU 0): full-handshake floor = server
  signature (ECDSA P-256 or RSA-2048) + ECDHE for the negotiated group + record work (AEAD over ~1 KiB of
  handshake/request/response records); bulk floor = the negotiated AEAD's CPU s per GiB.
""" % margs)

    w("## Crypto floor (mbedTLS on this CPU)\n")
    if t13 and not meta.get("crypto_floor", True):
        w("_`tests/bench/crypto_floor` did not build against this mbedTLS: skipped, every floor is n/a._\n")
    w("| primitive | value |\n|---|---:|")
    for k, v in floor.items():
        if k.startswith("relay_"):
            continue
        unit = "µs/op" if not k.endswith("16k") else "CPU s/GiB"
        w("| %s | %s %s |" % (k, fmt(v), unit))
    w("")

    targets = []

    def neg(cpass, test="full"):
        out = {}
        for name in PROXIES:
            rl = res[cpass][test][name]
            out[name] = "%s, %s" % (rl[0]["_cipher"], rl[0]["_group"])
        return out

    def aead_floor(cipher):
        if "CHACHA20" in cipher:
            return floor.get("chacha20_poly1305_16k", float("nan")), "chacha20_poly1305_16k"
        if "AES128-GCM" in cipher or "AES_128_GCM" in cipher:
            return floor.get("aes128_gcm_16k", float("nan")), "aes128_gcm_16k"
        return float("nan"), "(no floor measured for %s)" % cipher

    def group_floor(g):
        g = g.lower()
        if "mlkem" in g:    # hybrid post-quantum groups: not in crypto_floor
            return float("nan")
        if "x25519" in g:
            return floor.get("ecdhe_x25519", float("nan"))
        if "p-256" in g or "prime256" in g or "secp256r1" in g:
            return floor.get("ecdhe_secp256r1", float("nan"))
        return float("nan")

    def table(cpass, test, cols):
        byp = res[cpass][test]
        w("| | " + " | ".join(PROXIES) + " | tlsterm/hitch | tlsterm/haproxy |")
        w("|---|" + "---:|" * (len(PROXIES) + 2))
        for key, label, nd in cols:
            vals = [med(byp[n], key) for n in PROXIES]
            w("| %s | %s | %s | %s |" % (label, " | ".join(fmt(v, nd) for v in vals),
                                         fmt(ratio(vals[0], vals[1]), 2), fmt(ratio(vals[0], vals[2]), 2)))
        w("")

    for cpass, title in (("ecdsa", "ECDSA P-256 certificate"), ("rsa", "RSA-2048 certificate")):
        if cpass not in res:
            continue
        w("## %s\n" % title)
        ng = neg(cpass)
        w("Negotiated (tlsload, OpenSSL client defaults): " +
          "; ".join("%s: `%s`" % (n, ng[n]) for n in PROXIES) + ".\n")
        if t13:
            pv = {n: res[cpass]["full"][n][0].get("_proto", "?") for n in PROXIES}
            w("Protocol version seen by tlsload: " + "; ".join("%s: `%s`" % (n, pv[n]) for n in PROXIES) + ".\n")
            sc = meta.get("s_client", {}).get(cpass, {})
            if sc:
                w("`openssl s_client -brief` (OpenSSL's client defaults, which wrk and curl use too), once per "
                  "proxy:\n")
                w("| | version | suite | group | signature |\n|---|---|---|---|---|")
                for n in PROXIES:
                    d = sc.get(n, {})
                    w("| %s | %s | %s | %s | %s |" % (n, d.get("proto", "?"), d.get("cipher", "?"),
                                                      d.get("group", "?"), d.get("sig", "?")))
                w("")
        w("### (a) Full TLS %s handshakes (new connection + GET 100 B + close, 32 concurrent)\n" % TLS)
        table(cpass, "full", [("conn_per_s", "connections/s", 0), ("cpu_us_per_conn", "proxy CPU µs/conn", 0),
                              ("proxy_cpu_pct", "proxy CPU %", 0), ("client_cpu_pct", "client CPU %", 0),
                              ("errors", "failed connections", 0)])
        tl = res[cpass]["full"]["tlsterm"][0]
        sig = floor.get("ecdsa_p256_sign" if cpass == "ecdsa" else "rsa2048_sign", float("nan"))
        ecdhe = group_floor(tl["_group"])
        af, aname = aead_floor(tl["_cipher"])
        rec = af * 1024 / (1 << 30) * 1e6 if af == af else 0.0
        fl = sig + ecdhe + rec
        cpu = med(res[cpass]["full"]["tlsterm"], "cpu_us_per_conn")
        recs = fmt(rec, 2) + " µs" if (af == af or not t13) else "n/a (no floor for this AEAD; left out)"
        w("Full-handshake floor for tlsterm's negotiation (`%s`): signature %s µs + ECDHE (%s) %s µs + record "
          "work %s = **%s µs**; tlsterm uses %s µs/conn = **%s × floor**.\n"
          % (tl["_cipher"], fmt(sig), tl["_group"], fmt(ecdhe), recs, fmt(fl), fmt(cpu), fmt(ratio(cpu, fl), 2)))
        targets.append(("Full handshake (%s): CPU/conn ≤ 1.15 × crypto floor" % cpass.upper(),
                        "%s µs vs 1.15 × %s = %s µs" % (fmt(cpu), fmt(fl), fmt(1.15 * fl)), cpu <= 1.15 * fl))

        w("### (b) Resumed handshakes (session ticket)\n")
        table(cpass, "resumed", [("conn_per_s", "connections/s", 0), ("cpu_us_per_conn", "proxy CPU µs/conn", 0),
                                 ("resumed_pct", "resumed %", 1), ("proxy_cpu_pct", "proxy CPU %", 0),
                                 ("client_cpu_pct", "client CPU %", 0), ("errors", "failed connections", 0)])
        if t13:
            low = [n for n in PROXIES if not med(res[cpass]["resumed"][n], "resumed_pct") > 90]
            if low:
                w("**Warning**: %s resumed at most 90%% of these handshakes; %s mostly full handshakes.\n"
                  % (", ".join(low), "its row measures" if len(low) == 1 else "their rows measure"))
        t = med(res[cpass]["resumed"]["tlsterm"], "cpu_us_per_conn")
        h = med(res[cpass]["resumed"]["hitch"], "cpu_us_per_conn")
        rp = med(res[cpass]["resumed"]["tlsterm"], "resumed_pct")
        targets.append(("Resumed (%s): CPU/conn ≤ hitch" % cpass.upper(),
                        "%s µs vs hitch %s µs (tlsterm resumed %s%%)" % (fmt(t), fmt(h), fmt(rp)),
                        t <= h and rp > 90))

        w("### (c) Keep-alive (wrk -t1 -c64, GET 100 B)\n")
        table(cpass, "keepalive", [("req_per_s", "requests/s", 0), ("p50_ms", "p50 latency ms", 2),
                                   ("p99_ms", "p99 latency ms", 2), ("cpu_us_per_req", "proxy CPU µs/req", 1),
                                   ("proxy_cpu_pct", "proxy CPU %", 0), ("errors", "non-2xx responses", 0)])
        t = med(res[cpass]["keepalive"]["tlsterm"], "cpu_us_per_req")
        h = med(res[cpass]["keepalive"]["hitch"], "cpu_us_per_req")
        t99 = med(res[cpass]["keepalive"]["tlsterm"], "p99_ms")
        h99 = med(res[cpass]["keepalive"]["hitch"], "p99_ms")
        rf = floor.get("relay_cpu_us_per_req", float("nan"))
        w("Relay floor (`tests/bench/relay_floor.c`: plain TCP, no TLS, one recv and one send per event, same "
          "wrk load over http): **%s µs/req** (%s req/s, p99 %s ms). tlsterm = %s × this floor, hitch = %s ×, "
          "HAProxy = %s ×.\n" % (fmt(rf), fmt(floor.get("relay_req_per_s", float("nan")), 0),
                                 fmt(floor.get("relay_p99_ms", float("nan")), 2), fmt(ratio(t, rf), 2),
                                 fmt(ratio(h, rf), 2),
                                 fmt(ratio(med(res[cpass]["keepalive"]["haproxy"], "cpu_us_per_req"), rf), 2)))
        targets.append(("Keep-alive (%s): CPU/req ≤ 0.8 × hitch" % cpass.upper(),
                        "%s µs vs 0.8 × %s = %s µs" % (fmt(t), fmt(h), fmt(0.8 * h)), t <= 0.8 * h))
        targets.append(("Keep-alive (%s): p99 ≤ hitch" % cpass.upper(),
                        "%s ms vs %s ms" % (fmt(t99, 2), fmt(h99, 2)), t99 <= h99))

        w("### (d) Bulk, 100 MiB per transfer (curl)\n")
        bc = {n: res[cpass]["bulk_down"][n][0]["_cipher"] for n in PROXIES}
        if t13:
            bv = {n: "%s, %s, %s" % (res[cpass]["bulk_down"][n][0].get("_proto", "?"), bc[n],
                                     res[cpass]["bulk_down"][n][0].get("_group", "?")) for n in PROXIES}
            w("Negotiated by curl: " + "; ".join("%s: `%s`" % (n, bv[n]) for n in PROXIES) + ".\n")
        else:
            w("Negotiated by curl: " + "; ".join("%s: `%s`" % (n, bc[n]) for n in PROXIES) + ".\n")
        for d, lab in (("down", "download"), ("up", "upload")):
            w("**%s**\n" % lab)
            table(cpass, "bulk_" + d, [("mib_per_s", "MiB/s", 0), ("cpu_s_per_gib", "proxy CPU s/GiB", 2)])
            af, aname = aead_floor(bc["tlsterm"])
            t = med(res[cpass]["bulk_" + d]["tlsterm"], "cpu_s_per_gib")
            targets.append(("Bulk %s (%s): CPU/GiB ≤ 1.2 × AEAD floor" % (lab, cpass.upper()),
                            "%s s vs 1.2 × %s (%s) = %s s" % (fmt(t, 2), fmt(af, 2), aname, fmt(1.2 * af, 2)),
                            t <= 1.2 * af if af == af else None))
        mems = sorted((int(k[4:]) for k in res[cpass] if k.startswith("mem_")))
        if mems:
            w("### (e) Memory: idle established TLS connections\n")
            if meta.get("nofile", 0) < 200000:
                w("RLIMIT_NOFILE here is %s and cannot be raised (no CAP_SYS_RESOURCE), and a proxy needs two "
                  "descriptors per connection, so the largest size tested is %s instead of 50,000.\n"
                  % (fmt(float(meta["nofile"])), fmt(float(mems[-1]))))
            w("| | " + " | ".join(PROXIES) + " | tlsterm/hitch | tlsterm/haproxy |")
            w("|---|" + "---:|" * (len(PROXIES) + 2))
            vals = [res[cpass]["idle_rss"][n][0]["rss"] / 1024 for n in PROXIES]
            w("| RSS idle after start (KiB) | %s | %s | %s |" % (" | ".join(fmt(v, 0) for v in vals),
              fmt(ratio(vals[0], vals[1]), 2), fmt(ratio(vals[0], vals[2]), 2)))
            for n in mems:
                byp = res[cpass]["mem_%d" % n]
                for key, label, scale in (("rss_with", "RSS with %s conns (KiB)" % fmt(float(n)), 1024),
                                          ("bytes_per_conn", "bytes/conn at %s" % fmt(float(n)), 1),
                                          ("still_open", "still open at %s" % fmt(float(n)), 1),
                                          ("backend_conns", "backend conns at %s" % fmt(float(n)), 1),
                                          ("secs_to_establish", "s to establish %s" % fmt(float(n)), 1)) + \
                        ((("resumed_pct", "resumed %% at %s" % fmt(float(n)), 1),) if t13 else ()):
                    vals = [med(byp[p], key) / scale for p in PROXIES]
                    w("| %s | %s | %s | %s |" % (label, " | ".join(fmt(v, 0 if scale > 1 or "bytes" in key else 1)
                                                                   for v in vals),
                                                 fmt(ratio(vals[0], vals[1]), 2), fmt(ratio(vals[0], vals[2]), 2)))
            w("")
            big = mems[-1]
            b = med(res[cpass]["mem_%d" % big]["tlsterm"], "bytes_per_conn")
            targets.append(("Memory: ≤ 40 KB per idle established connection",
                            "%s bytes/conn at %s conns" % (fmt(b, 0), fmt(float(big))), b <= 40000))

    w("## Targets\n")
    if t13:
        w("The targets were set for TLS 1.2 ([`docs/performance.md`](performance.md)); they are applied "
          "unchanged to the TLS 1.3 figures for reference.\n")
    w("| target | measured | result |\n|---|---|---|")
    for name, meas, ok in targets:
        w("| %s | %s | **%s** |" % (name, meas, "n/a" if ok is None else ("MET" if ok else "MISSED")))
    w("")
    if quick:
        w("_This was a `--quick` run: one run per figure, shorter loads and fewer idle connections; "
          "use a full run for numbers to quote._\n")
    return "\n".join(L) + "\n"


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as e:
        log("interrupted:", e)
        cleanup()
        sys.exit(130)
