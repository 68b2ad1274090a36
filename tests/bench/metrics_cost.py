#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""What the per-worker metrics counters (issue 16, src/metrics.h) cost the
hot path: proxy CPU and instruction counts before and after, with and
without a scraped admin listener.

Driven by `tests/bench/run.sh --metrics-cost [--quick] BASELINE_BIN
[AFTER_BIN]`.  Reuses bench.py's process handling, nginx backend, tlsload
client, wrk run and /proc CPU accounting.

usage: metrics_cost.py [--quick] BASELINE_BIN [AFTER_BIN]

BASELINE_BIN: tlsterm built without the counters (the commit before them,
4404d87); AFTER_BIN: tlsterm with them (default: this checkout, built in
$TMPDIR/tlsterm-bench-build).  Three variants:

  base    BASELINE_BIN
  after   AFTER_BIN, no admin section (the counters are still incremented)
  scrape  AFTER_BIN with `admin: {listen: 127.0.0.1:PORT}`, GET /metrics
          once per second (a harness thread, as Prometheus would) for as
          long as it runs

Part 1, CPU (noisy on a shared machine, hence interleaved): all three run
at once, pinned to CPU 0, `workers: 2`, TLS 1.2, ECDSA P-256 certificate,
in front of one nginx; clients and nginx on CPU 1.  Each round runs (a)
`tlsload hs -c 32` full handshakes and (b) `wrk -t1 -c64` keep-alive
against each variant in turn, the order rotated every round so every
variant takes every position equally often; figures are medians over the
rounds, ratios also per round (paired) then median.

Part 2, instructions (repeatable): each variant alone under
`valgrind --tool=callgrind --separate-threads=yes`, `workers: 1`; after a
warm-up, `callgrind_control --dump` (zeroes), then N full handshakes
(tlsload hs -c 1 -n N) or M keep-alive requests (one TLS connection,
sequential GETs), then `callgrind_control --dump`: that dump holds each
thread's Ir for exactly those operations, start-up and warm-up excluded.
The Ir (all threads) are split by object (mbedTLS, the tlsterm binary,
the rest) and, in the binary, by function: the random ECDSA nonce makes
the crypto's Ir (and the allocations it makes) vary from handshake to
handshake, while tlsterm's own code, where every counter lives, is
deterministic.  The scrape variant also measures the Ir of one GET
/metrics, and every variant the Ir of an idle second (timers).

Writes tests/bench/results/metrics-cost.md.  Loopback only; every process
it starts is stopped by PID, also on failure or Ctrl-C.
"""
import argparse
import datetime
import http.client
import os
import re
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
from bench import log, spawn, stop, pinned, run, free_port, wait_port, tree_cpu, kv, fmt, \
    ratio  # noqa: E402

HERE = bench.HERE
REPO = bench.REPO
OUT = os.path.join(HERE, "results", "metrics-cost.md")
VARIANTS = ["base", "after", "scrape"]
SHORT = {"base": "baseline", "after": "after", "scrape": "after + scrape"}
SCRAPE_EVERY = 1.0


# ------------------------------------------------------------------ daemons
def write_config(tmp, tag, cert, backend, workers, tls13, admin_port=None):
    c, k, _ = cert
    port = free_port()
    yml = os.path.join(tmp, "tlsterm-%s.yaml" % tag)
    with open(yml, "w") as f:
        f.write("""workers: %d
log: {level: warn}
limits: {max_connections: 5000}
listeners:
  - name: bench
    listen: ["127.0.0.1:%d"]
    certificates: [{cert: %s, key: %s}]
    backend: app
backends:
  app: {servers: ["127.0.0.1:%d"]}
""" % (workers, port, c, k, backend))
        if tls13:                 # an mbedTLS 3.6 build: hold it to 1.2 like bench.py
            f.write('tls: {max_version: "1.2"}\n')
        if admin_port:
            f.write('admin: {listen: "127.0.0.1:%d"}\n' % admin_port)
    return yml, port


def start(tmp, tag, argv, ports, timeout=20):
    p = spawn(pinned(bench.PROXY_CPU, argv), stdout=subprocess.DEVNULL,
              stderr=open(os.path.join(tmp, "tlsterm-%s.log" % tag), "w"))
    try:
        for q in ports:
            wait_port(q, p, timeout)
    except RuntimeError:
        with open(os.path.join(tmp, "tlsterm-%s.log" % tag)) as f:
            raise RuntimeError("tlsterm %s did not start: %s" % (tag, f.read()[-2000:]))
    return p


def finish(p):
    stop(p, grace=30)
    if p in bench.started:
        bench.started.remove(p)


# ------------------------------------------------------------------ scrapes
def get_metrics(port):
    """One GET /metrics, as Prometheus does it: a new connection each time."""
    h = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        h.request("GET", "/metrics", headers={"Accept": "text/plain;version=0.0.4"})
        r = h.getresponse()
        body = r.read()
        if r.status != 200:
            raise RuntimeError("GET /metrics: %d" % r.status)
        return body.decode()
    finally:
        h.close()


def metric_sum(text, name):
    t = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            t += float(line.rsplit(None, 1)[1])
    return t


class Scraper(threading.Thread):
    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.n, self.errors, self.bytes = port, 0, 0, 0
        self.halt = threading.Event()

    def run(self):
        nxt = time.monotonic()
        while not self.halt.is_set():
            try:
                self.bytes = len(get_metrics(self.port))
                self.n += 1
            except Exception as e:
                self.errors += 1
                log("scrape failed:", e)
            nxt += SCRAPE_EVERY
            self.halt.wait(max(0.0, nxt - time.monotonic()))


# ------------------------------------------------------------------ part 1
def run_ns(pid):
    """CPU time in ns of all of pid's threads (/proc/PID/task/*/schedstat,
    first field), 0 where the kernel has no schedstat."""
    t = 0
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                t += int(f.read().split()[0])
    except (OSError, ValueError):
        return 0
    return t


def cpu_part(tmp, bins, cert, backend, tlsload, rounds, hs_secs, wrk_secs, meta):
    aport = free_port()
    procs = {}
    for v in VARIANTS:
        b = bins["base" if v == "base" else "after"]
        yml, port = write_config(tmp, "cpu-" + v, cert, backend, 2, bench.has_tls13(b),
                                 aport if v == "scrape" else None)
        procs[v] = (start(tmp, "cpu-" + v, [b, "-c", yml], [port] + ([aport] if v == "scrape" else [])), port)
    time.sleep(1)
    scraper = Scraper(aport)
    scraper.start()
    res = {t: {v: [] for v in VARIANTS} for t in ("full", "keepalive")}
    order_log = []
    client_hs = {v: 0 for v in VARIANTS}   # handshakes the clients saw, for the counter check
    try:
        log("warm-up")
        for v in VARIANTS:
            p, q = procs[v]
            handshakes(tlsload, p, q, 1)
            bench.test_wrk(p, q, 1)
        # the counter check counts from here
        base_hs = metric_sum(get_metrics(aport), "tlsterm_handshakes_total")
        for i in range(rounds):
            order = VARIANTS[i % 3:] + VARIANTS[:i % 3]
            order_log.append(order)
            load = open("/proc/loadavg").read().split()[0]
            for tname in ("full", "keepalive"):
                for v in order:
                    p, q = procs[v]
                    n0 = scraper.n
                    if tname == "full":
                        r = handshakes(tlsload, p, q, hs_secs)
                        client_hs[v] += r["_ok"]
                        log("round %d %-9s %-6s %7.1f µs/conn %6.0f conn/s err=%d" %
                            (i + 1, tname, v, r["cpu_us_per_conn"], r["conn_per_s"], r["errors"]))
                    else:
                        r = bench.test_wrk(p, q, wrk_secs)
                        client_hs[v] += 64
                        log("round %d %-9s %-6s %7.2f µs/req  %6.0f req/s  non2xx=%d %s" %
                            (i + 1, tname, v, r["cpu_us_per_req"], r["req_per_s"], r["errors"], r["_sockerr"]))
                    r["scrapes"] = scraper.n - n0
                    r["load"] = load
                    res[tname][v].append(r)
        scraped = metric_sum(get_metrics(aport), "tlsterm_handshakes_total") - base_hs
        meta["counter_check"] = (scraped, client_hs["scrape"])
        # the cost of one scrape on its own, natively (idle proxy); a few
        # hundred scrapes are a few clock ticks, so this reads the threads'
        # run time in ns (schedstat) too
        p, _ = procs["scrape"]
        n = 300
        c0, s0, t0 = tree_cpu(p.pid), run_ns(p.pid), time.time()
        size = 0
        for _ in range(n):
            size = len(get_metrics(aport))
        ns = run_ns(p.pid)
        meta["scrape_native"] = {"n": n, "cpu_us": (ns - s0) / n / 1e3 if ns and s0 else
                                 (tree_cpu(p.pid) - c0) / n * 1e6,
                                 "wall_ms": (time.time() - t0) / n * 1e3, "bytes": size}
        meta["scrapes"] = (scraper.n, scraper.errors)
    finally:
        scraper.halt.set()
        scraper.join(5)
        for v in VARIANTS:
            if procs.get(v) and procs[v][0].poll() is not None:
                log("WARNING: %s exited early with %s" % (v, procs[v][0].returncode))
            if procs.get(v):
                finish(procs[v][0])
    meta["order"] = order_log
    return res


def handshakes(tlsload, proc, port, secs):
    """bench.test_handshakes (full handshakes), plus "_ok": tlsload's count of
    completed connections, taken from its output on the way through."""
    seen = []
    orig = bench.run

    def spy(argv, timeout, **kw):
        r = orig(argv, timeout, **kw)
        seen.append(r.stdout)
        return r
    bench.run = spy
    try:
        r = bench.test_handshakes(tlsload, proc, port, secs, False)
    finally:
        bench.run = orig
    r["_ok"] = int(kv([l for l in seen[-1].splitlines() if l.startswith("DONE")][0])["ok"])
    return r


# ------------------------------------------------------------------ part 2
class KeepAlive:
    """One TLS 1.2 connection, sequential keep-alive GETs of /100b."""
    REQ = b"GET /100b HTTP/1.1\r\nHost: localhost\r\nUser-Agent: metrics_cost\r\n\r\n"

    def __init__(self, port):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        self.s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=120),
                                 server_hostname="localhost")
        self.buf = b""

    def _more(self):
        d = self.s.recv(65536)
        if not d:
            raise RuntimeError("keep-alive connection closed by tlsterm")
        self.buf += d

    def get(self, n):
        for _ in range(n):
            self.s.sendall(self.REQ)
            while b"\r\n\r\n" not in self.buf:
                self._more()
            head, _, self.buf = self.buf.partition(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError("keep-alive: %r" % head[:40])
            cl = int(re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head).group(1))
            while len(self.buf) < cl:
                self._more()
            self.buf = self.buf[cl:]

    def close(self):
        self.s.close()


def cg_ctl(pid, *args):
    r = run(["callgrind_control"] + list(args) + [str(pid)], 120)
    if r.returncode != 0 or "OK" not in r.stdout:
        raise RuntimeError("callgrind_control %s: %s %s" % (" ".join(args), r.stdout, r.stderr))


# Functions of the tlsterm binary that are not per-operation code: the
# process-wide calloc (src/alloc.c; mbedTLS's bignums call it thousands of
# times per handshake, a number that varies with the random ECDSA nonce),
# and what timers run (once a second or every 5 s, not per operation).
ALLOC_FNS = {"calloc"}
TIMER_FNS = {"worker_beat_cb", "on_status", "metrics_sum_all", "metrics_sum_listener", "notify"}


def parse_dump(path, binary):
    """Exclusive Ir of one callgrind dump (one thread), by object: "mbedtls"
    (libmbedtls, libmbedx509, libmbedcrypto), "tlsterm" (the binary's own
    per-operation code), "alloc" and "timer" (ALLOC_FNS, TIMER_FNS in the
    binary), "other" (libevent, libc, ld.so ...); "total" from the summary
    line; "fns": {function: Ir} for the binary's functions; "alloc_incl":
    calloc's Ir with what it calls (malloc, memset).  The cost line after a
    calls= line is the call's inclusive cost: skipped, but for calloc's."""
    obs, fns, skip = {}, {}, False
    out = {"mbedtls": 0, "tlsterm": 0, "alloc": 0, "timer": 0, "other": 0}
    callees = 0
    per_fn = {}
    total = None
    bname = os.path.realpath(binary)
    ob, fn, bucket = "other", "?", "other"

    def name(table, spec):
        m = re.match(r"\((\d+)\)(?: (.*))?", spec.strip())
        if not m:
            return spec.strip()
        if m.group(2):
            table[m.group(1)] = m.group(2)
        return table.get(m.group(1), "?")

    def group(obj):
        if "libmbed" in obj:
            return "mbedtls"
        if obj.startswith("/") and os.path.realpath(obj) == bname:
            return "tlsterm"
        return "other"

    def which(ob, fn):
        if ob != "tlsterm":
            return ob
        return "alloc" if fn in ALLOC_FNS else "timer" if fn in TIMER_FNS else "tlsterm"
    with open(path) as f:
        for line in f:
            if skip:
                skip = False
                if bucket == "alloc":       # what calloc calls: malloc, memset
                    p = line.split()
                    callees += int(p[1]) if len(p) > 1 else 0
                continue
            c = line[:1]
            if c.isdigit() or c in "+-*":
                p = line.split()
                if len(p) > 1:
                    v = int(p[1])
                    out[bucket] += v
                    if ob == "tlsterm":
                        per_fn[fn] = per_fn.get(fn, 0) + v
            elif line.startswith("ob="):
                ob = group(name(obs, line[3:]))
                bucket = which(ob, fn)
            elif line.startswith("fn="):
                fn = name(fns, line[3:])
                bucket = which(ob, fn)
            elif line.startswith("cob="):
                name(obs, line[4:])
            elif line.startswith("cfn="):
                name(fns, line[4:])
            elif line.startswith("calls="):
                skip = True
            elif line.startswith("summary:"):
                total = int(line.split()[1])
    out["total"] = total if total is not None else sum(out.values())
    if abs(sum(out.values()) - 2 * out["total"]) > 0.001 * out["total"] + 10:
        log("WARNING: %s: per-object Ir %s do not add up to the summary" % (path, out))
    out["alloc_incl"] = out["alloc"] + callees
    out["fns"] = per_fn
    return out


def measured(pid, outbase, label, binary, fn):
    """Ir while fn() runs: dump, fn, dump.  The first dump (thrown away)
    also zeroes; `--zero` alone leaves the costs of threads other than the
    one it interrupts in the next dump's cost lines (not in its summary):
    the main thread's start-up, about 2 M Ir.  With --separate-threads=yes
    each thread has a file of its own (handshakes run on a thread of their
    own, conn_hs_offload); the result is summed over the threads."""
    cg_ctl(pid, "--dump=before-" + label)
    t0 = time.time()
    n = fn()
    wall = time.time() - t0
    cg_ctl(pid, "--dump=" + label)
    d, base = os.path.split(outbase)
    threads = []
    for f in sorted(os.listdir(d)):
        if not re.match(re.escape(base) + r"\.\d+-\d+$", f):
            continue
        path = os.path.join(d, f)
        with open(path) as fh:
            head = fh.read(4096)
        if ("Trigger: dump before-%s\n" % label) in head:
            os.unlink(path)
        elif ("Trigger: dump %s\n" % label) in head:
            threads.append(parse_dump(path, binary))
            os.unlink(path)
    if not threads:
        raise RuntimeError("no callgrind dump for %s" % label)
    r = {k: sum(t[k] for t in threads) for k in threads[0] if k != "fns"}
    r["fns"] = {}
    for t in threads:
        for f, v in t["fns"].items():
            r["fns"][f] = r["fns"].get(f, 0) + v
    r["busy"] = r["total"] - r["timer"]     # the operations' own Ir
    r["n"], r["wall"], r["threads"] = n, wall, len(threads)
    return r


def callgrind_part(tmp, bins, cert, backend, tlsload, n_hs, n_ka, reps, n_scrape, idle_secs, meta):
    res = {v: {"hs": [], "ka": [], "idle": [], "scrape": []} for v in VARIANTS}
    for v in VARIANTS:
        b = bins["base" if v == "base" else "after"]
        aport = free_port() if v == "scrape" else None
        yml, port = write_config(tmp, "cg-" + v, cert, backend, 1, bench.has_tls13(b), aport)
        outbase = os.path.join(tmp, "cg-" + v)
        log("callgrind", v)
        p = start(tmp, "cg-" + v, ["valgrind", "--tool=callgrind", "--vgdb=yes", "--separate-threads=yes",
                                   "--callgrind-out-file=" + outbase, b, "-c", yml],
                  [port] + ([aport] if aport else []), timeout=120)
        try:
            # warm-up: first handshakes, first requests, first scrape
            hs = run(pinned(bench.OTHER_CPU, [tlsload, "hs", "-p", str(port), "-c", "1", "-n", "5", "-d", "300"]),
                     360)
            if "DONE" not in hs.stdout:
                raise RuntimeError("tlsload warm-up: %s %s" % (hs.stdout, hs.stderr))
            if aport:
                get_metrics(aport)

            def do_hs():
                r = run(pinned(bench.OTHER_CPU, [tlsload, "hs", "-p", str(port), "-c", "1", "-n", str(n_hs),
                                                 "-d", "900"]), 960)
                line = [l for l in r.stdout.splitlines() if l.startswith("DONE")]
                if not line:
                    raise RuntimeError("tlsload: %s %s" % (r.stdout, r.stderr))
                d = kv(line[0])
                if int(d["err"]) or int(d["ok"]) != n_hs:
                    raise RuntimeError("tlsload under callgrind: %s" % line[0])
                meta.setdefault("cg_neg", "%s, %s" % (d["cipher"], d["group"]))
                return int(d["ok"])
            for i in range(reps):
                r = measured(p.pid, outbase, "hs-%s-%d" % (v, i), b, do_hs)
                res[v]["hs"].append(r)
                log("  %s: %d full handshakes: %s Ir/handshake (%.1f s)" %
                    (v, r["n"], fmt(r["total"] / r["n"], 0), r["wall"]))
            ka = KeepAlive(port)
            try:
                ka.get(50)

                def do_ka():
                    ka.get(n_ka)
                    return n_ka
                for i in range(reps):
                    r = measured(p.pid, outbase, "ka-%s-%d" % (v, i), b, do_ka)
                    res[v]["ka"].append(r)
                    log("  %s: %d keep-alive requests: %s Ir/request (%.1f s)" %
                        (v, r["n"], fmt(r["total"] / r["n"], 0), r["wall"]))
            finally:
                ka.close()
            time.sleep(0.5)
            r = measured(p.pid, outbase, "idle-%s" % v, b, lambda: time.sleep(idle_secs) or idle_secs)
            res[v]["idle"].append(r)
            if aport:
                def do_scrape():
                    for _ in range(n_scrape):
                        meta["cg_scrape_bytes"] = len(get_metrics(aport))
                    return n_scrape
                r = measured(p.pid, outbase, "scrape-%s" % v, b, do_scrape)
                res[v]["scrape"].append(r)
                log("  %s: one GET /metrics: %s Ir" % (v, fmt(r["total"] / r["n"], 0)))
        finally:
            finish(p)
    return res


# ------------------------------------------------------------------ report
def provenance(binary):
    """'path (commit X of SRC)' from the automake build dir holding binary."""
    bdir = os.path.dirname(os.path.dirname(os.path.abspath(binary)))
    try:
        src = re.search(r"^abs_srcdir = (.*)$", open(os.path.join(bdir, "Makefile")).read(), re.M).group(1)
        c = run(["git", "-C", src, "rev-parse", "--short", "HEAD"], 10).stdout.strip()
        dirty = run(["git", "-C", src, "status", "--porcelain", "--", "src", "configure.ac", "Makefile.am"],
                    10).stdout.strip()
        return "`%s`, built from `%s` at commit %s%s" % (binary, src, c or "?",
                                                         " (src/ modified)" if dirty else "")
    except (OSError, AttributeError):
        return "`%s`" % binary


def med(xs):
    xs = [x for x in xs if x == x]
    return statistics.median(xs) if xs else float("nan")


def pct(r):
    return "%+.2g%%" % ((r - 1) * 100) if r == r else "n/a"


def render(cpu, cg, meta, a):
    L = []
    w = L.append
    quick = meta["quick"]
    w("# Cost of the metrics counters on the hot path (issue 16)\n")
    w("_Generated by `tests/bench/run.sh --metrics-cost%s` (tests/bench/metrics_cost.py) on %s in %.0f s. "
      "Do not edit by hand; rerun the harness._\n"
      % (" --quick" if quick else "", datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), meta["elapsed"]))
    w("Issue 16: collecting the counters costs the hot path no lock (per-worker single-writer counters, "
      "`src/metrics.h`, summed on scrape). This measures what they cost: proxy CPU per full TLS 1.2 "
      "handshake and per keep-alive request, and the instructions (Ir, callgrind) per operation, for the "
      "commit before the counters and the commit that added them, without and with a scraped admin "
      "listener.\n")
    w("## Result\n")
    fh = {v: med([r["cpu_us_per_conn"] for r in cpu["full"][v]]) for v in VARIANTS}
    fk = {v: med([r["cpu_us_per_req"] for r in cpu["keepalive"][v]]) for v in VARIANTS}

    def paired(t, key, v):
        return [x[key] / y[key] for x, y in zip(cpu[t][v], cpu[t]["base"])]
    def per_op(kind, key):
        return {v: statistics.mean([r[key] / r["n"] for r in cg[v][kind]]) for v in VARIANTS}
    ir = {(k, key): per_op(k, key) for k in ("hs", "ka") for key in ("busy", "tlsterm")}
    w("| per operation | %s | %s | %s | after / baseline | after+scrape / baseline |" %
      tuple(SHORT[v] for v in VARIANTS))
    w("|---|---:|---:|---:|---:|---:|")

    def row(label, d, nd, rd):
        w("| %s | %s | %s | %s | %s | %s |" % (label, fmt(d["base"], nd), fmt(d["after"], nd),
                                               fmt(d["scrape"], nd), fmt(ratio(d["after"], d["base"]), rd),
                                               fmt(ratio(d["scrape"], d["base"]), rd)))
    row("full handshake: proxy CPU µs (median of %d rounds)" % len(cpu["full"]["base"]), fh, 0, 3)
    row("keep-alive request: proxy CPU µs (median of %d rounds)" % len(cpu["keepalive"]["base"]), fk, 2, 3)
    for k, name in (("hs", "full handshake"), ("ka", "keep-alive request")):
        row("%s: Ir, whole process" % name, ir[(k, "busy")], 0, 4)
        row("%s: Ir, tlsterm's own code" % name, ir[(k, "tlsterm")], 0, 4)
    w("")
    ph = {v: paired("full", "cpu_us_per_conn", v) for v in ("after", "scrape")}
    pk = {v: paired("keepalive", "cpu_us_per_req", v) for v in ("after", "scrape")}
    w("Paired per round (each variant's figure over the baseline's in the same round), median [min, max]: "
      "full handshake after %s [%s, %s], after + scrape %s [%s, %s]; keep-alive after %s [%s, %s], "
      "after + scrape %s [%s, %s].\n" % tuple(
          fmt(x, 3) for x in (med(ph["after"]), min(ph["after"]), max(ph["after"]),
                              med(ph["scrape"]), min(ph["scrape"]), max(ph["scrape"]),
                              med(pk["after"]), min(pk["after"]), max(pk["after"]),
                              med(pk["scrape"]), min(pk["scrape"]), max(pk["scrape"]))))

    lo = min(min(ph["after"]), min(pk["after"]))
    hi = max(max(ph["after"]), max(pk["after"]))
    pred_k = ir[("ka", "busy")]["after"] / ir[("ka", "busy")]["base"]
    pred_h = 1 + (ir[("hs", "tlsterm")]["after"] - ir[("hs", "tlsterm")]["base"]) / ir[("hs", "busy")]["base"]
    off = max(abs(med(x) - 1) for x in (ph["after"], ph["scrape"], pk["after"], pk["scrape"]))
    w("What the CPU timing can resolve here: the after/baseline ratio of a single round ranged from %s to "
      "%s, while the instruction counts below put the difference at %s per keep-alive request and %s per "
      "full handshake. %s The instruction counts are the measurement.\n"
      % (fmt(lo, 3), fmt(hi, 3), pct(pred_k), pct(pred_h),
         ("A difference that small cannot show in CPU time on this machine; %s." %
          ("none did (the paired medians are within %.1f%% of 1)" % (off * 100) if off < 0.03 else
           "where the paired medians differ from 1 (by up to %.1f%%), that is noise, not the counters"
           % (off * 100)))
         if hi - lo > 10 * max(abs(pred_k - 1), abs(pred_h - 1)) else
         "The CPU figures were steady enough to see a difference of that size."))

    def spread(kind, key, v):
        xs = [r[key] / r["n"] for r in cg[v][kind]]
        return max(xs) - min(xs)
    dh = ir[("hs", "tlsterm")]["after"] - ir[("hs", "tlsterm")]["base"]
    dhw = ir[("hs", "busy")]["after"] - ir[("hs", "busy")]["base"]
    dk = ir[("ka", "tlsterm")]["after"] - ir[("ka", "tlsterm")]["base"]
    dkw = ir[("ka", "busy")]["after"] - ir[("ka", "busy")]["base"]
    w("*tlsterm's own code* = the Ir of all threads in the tlsterm binary, without its process-wide "
      "`calloc` (src/alloc.c, which mbedTLS's bignums call thousands of times per handshake) and without "
      "the timer callbacks (`%s`): where every counter lives, and deterministic. *Whole process* leaves "
      "out the timer callbacks too: under valgrind a 5 s timer fires within the measured operations or "
      "not, by chance (the raw figures, timers included, are in the table at the end).\n"
      % "`, `".join(sorted(TIMER_FNS)))
    w("The counters' instructions: **%+.0f Ir per keep-alive request** (%s of the request's %s; %+.0f of "
      "them in tlsterm's own code, the rest in libevent and libc), **%+.0f Ir per full handshake in "
      "tlsterm's own code** (%s of the handshake's %s), plus, natively, the `clock_gettime` calls (vDSO) "
      "of the handshake and backend-connect timings, which valgrind turns into system calls and does not "
      "count. Keep-alive Ir repeat to within %s Ir per request between repetitions; a handshake's whole Ir "
      "do not (mbedTLS's ECDSA signature draws a random nonce, so its bignum work and its allocations "
      "vary: a handshake moved by up to %s Ir between repetitions of one binary, and by %+.0f between the "
      "means of baseline and after), which is why the handshake delta is taken in tlsterm's own code. "
      "Where the instructions go, per function:\n"
      % (dkw, pct(1 + dkw / ir[("ka", "busy")]["base"]), fmt(ir[("ka", "busy")]["base"], 0), dk,
         dh, pct(1 + dh / ir[("hs", "busy")]["base"]), fmt(ir[("hs", "busy")]["base"], 0),
         fmt(max(spread("ka", "busy", v) for v in VARIANTS), 0),
         fmt(max(spread("hs", "busy", v) for v in VARIANTS), 0), dhw))
    w("| function (tlsterm binary, all threads) | full handshake: baseline Ir | after | Δ | keep-alive "
      "request: baseline Ir | after | Δ |")
    w("|---|---:|---:|---:|---:|---:|---:|")
    fn = {}
    for k in ("hs", "ka"):
        for v in ("base", "after"):
            for r in cg[v][k]:
                for f, x in r["fns"].items():
                    fn.setdefault(f, {}).setdefault((k, v), []).append(x / r["n"])
    rows = []
    for f, d in fn.items():
        m = {kv_: statistics.mean(xs) for kv_, xs in d.items()}
        g = [m.get((k, v), 0.0) for k in ("hs", "ka") for v in ("base", "after")]
        if f not in ALLOC_FNS | TIMER_FNS and (abs(g[1] - g[0]) >= 2 or abs(g[3] - g[2]) >= 1):
            rows.append((f, g))
    rows.sort(key=lambda x: -(abs(x[1][1] - x[1][0]) + abs(x[1][3] - x[1][2])))
    for f, g in rows:
        w("| `%s` | %s | %s | %+.0f | %s | %s | %+.1f |" % (f, fmt(g[0], 0), fmt(g[1], 0), g[1] - g[0],
                                                           fmt(g[2], 1), fmt(g[3], 1), g[3] - g[2]))
    w("\nFunctions with a change of at least 2 Ir per handshake or 1 Ir per request; the counters are "
      "inlined (`metrics_add` is a relaxed load, add and store), so they show up in their callers; "
      "`metrics_observe` is the histogram of handshake and backend-connect times. Small negative and "
      "positive changes in the close path (`conn_closef`, `tls_last_error`, `conn_close_tls`, "
      "`conn_drain_client`) and the relay (`pump_up`, `conn_relay`) are timing, not code: whether the "
      "client's close or the backend's arrives first differs from handshake to handshake, in both builds; "
      "they move the handshake's own-code delta by a few dozen Ir from run to run.\n")
    sn = meta.get("scrape_native", {})
    sc = cg["scrape"]["scrape"][0] if cg["scrape"]["scrape"] else None
    if sc:
        ir_scrape = sc["total"] / sc["n"]
        rate_h = med([r["conn_per_s"] for r in cpu["full"]["scrape"]])
        rate_k = med([r["req_per_s"] for r in cpu["keepalive"]["scrape"]])
        cus = sn.get("cpu_us", float("nan"))
        w("One scrape (GET /metrics, %s bytes, rendered on the admin thread) costs **%s Ir** under callgrind "
          "(whole process) and **%s µs of CPU** natively (mean of %d back-to-back scrapes of the idle proxy, "
          "%s ms each end to end). At one scrape per second that is %s%% of one core, or, spread over the "
          "rates measured here on one core (%s full handshakes/s, %s keep-alive requests/s), %s Ir per "
          "handshake and %s Ir per request. The scrape runs on the admin thread and reads the workers' "
          "counters with relaxed loads, taking no lock a worker takes.\n"
          % (fmt(float(meta.get("cg_scrape_bytes", sn.get("bytes", 0))), 0), fmt(ir_scrape, 0), fmt(cus),
             sn.get("n", 0), fmt(sn.get("wall_ms", float("nan")), 2), "%.3f" % (cus / 1e4),
             fmt(rate_h, 0), fmt(rate_k, 0), fmt(ir_scrape / rate_h, 0), fmt(ir_scrape / rate_k, 1)))
        share = sc["alloc_incl"] / sc["total"]
        if share > 0.5:
            w("**%.0f%% of a scrape's instructions are `calloc` and what it calls** (malloc, memset): "
              "`certificates()` in src/metrics_text.c allocates and zeroes room for MAX_CERTS (4096) "
              "`struct tls_cert_info` (about 2.5 MB) on every scrape to list the few certificates loaded, "
              "and src/alloc.c's `calloc` always runs memset, where glibc's would take fresh zero pages "
              "from mmap without one (src/status.c does the same for /status). Sizing the array by the "
              "number of certificates would leave about %s Ir per scrape.\n"
              % (share * 100, fmt(ir_scrape * (1 - share), 0)))
    idle = {v: cg[v]["idle"][0]["total"] / cg[v]["idle"][0]["wall"] for v in VARIANTS}
    w("Idle, no load (whole process, %.0f s): %s Ir/s baseline, %s after, %s after with the admin "
      "listener. The after build's extra is time-driven, not per operation: the main thread's systemd "
      "`STATUS=` line every 5 s (`on_status`, which sums all %d listener slots of every worker, also when "
      "not run by systemd) and each worker's 1 s heartbeat (`worker_beat_cb`).\n"
      % (cg["base"]["idle"][0]["wall"], fmt(idle["base"], 0), fmt(idle["after"], 0), fmt(idle["scrape"], 0),
         128))
    cc = meta.get("counter_check")
    if cc:
        w("Counter check: over the measured rounds the scraped instance's `tlsterm_handshakes_total` rose "
          "by %s; its clients counted %s (tlsload's completed connections plus wrk's 64 per run).\n"
          % (fmt(float(cc[0]), 0), fmt(float(cc[1]), 0)))

    w("## Reproduce\n")
    w("```sh\n# the commit before the counters and the commit that added them, out-of-tree builds\n"
      "git worktree add /root/wt-base 4404d87 && (cd /root/wt-base && ./autogen.sh)\n"
      "git worktree add /root/wt-after 1092044 && (cd /root/wt-after && ./autogen.sh)\n"
      "mkdir -p /root/bbase-mc && cd /root/bbase-mc && /root/wt-base/configure -q CC=gcc && "
      "make -s -j2 src/tlsterm\n"
      "mkdir -p /root/bafter && cd /root/bafter && /root/wt-after/configure -q CC=gcc && "
      "make -s -j2 src/tlsterm\n"
      "cd /work/main && tests/bench/run.sh --metrics-cost%s /root/bbase-mc/src/tlsterm "
      "/root/bafter/src/tlsterm\n```\n" % (" --quick" if quick else ""))
    w("Without AFTER_BIN the harness builds the checkout it runs from (bench.py's `build_tlsterm`).\n")
    w("Run as root on a machine with at least 2 CPUs; needs nginx, wrk, valgrind (callgrind_control) and "
      "a C compiler for tlsload. A full run takes about 7 minutes, `--quick` about 2. Loopback only; "
      "every process the harness starts is stopped by PID.\n")
    w("## Environment\n")
    w("- **baseline**: %s" % meta["prov"]["base"])
    w("- **after**: %s" % meta["prov"]["after"])
    w("- **tlsterm -V** (after): %s" % meta["version"])
    w("- **cpu**: %s; kernel %s; %s" % (meta["cpu"], os.uname().release, meta["valgrind"]))
    w("- **1-min load average** at start / end: %s / %s; per round (at its start): %s. The harness itself "
      "adds about 2; more means other jobs shared the machine: the CPU figures are noisy, the Ir are not."
      % (meta["load_start"], meta["load_end"],
         ", ".join(r["load"] for r in cpu["full"]["base"])))
    w("")
    w("## Method\n")
    w("""- **Variants**: *baseline* = the binary without counters; *after* = the binary with them and no
  `admin` section (the counters are incremented all the same); *after + scrape* = the same binary with
  `admin: {listen: "127.0.0.1:PORT"}`, and a harness thread doing `GET /metrics` (new connection each
  time, as Prometheus does) once per second for as long as the CPU part runs.
- **Config**: one listener, ECDSA P-256 certificate, `log: {level: warn}`, one nginx backend
  (bench.py's: `worker_processes 1`, keep-alive, a 100-byte file); TLS 1.2 (these builds are on mbedTLS
  2.28; negotiated under callgrind: `%s`).
- **CPU part**: the three variants run at once, each `workers: 2`, pinned to CPU 0 (`taskset`); nginx,
  the clients and the harness (with its scrape thread) on CPU 1. A warm-up (1 s of each load per
  variant), then %d rounds; each round runs (a) `tlsload hs -c 32 -d %d` (new connection, full
  handshake, GET /100b, close) against each variant in turn, then (b) `wrk -t1 -c64 -d%ds` (keep-alive
  GET /100b) against each in turn, the order rotated every round (%s) so that every variant sits in
  every position equally often and drift on this shared machine hits all three alike. Proxy CPU =
  utime+stime of the tlsterm process (all threads, the admin thread included) from `/proc/PID/stat`,
  read before and after each load (bench.py's `test_handshakes` and `test_wrk`), divided by the
  connections or requests served. Figures are medians over the rounds.
- **Instruction part**: each variant alone under `valgrind --tool=callgrind --separate-threads=yes`,
  `workers: 1`, pinned to CPU 0. Warm-up (5 handshakes, 50 requests, one scrape), then for each
  measurement `callgrind_control --dump` (thrown away: it zeroes the counts), the operations,
  `callgrind_control --dump`: that dump holds the Ir of every thread for exactly those operations,
  start-up and warm-up excluded. (`--zero` would do for the summary, but it leaves the start-up costs
  of the threads it did not interrupt, about 2 M Ir, in the next dump's per-function lines.) Full
  handshakes: `tlsload hs -c 1 -n %d` (sequential: connection, full handshake, GET /100b, close), %d
  time(s); keep-alive: one TLS 1.2 connection (Python `ssl`, from the harness), %d sequential GET /100b,
  %d time(s); figures are the mean. Ir are user-space instructions only (no kernel time, and no vDSO:
  under valgrind `clock_gettime` is a system call). Ir (all threads) are split by object and, in
  the tlsterm binary, by function (*tlsterm's own code* leaves out its `calloc` and its timer
  callbacks). One scrape = the Ir of %d sequential GET /metrics on the idle after + admin process
  (all threads), divided by %d. *Idle* = %d s without load.
- **Native cost of a scrape**: 300 back-to-back GET /metrics on the idle after + admin instance of the
  CPU part; CPU time of all its threads from `/proc/PID/task/*/schedstat` (ns).
""" % (meta.get("cg_neg", "?"), len(cpu["full"]["base"]), a["hs_secs"], a["wrk_secs"],
       "; ".join("/".join(SHORT[v] for v in o) for o in meta["order"][:3]),
       a["n_hs"], a["reps"], a["n_ka"], a["reps"], a["n_scrape"], a["n_scrape"], a["idle_secs"]))
    w("## All figures\n")
    w("### CPU part, per round\n")
    w("| round | load | variant | full: µs/conn | conn/s | failed | keep-alive: µs/req | req/s | p99 ms | "
      "non-2xx | scrapes in the loads |")
    w("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for i in range(len(cpu["full"]["base"])):
        for v in meta["order"][i]:
            f, k = cpu["full"][v][i], cpu["keepalive"][v][i]
            w("| %d | %s | %s | %s | %s | %d | %s | %s | %s | %d | %s |" %
              (i + 1, f["load"], SHORT[v], fmt(f["cpu_us_per_conn"]), fmt(f["conn_per_s"], 0), f["errors"],
               fmt(k["cpu_us_per_req"], 2), fmt(k["req_per_s"], 0), fmt(k["p99_ms"], 2), k["errors"],
               str(f["scrapes"] + k["scrapes"]) if v == "scrape" else "-"))
    w("")
    w("### Instruction part (callgrind)\n")
    w("Ir per operation (per second for *idle*), all threads, split by object: mbedTLS (libmbedtls, "
      "libmbedx509, libmbedcrypto); tlsterm's own code; the binary's `calloc`; its timer callbacks; "
      "everything else (libevent, libc, ld.so).\n")
    w("| variant | measurement | operations | Ir | mbedTLS | tlsterm code | calloc | timers | other | "
      "threads | wall s |")
    w("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for v in VARIANTS:
        for kind, name in (("hs", "full handshakes"), ("ka", "keep-alive requests"), ("idle", "idle seconds"),
                           ("scrape", "GET /metrics")):
            for r in cg[v][kind]:
                n = r["n"] if kind != "idle" else r["wall"]
                w("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %d | %.1f |" %
                  (SHORT[v], name, fmt(float(r["n"]), 0), fmt(r["total"] / n, 0), fmt(r["mbedtls"] / n, 0),
                   fmt(r["tlsterm"] / n, 0), fmt(r["alloc"] / n, 0), fmt(r["timer"] / n, 0),
                   fmt(r["other"] / n, 0), r["threads"], r["wall"]))
    w("")
    if quick:
        w("_This was a `--quick` run (fewer rounds, shorter loads, fewer operations under callgrind); use a "
          "full run for figures to quote._\n")
    return "\n".join(L) + "\n"


# ------------------------------------------------------------------ main
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--metrics-cost", action="store_true", help=argparse.SUPPRESS)  # run.sh's mode switch
    ap.add_argument("baseline")
    ap.add_argument("after", nargs="?")
    a = ap.parse_args()
    q = a.quick
    args = {"rounds": 3 if q else 9, "hs_secs": 3 if q else 4, "wrk_secs": 3 if q else 4,
            "n_hs": 30 if q else 100, "n_ka": 500 if q else 2000, "reps": 1 if q else 2,
            "n_scrape": 10 if q else 20, "idle_secs": 5 if q else 10}
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except Exception:
        pass
    signal.signal(signal.SIGTERM, bench.on_signal)
    signal.signal(signal.SIGHUP, bench.on_signal)
    if os.cpu_count() < 2:
        bench.OTHER_CPU = "0"
    # the harness (keep-alive client, scrape thread) stays off the proxies' CPU
    os.sched_setaffinity(0, {int(bench.OTHER_CPU)})
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    bench.NOFILE = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    bench.ensure_tools()
    if not shutil.which("valgrind") or not shutil.which("callgrind_control"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "valgrind"], check=True,
                       env=env, timeout=600)
    meta = {"quick": q, "load_start": open("/proc/loadavg").read().split()[0]}
    tmp = tempfile.mkdtemp(prefix="tlsterm-mcost-")
    t_start = time.time()
    try:
        base = os.path.abspath(a.baseline)
        after = os.path.abspath(a.after) if a.after else \
            bench.build_tlsterm(os.path.join(tempfile.gettempdir(), "tlsterm-bench-build"))
        bins = {"base": base, "after": after}
        meta["prov"] = {"base": provenance(base), "after": provenance(after)}
        meta["version"] = " / ".join(run([after, "-V"], 10).stdout.strip().splitlines())
        lscpu = run(["lscpu"], 10).stdout
        m = re.search(r"Model name:\s+(.*)", lscpu)
        meta["cpu"] = "%s, %d CPUs" % (m.group(1) if m else "?", os.cpu_count())
        meta["valgrind"] = run(["valgrind", "--version"], 10).stdout.strip()
        tlsload = os.path.join(tmp, "tlsload")
        subprocess.run(["cc", "-O2", "-o", tlsload, os.path.join(HERE, "tlsload.c"), "-lssl", "-lcrypto"],
                       check=True)
        cert = bench.make_certs(tmp)["ecdsa"]
        nginx, bport, _ = bench.start_nginx(tmp)
        log("part 1: CPU, %d interleaved rounds" % args["rounds"])
        cpu = cpu_part(tmp, bins, cert, bport, tlsload, args["rounds"], args["hs_secs"], args["wrk_secs"], meta)
        log("part 2: instructions (callgrind)")
        cg = callgrind_part(tmp, bins, cert, bport, tlsload, args["n_hs"], args["n_ka"], args["reps"],
                            args["n_scrape"], args["idle_secs"], meta)
        meta["load_end"] = open("/proc/loadavg").read().split()[0]
        meta["elapsed"] = time.time() - t_start
        md = render(cpu, cg, meta, args)
        os.makedirs(os.path.dirname(OUT), exist_ok=True)
        with open(OUT, "w") as f:
            f.write(md)
        log("wrote", os.path.relpath(OUT, REPO))
        sys.stdout.write(md)
    finally:
        bench.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as e:
        log("interrupted:", e)
        bench.cleanup()
        sys.exit(130)
