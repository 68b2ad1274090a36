#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""Handshake flood benchmark (issue 13: a handshake flood must not starve
established connections): tlsterm vs hitch vs HAProxy in front of nginx.

Driven by tests/bench/flood.sh; regenerates docs/performance-flood.md and
tests/bench/results/flood.tsv.  Each proxy runs ONE worker pinned to one CPU;
nginx, wrk and the tlsload clients run on the other.  Loopback only; every
process it starts is stopped by PID when it exits, also on failure or Ctrl-C.

usage: flood.py [--quick] [--runs N] [--baseline BIN] [TLSTERM_BIN]

Phases, every proxy in turn (TLS 1.2, ECDSA P-256 certificate):
  alone    wrk keep-alive load alone
  ref      the same plus the paced bystander (its no-flood reference)
  many     wrk while a full-handshake flood comes from 200 addresses
  one      wrk and the bystander while the flood comes from one address
  one_lim  the same against a second instance with per-address limits
"""
import argparse
import datetime
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402  (the side-by-side harness: process and cert helpers)

REPO = bench.REPO
MD_NAME = "docs/performance-flood.md"
TSV_NAME = "flood.tsv"

WRK_CONNS = 8
FLOOD_CONC = 64
FLOOD_ADDRS = 200         # many-address flood: 127.0.0.2 .. 127.0.0.201
FLOOD_LEAD = 2            # s the flood runs before wrk starts and after it ends
BYSTANDER_ADDR = "127.0.0.50"
BYSTANDER_CONC = 2
BYSTANDER_RATE = 20       # new connections/s: well under the per-address limit
LIMIT_CONNS = 64          # per_address.connections
LIMIT_RATE = 50           # per_address.handshakes_per_second
LIMIT_BURST = 50          # per_address.handshake_burst
FLOOD_NICE = 0            # --flood-nice: > 0 makes the flood yield the client core to wrk
SETTLE = 2                # s of quiet after a phase, for queued handshakes to drain

NO_LIMITS_HITCH = "n/a (hitch has no per-address limits)"
NO_LIMITS_BASE = "n/a (baseline runs without per_address)"
NO_LIMITS_CONF = "config not supported by this binary"

# (name, instance, flood addresses or 0, bystander)
PHASES = [("alone", "plain", 0, False),
          ("ref", "plain", 0, True),
          ("many", "plain", FLOOD_ADDRS, False),
          ("one", "plain", 1, True),
          ("one_lim", "limited", 1, True)]


def log(*a):
    print("[flood %s]" % time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


# ------------------------------------------------------------------- proxies
class Proxy:
    """One proxy under test: a plain instance and, where it has per-address
    limits, a second instance with them (else `lim_note` says why not)."""

    def __init__(self, label):
        self.label = label
        self.inst = {}            # "plain" / "limited" -> (Popen, port)
        self.lim_note = None
        self.dead = {}            # instance -> why it is no longer measured


def tlsterm_yaml(path, port, cert, backend, tlsterm, limits):
    c, k, _ = cert
    lim = "limits:\n  max_connections: 100000\n"
    if limits:
        lim += ("  per_address:\n    connections: %d\n    handshakes_per_second: %d\n"
                "    handshake_burst: %d\n" % (LIMIT_CONNS, LIMIT_RATE, LIMIT_BURST))
    with open(path, "w") as f:
        f.write("""workers: 1
log: {level: warn}
%slisteners:
  - name: flood
    listen: ["127.0.0.1:%d"]
    certificates: [{cert: %s, key: %s}]
    backend: app
backends:
  app: {servers: ["127.0.0.1:%d"]}
""" % (lim, port, c, k, backend))
        if bench.has_tls13(tlsterm):   # an mbedTLS 3.6 build: hold it to 1.2 like the others
            f.write('tls: {max_version: "1.2"}\n')


def start_tlsterm(tmp, tlsterm, tag, cert, backend, limits=False):
    """(Popen, port), or None if this binary refuses the configuration."""
    port = bench.free_port()
    yml = os.path.join(tmp, "tlsterm-%s.yaml" % tag)
    tlsterm_yaml(yml, port, cert, backend, tlsterm, limits)
    chk = bench.run([tlsterm, "-t", "-c", yml], 30)
    if chk.returncode != 0:
        log("%s refuses %s: %s" % (tag, yml, (chk.stdout + chk.stderr).strip()[-300:]))
        return None
    p = bench.spawn(bench.pinned(bench.PROXY_CPU, [tlsterm, "-c", yml]), stdout=subprocess.DEVNULL,
                    stderr=open("%s/%s.log" % (tmp, tag), "w"))
    return p, port


def start_hitch(tmp, cert, backend):
    port = bench.free_port()
    p = bench.spawn(bench.pinned(bench.PROXY_CPU, [
        "hitch", "--backend=[127.0.0.1]:%d" % backend, "--frontend=[127.0.0.1]:%d" % port,
        "--workers=1", "--tls-protos=TLSv1.2", "--daemon=off", "--backlog=4096",
        "--ocsp-dir=%s" % tmp, "--log-level=1", "--user=nobody", "--group=nogroup", cert[2]]),
        stdout=subprocess.DEVNULL, stderr=open("%s/hitch.log" % tmp, "w"))
    return p, port


HAPROXY_LIMITS = """  stick-table type ip size 100k expire 30s store conn_cur,conn_rate(1s)
  tcp-request connection track-sc0 src
  tcp-request connection reject if { sc0_conn_rate gt %d }
  tcp-request connection reject if { sc0_conn_cur gt %d }
""" % (LIMIT_RATE, LIMIT_CONNS)


def start_haproxy(tmp, cert, backend, limits=False):
    port = bench.free_port()
    tag = "haproxy-limits" if limits else "haproxy"
    cfg = os.path.join(tmp, tag + ".cfg")
    with open(cfg, "w") as f:
        f.write(bench.haproxy_cfg(1, port, cert[2], "1.2", backend,
                                  HAPROXY_LIMITS if limits else ""))
    p = bench.spawn(bench.pinned(bench.PROXY_CPU, ["haproxy", "-db", "-f", cfg]),
                    stdout=subprocess.DEVNULL, stderr=open("%s/%s.log" % (tmp, tag), "w"))
    return p, port


def start_all(tmp, tlsterm, baseline, cert, backend):
    proxies = []
    t = Proxy("tlsterm")
    t.inst["plain"] = start_tlsterm(tmp, tlsterm, "tlsterm", cert, backend)
    lim = start_tlsterm(tmp, tlsterm, "tlsterm-limits", cert, backend, limits=True)
    if lim:
        t.inst["limited"] = lim
    else:
        t.lim_note = NO_LIMITS_CONF
    proxies.append(t)
    if baseline:
        b = Proxy("tlsterm (baseline)")
        b.inst["plain"] = start_tlsterm(tmp, baseline, "baseline", cert, backend)
        b.lim_note = NO_LIMITS_BASE
        proxies.append(b)
    h = Proxy("hitch")
    h.inst["plain"] = start_hitch(tmp, cert, backend)
    h.lim_note = NO_LIMITS_HITCH
    proxies.append(h)
    a = Proxy("haproxy")
    a.inst["plain"] = start_haproxy(tmp, cert, backend)
    a.inst["limited"] = start_haproxy(tmp, cert, backend, limits=True)
    proxies.append(a)
    for px in proxies:
        if px.inst["plain"] is None:
            raise RuntimeError("%s refused its plain configuration (see the log above)" % px.label)
        for p, port in px.inst.values():
            bench.wait_port(port, p)
    time.sleep(1)
    return proxies


# ------------------------------------------------------------------ measures
def core_times():
    """{cpu: (total jiffies, idle+iowait jiffies)} from /proc/stat"""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                v = [int(x) for x in line.split()[1:9]]
                out[line.split()[0][3:]] = (sum(v), v[3] + v[4])
    return out


def tcp_counters():
    """the TcpExt counters that show dropped SYNs (system-wide)"""
    with open("/proc/net/netstat") as f:
        lines = f.read().splitlines()
    for names, vals in zip(lines[::2], lines[1::2]):
        if names.startswith("TcpExt:"):
            d = dict(zip(names.split()[1:], (int(v) for v in vals.split()[1:])))
            return {k: d.get(k, 0) for k in ("ListenDrops", "ListenOverflows", "TCPSynRetrans")}
    return {}


def core_busy_pct(a, b, cpu):
    total, idle = b[cpu][0] - a[cpu][0], b[cpu][1] - a[cpu][1]
    return 100.0 * (1 - idle / total) if total else float("nan")


def parse_wrk(out, err=""):
    def need(pat):
        m = re.search(pat, out, re.M)
        if not m:
            raise RuntimeError("wrk: %s" % (out + err).strip()[-300:])
        return m.group(1)
    t = re.search(r"timeout (\d+)", out)
    n2 = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"requests": int(need(r"(\d+) requests in")), "req_per_s": float(need(r"Requests/sec:\s+([\d.]+)")),
            "p50_ms": bench.to_ms(need(r"^\s+50%\s+(\S+)")), "p99_ms": bench.to_ms(need(r"^\s+99%\s+(\S+)")),
            "timeouts": int(t.group(1)) if t else 0, "non2xx": int(n2.group(1)) if n2 else 0}


def wrk_window(proc, port, secs):
    """wrk keep-alive load; the proxy's CPU and both cores' use over its run"""
    c0, k0, n0, t0 = bench.tree_cpu(proc.pid), core_times(), tcp_counters(), time.time()
    r = bench.run(bench.pinned(bench.OTHER_CPU, [
        "wrk", "-t1", "-c%d" % WRK_CONNS, "-d%ds" % secs, "--timeout", "10s", "--latency",
        "https://127.0.0.1:%d/100b" % port]), timeout=secs + 60)
    c1, k1, n1, t1 = bench.tree_cpu(proc.pid), core_times(), tcp_counters(), time.time()
    d = parse_wrk(r.stdout, r.stderr)
    d["cpu_us_per_req"] = (c1 - c0) / d["requests"] * 1e6 if d["requests"] else float("nan")
    d["proxy_cpu_pct"] = (c1 - c0) / (t1 - t0) * 100
    d["proxy_core_pct"] = core_busy_pct(k0, k1, bench.PROXY_CPU)
    d["client_core_pct"] = core_busy_pct(k0, k1, bench.OTHER_CPU)
    d["listen_drops"] = n1.get("ListenDrops", 0) - n0.get("ListenDrops", 0)
    d["syn_retrans"] = n1.get("TCPSynRetrans", 0) - n0.get("TCPSynRetrans", 0)
    return d


def tlsload_start(tlsload, port, secs, conc, nsrc, first=None, rate=None, nice=0):
    argv = ["nice", "-n", str(nice)] if nice else []
    argv += [tlsload, "hs", "-p", str(port), "-c", str(conc), "-d", str(secs), "-S", str(nsrc)]
    argv += ["-s", first] if first else []
    argv += ["-R", str(rate)] if rate else []
    return bench.spawn(bench.pinned(bench.OTHER_CPU, argv), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)


def tlsload_finish(p, timeout):
    """the DONE line of a tlsload started by tlsload_start, as numbers"""
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        bench.stop(p)
        out, err = p.communicate()
    finally:
        bench.started.remove(p)
    line = [l for l in out.splitlines() if l.startswith("DONE")]
    if not line:
        raise RuntimeError("tlsload: %s %s" % (out.strip()[-200:], err.strip()[-200:]))
    d = bench.kv(line[0])
    secs, ok, bad = float(d["secs"]), int(d["ok"]), int(d["err"])

    def ms(k):
        v = float(d.get(k, -1))
        return v if v >= 0 else float("nan")
    return {"hs_per_s": ok / secs, "attempts_per_s": (ok + bad) / secs, "ok": ok, "err": bad,
            "local_err": int(d.get("lerr", 0)),
            "secs": secs, "p50_ms": ms("p50_ms"), "p99_ms": ms("p99_ms"),
            "client_cpu_pct": float(d["client_cpu_s"]) / secs * 100,
            "_cipher": d.get("cipher", "?"), "_group": d.get("group", "?")}


def run_phase(tlsload, proc, port, secs, flood, bystander):
    """wrk for secs; a flood from `flood` addresses (0: none) running from
    FLOOD_LEAD s before to FLOOD_LEAD s after it; a paced bystander alongside"""
    clients = {}   # key prefix -> tlsload Popen
    try:
        if flood:
            clients["flood_"] = tlsload_start(tlsload, port, secs + 2 * FLOOD_LEAD, FLOOD_CONC, flood,
                                             nice=FLOOD_NICE)
            time.sleep(FLOOD_LEAD)
        if bystander:
            clients["by_"] = tlsload_start(tlsload, port, secs, BYSTANDER_CONC, 1, BYSTANDER_ADDR,
                                           BYSTANDER_RATE)
        r = wrk_window(proc, port, secs)
        for pre in list(clients):
            d = tlsload_finish(clients.pop(pre), secs + 60)
            r.update({pre + k: v for k, v in d.items()})
    finally:
        for p in clients.values():
            bench.stop(p)
            bench.started.remove(p)
    return r


def run_all(proxies, tlsload, secs, runs):
    """raw[phase][label] = [one dict per run, or a string saying why there is none]"""
    raw = {}
    for i in range(runs):
        for phase, inst, flood, bystander in PHASES:
            for px in proxies:
                r = run_one(px, phase, inst, flood, bystander, tlsload, secs, i + 1)
                raw.setdefault(phase, {}).setdefault(px.label, []).append(r)
    return raw


def medians(raw):
    """res[phase][label] = the median of each figure over the runs that
    gave figures, or (none did) the first run's note"""
    res = {}
    for phase, byp in raw.items():
        for lab, rl in byp.items():
            ok = [r for r in rl if isinstance(r, dict)]
            if not ok:
                res.setdefault(phase, {})[lab] = rl[0]
                continue
            m = {k: (v if isinstance(v, str) else bench.med(ok, k)) for k, v in ok[0].items()}
            m["runs"] = len(ok)
            res.setdefault(phase, {})[lab] = m
    return res


def run_one(px, phase, inst, flood, bystander, tlsload, secs, run):
    if inst not in px.inst:
        return px.lim_note
    if inst in px.dead:
        return px.dead[inst]
    proc, port = px.inst[inst]
    log("run %d" % run, phase, px.label)
    try:
        r = run_phase(tlsload, proc, port, secs, flood, bystander)
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        log("  failed:", e)
        r = "failed: %s" % str(e).splitlines()[0][:100]
    if proc.poll() is not None:
        px.dead[inst] = "%s exited (status %s)" % (px.label, proc.returncode)
        log("WARNING:", px.dead[inst])
        return px.dead[inst]
    time.sleep(SETTLE if flood else 1)
    return r


# ------------------------------------------------------------------- reports
def fmt(v, nd=1):
    return bench.fmt(v, nd)


def get(res, phase, label, key):
    r = res.get(phase, {}).get(label)
    return r.get(key, float("nan")) if isinstance(r, dict) else float("nan")


def limit_bound(secs):
    """the most a single address may get through, in handshakes/s, over a
    flood of secs seconds: 1.2 x rate + the burst spread over the flood"""
    return 1.2 * LIMIT_RATE + LIMIT_BURST / secs


def targets(res, proxies):
    """[(target, proxy, measured, True/False/None)]"""
    out = []
    for px in proxies:
        out += proxy_targets(res, px.label)
    labels = [px.label for px in proxies]
    if "tlsterm (baseline)" in labels:
        t = get(res, "many", "tlsterm", "flood_hs_per_s")
        b = get(res, "many", "tlsterm (baseline)", "flood_hs_per_s")
        out.append(("Flood handshakes/s ≥ 0.8 × baseline", "tlsterm",
                    "%s/s vs 0.8 × %s = %s/s" % (fmt(t, 0), fmt(b, 0), fmt(0.8 * b, 0)),
                    ok_if(t >= 0.8 * b, t, b)))
    return out


def ok_if(cond, *vals):
    return None if any(v != v for v in vals) else bool(cond)


def proxy_targets(res, lab):
    out = []
    a99, f99 = get(res, "alone", lab, "p99_ms"), get(res, "many", lab, "p99_ms")
    out.append(("Established p99 during the flood ≤ 2 × alone", lab,
                "%s ms vs 2 × %s = %s ms" % (fmt(f99, 2), fmt(a99, 2), fmt(2 * a99, 2)),
                ok_if(f99 <= 2 * a99, f99, a99)))
    ar, fr = get(res, "alone", lab, "req_per_s"), get(res, "many", lab, "req_per_s")
    out.append(("Established throughput during the flood ≥ 50 % of alone", lab,
                "%s req/s = %s %% of %s" % (fmt(fr, 0), fmt(100 * bench.ratio(fr, ar), 0), fmt(ar, 0)),
                ok_if(fr >= 0.5 * ar, fr, ar)))
    if not isinstance(res.get("one_lim", {}).get(lab), dict):
        return out
    hs, secs = get(res, "one_lim", lab, "flood_hs_per_s"), get(res, "one_lim", lab, "flood_secs")
    bound = limit_bound(secs)
    out.append(("With limits: one-address flood ≤ 1.2 × %d/s + %d/T" % (LIMIT_RATE, LIMIT_BURST), lab,
                "%s hs/s vs %s hs/s (T = %s s)" % (fmt(hs, 1), fmt(bound, 1), fmt(secs, 1)),
                ok_if(hs <= bound, hs, bound)))
    r99, b99 = get(res, "ref", lab, "by_p99_ms"), get(res, "one_lim", lab, "by_p99_ms")
    out.append(("With limits: bystander p99 ≤ 2 × its no-flood p99", lab,
                "%s ms vs 2 × %s = %s ms" % (fmt(b99, 2), fmt(r99, 2), fmt(2 * r99, 2)),
                ok_if(b99 <= 2 * r99, b99, r99)))
    return out


def row(res, phase, lab, cols):
    r = res.get(phase, {}).get(lab)
    if not isinstance(r, dict):
        return "| %s | %s |" % (lab, r or "n/a") + " |" * (len(cols) - 1)
    return "| %s | %s |" % (lab, " | ".join(fmt(f(r) if callable(f) else r.get(f, float("nan")), nd)
                                            for _, f, nd in cols))


def table(w, res, phase, labels, cols):
    w("| proxy | " + " | ".join(c[0] for c in cols) + " |")
    w("|---|" + "---:|" * len(cols))
    for lab in labels:
        w(row(res, phase, lab, cols))
    w("")


def ratios_table(w, res, labels):
    w("| proxy | throughput during flood / alone | p99 during flood / alone |")
    w("|---|---:|---:|")
    for lab in labels:
        w("| %s | %s | %s × |" % (lab, fmt(bench.ratio(get(res, "many", lab, "req_per_s"),
                                                       get(res, "alone", lab, "req_per_s")), 2),
                                  fmt(bench.ratio(get(res, "many", lab, "p99_ms"),
                                                  get(res, "alone", lab, "p99_ms")), 2)))
    w("")


COLS_ALONE = [("req/s", "req_per_s", 0), ("p50 ms", "p50_ms", 2), ("p99 ms", "p99_ms", 2),
              ("proxy CPU µs/req", "cpu_us_per_req", 1), ("proxy CPU %", "proxy_cpu_pct", 0),
              ("client core %", "client_core_pct", 0)]
COLS_MANY = [("req/s", "req_per_s", 0), ("p50 ms", "p50_ms", 2), ("p99 ms", "p99_ms", 2),
             ("wrk timeouts", "timeouts", 0), ("flood hs/s", "flood_hs_per_s", 0),
             ("flood failed/s", lambda r: r["flood_attempts_per_s"] - r["flood_hs_per_s"], 0),
             ("proxy CPU %", "proxy_cpu_pct", 0), ("client core %", "client_core_pct", 0),
             ("flood client CPU %", "flood_client_cpu_pct", 0), ("listen drops", "listen_drops", 0)]
COLS_ONE = [("flood hs/s accepted", "flood_hs_per_s", 1),
            ("flood refused/failed /s", lambda r: r["flood_attempts_per_s"] - r["flood_hs_per_s"], 0),
            ("bystander hs/s", "by_hs_per_s", 1), ("bystander p50 ms", "by_p50_ms", 2),
            ("bystander p99 ms", "by_p99_ms", 2), ("bystander failed", "by_err", 0),
            ("wrk req/s", "req_per_s", 0), ("wrk p99 ms", "p99_ms", 2),
            ("proxy CPU %", "proxy_cpu_pct", 0), ("client core %", "client_core_pct", 0),
            ("listen drops", "listen_drops", 0)]
COLS_REF = [("bystander hs/s", "by_hs_per_s", 1), ("bystander p50 ms", "by_p50_ms", 2),
            ("bystander p99 ms", "by_p99_ms", 2), ("bystander failed", "by_err", 0),
            ("wrk req/s", "req_per_s", 0), ("wrk p99 ms", "p99_ms", 2), ("proxy CPU %", "proxy_cpu_pct", 0)]


def render(res, proxies, meta):
    L = []
    w = L.append
    labels = [px.label for px in proxies]
    q = meta["quick"]
    w("# Handshake flood vs established connections\n")
    w("_Generated by `tests/bench/flood.sh%s` on %s in %.0f s. Do not edit by hand; rerun the harness._\n"
      % (meta["args"], datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), meta["elapsed"]))
    w("Issue 13: *a handshake flood must not starve established connections*. %s; raw "
      "numbers: [`tests/bench/results/%s`](../tests/bench/results/%s). The throughput comparison without a "
      "flood is [`docs/performance.md`](performance.md).\n" % (runs_text(meta["runs"]), TSV_NAME, TSV_NAME))
    w("## Reproduce\n")
    w("```sh\ntests/bench/flood.sh [--quick] [--runs N] [--baseline OTHER_TLSTERM_BIN] [TLSTERM_BIN]\n```\n")
    w("Run as root on an otherwise idle machine with at least 2 CPUs; tools are installed as for "
      "`tests/bench/run.sh`. A full run takes about 5 minutes per `--runs` (10 s phases), `--quick` (4 s "
      "phases) about 2. Loopback only; every process it starts is stopped by PID; "
      "`net.ipv4.ip_local_port_range` is widened "
      "to 1024-65535 during the run and restored.\n")
    environment(w, meta)
    method(w, meta)
    results(w, res, labels, meta)
    w("## Targets\n")
    w("| target | proxy | measured | result |\n|---|---|---|---|")
    for name, lab, meas, ok in targets(res, proxies):
        w("| %s | %s | %s | **%s** |" % (name, lab, meas, "n/a" if ok is None else ("MET" if ok else "MISSED")))
    w("")
    w("The targets are tlsterm's; the other proxies' rows are there for comparison. *Near its no-flood value* "
      "is read as at most 2 × the bystander's p99 in phase *ref* (same wrk load, no flood).\n")
    notes(w, res, labels)
    if q:
        w("_This was a `--quick` run (4 s phases): use a full run for numbers to quote._\n")
    return "\n".join(L) + "\n"


def runs_text(runs):
    if runs == 1:
        return "Every figure is from one run (`--runs N` repeats every phase and reports medians)"
    return "Every figure is the median of %d runs (the phases repeated in turn)" % runs


def environment(w, meta):
    V = meta["versions"]
    w("## Environment\n")
    for k in ("os", "cpu", "kernel", "tlsterm", "baseline", "hitch", "haproxy", "nginx", "wrk", "openssl"):
        if k in V:
            w("- **%s**: %s" % (k, V[k]))
    w("- **1-min load average** at start / end: %s / %s" % (meta["load_start"], meta["load_end"]))
    neg = meta.get("negotiated", {})
    if neg:
        w("- **negotiated** (flood client, OpenSSL defaults): " +
          "; ".join("%s: `%s`" % (k, v) for k, v in neg.items()))
    w("")


def method(w, meta):
    s = meta["secs"]
    w("## Method\n")
    w("""- **One core, one worker each**, which is what each project recommends for one core (one worker or
  thread per CPU): tlsterm `workers: 1` (`log.level: warn`, `limits.max_connections: 100000`); hitch
  `--workers=1 --tls-protos=TLSv1.2`; HAProxy %(ha)s `nbthread 1`, `mode tcp`, `ssl-min-ver/ssl-max-ver TLSv1.2`.
  All instances run at the same time, each pinned to CPU %(pc)s (`taskset`), idle while another is measured.
  TLS 1.2, ECDSA P-256 certificate, default suites and curves.
- **Backend and clients**: one nginx (`worker_processes 1`, as in `tests/bench/run.sh`), wrk and all tlsload
  clients pinned to CPU %(oc)s. *client core %%* is that CPU's busy time (`/proc/stat`) over the wrk run;
  near 100%% the client side, not the proxy, limits the figures.
- **Keep-alive load** (every phase): `wrk -t1 -c%(wc)d -d%(s)ds --timeout 10s --latency
  https://127.0.0.1:PORT/100b` from 127.0.0.1 (`--timeout 10s` so that slow requests stay in the
  latency figures instead of being dropped as wrk timeouts at its default 2 s). *proxy CPU* is utime+stime of
  the proxy's processes over the wrk run. *listen drops*: the kernel's TcpExt `ListenDrops` counter (SYNs
  and connections dropped at a full listen queue, whole machine) over the wrk run; a client whose SYN was
  dropped retries after 1 s.
- **Flood**: `%(nicecmd)stlsload hs -p PORT -c %(fc)d -d %(fd)d -S N`: %(fc)d concurrent clients, each
  repeatedly: new connection, full TLS 1.2 handshake, `GET /100b`, close. %(nicetext)s
  It starts %(lead)d s before wrk and ends about
  %(lead)d s after it; *flood hs/s* = completed connections / its run time, *failed/s* = connections that
  failed (refused, reset, or closed by the proxy). *many*: N = %(fa)d source addresses (127.0.0.2 ...);
  *one*: N = 1 (127.0.0.2).
- **Bystander** (phases *ref*, *one*, *one_lim*): `tlsload hs -p PORT -c %(bc)d -S 1 -s %(ba)s -R %(br)d -d %(s)d`:
  a second client from its own address making %(br)d new connections a second (paced by `-R`, so that it
  stays under the per-address limit itself), 2 at a time; its latency is per connection, from `connect()` to
  the response fully read (tlsload's `p50_ms`/`p99_ms`). Its no-flood reference is phase *ref*: the same
  wrk load and bystander without the flood.
- **Per-address limits** (phase *one_lim*, a second instance of the proxy): tlsterm
  `limits.per_address: {connections: %(lc)d, handshakes_per_second: %(lr)d, handshake_burst: %(lb)d}` (checked
  with `tlsterm -t` first; a binary that refuses it gets *%(nc)s*); HAProxy a stick table on the source
  address, `store conn_cur,conn_rate(1s)`, `tcp-request connection track-sc0 src`, `reject if
  { sc0_conn_rate gt %(lr)d }` and `reject if { sc0_conn_cur gt %(lc)d }` (a sliding 1 s rate that counts the
  refused attempts too, so a flood that keeps trying stays refused); hitch has none. The bound in the
  targets is 1.2 × %(lr)d/s + %(lb)d / the flood's duration.
- **Phases**, each proxy in turn per phase, %(settle)d s of quiet after a flood: *alone* (wrk only), *ref*
  (wrk + bystander), *many* (wrk + %(fa)d-address flood), *one* (wrk + bystander + one-address flood),
  *one_lim* (the same against the instance with limits).
""" % {"ha": bench.platform(meta["versions"])[4], "pc": bench.PROXY_CPU, "oc": bench.OTHER_CPU,
       "wc": WRK_CONNS, "s": s, "fc": FLOOD_CONC, "fd": s + 2 * FLOOD_LEAD, "lead": FLOOD_LEAD,
       "fa": FLOOD_ADDRS, "bc": BYSTANDER_CONC, "ba": BYSTANDER_ADDR, "br": BYSTANDER_RATE,
       "nicecmd": "nice -n %d " % FLOOD_NICE if FLOOD_NICE else "", "nicetext": nice_text(),
       "lc": LIMIT_CONNS, "lr": LIMIT_RATE, "lb": LIMIT_BURST, "nc": NO_LIMITS_CONF, "settle": SETTLE})


def nice_text():
    if FLOOD_NICE:
        return ("It runs at nice %d (`--flood-nice`), so that on the shared client core it takes only what "
                "wrk, nginx and the bystander leave: the better a proxy serves wrk, the weaker the flood." % FLOOD_NICE)
    return ("It shares the client core with nginx, wrk and the bystander on equal terms (no `--flood-nice`), "
            "so its rate is capped by that core as well as by the proxy (*flood client CPU %* is tlsload's own "
            "share), and what it takes of the client core wrk cannot use.")


def results(w, res, labels, meta):
    w("## Keep-alive alone (phase *alone*)\n")
    table(w, res, "alone", labels, COLS_ALONE)
    w("## During a full-handshake flood from %d addresses (phase *many*)\n" % FLOOD_ADDRS)
    table(w, res, "many", labels, COLS_MANY)
    w("Relative to *alone*:\n")
    ratios_table(w, res, labels)
    w("## Bystander without a flood (phase *ref*, its reference)\n")
    table(w, res, "ref", labels, COLS_REF)
    w("## Flood from one address, without per-address limits (phase *one*)\n")
    table(w, res, "one", labels, COLS_ONE)
    w("## Flood from one address, with per-address limits (phase *one_lim*)\n")
    table(w, res, "one_lim", labels, COLS_ONE)


def busy_client_note(res, labels):
    """one line naming the runs whose client core was >= 90 % busy, or None"""
    busy = []
    for phase, _, _, _ in PHASES:
        hot = ["%s %s %%" % (lab, fmt(res[phase][lab]["client_core_pct"], 0)) for lab in labels
               if isinstance(res.get(phase, {}).get(lab), dict) and res[phase][lab]["client_core_pct"] >= 90]
        if hot:
            busy.append("*%s*: %s" % (phase, ", ".join(hot)))
    if not busy:
        return None
    return ("The client core (CPU %s: nginx, wrk, tlsload) was at least 90 %% busy in %s. There the client "
            "side, not the proxy, may limit requests/s and add to the latencies." %
            (bench.OTHER_CPU, "; ".join(busy)))


def notes(w, res, labels):
    out = [x for x in (busy_client_note(res, labels),) if x]
    for phase, _, _, _ in PHASES:
        for lab in labels:
            r = res.get(phase, {}).get(lab)
            if isinstance(r, dict):
                out += ["%s, %s: %s" % (phase, lab, x) for x in row_notes(res, phase, lab, r)]
    if out:
        w("## Notes\n")
        w("\n".join("- " + x for x in out) + "\n")


def row_notes(res, phase, lab, r):
    out = []
    if phase in ("many", "one") and r["proxy_cpu_pct"] < 90 and r["client_core_pct"] >= 90:
        out.append("the flood made %s handshakes/s with the proxy at %s %% CPU and the client core at %s %%: "
                   "the client core, not the proxy, capped the flood, so this proxy was not saturated."
                   % (fmt(r["flood_hs_per_s"], 0), fmt(r["proxy_cpu_pct"], 0), fmt(r["client_core_pct"], 0)))
    if r.get("listen_drops"):
        out.append("the kernel dropped %d SYNs or handshakes at full listen queues (TcpExt ListenDrops, whole "
                   "machine, over the wrk run; %d SYN retransmissions): a client whose SYN is dropped waits 1 s "
                   "to retry, which shows in its p99." % (r["listen_drops"], r.get("syn_retrans", 0)))
    for who, name in (("flood", "flood"), ("by", "bystander")):
        if r.get(who + "_local_err"):
            out.append("%d of the %s's connections failed on the client side (socket, bind or connect), not "
                       "at the proxy." % (r[who + "_local_err"], name))
    if r.get("timeouts") or r.get("non2xx"):
        out.append("wrk saw %d timeouts and %d non-2xx responses." % (r.get("timeouts", 0), r.get("non2xx", 0)))
    if phase == "many" and r["req_per_s"] > 1.2 * get(res, "alone", lab, "req_per_s"):
        out.append("more requests/s during the flood than alone: compare proxy CPU %% and client core %% of "
                   "both phases. Where neither core is saturated, the %d-connection keep-alive rate is set by "
                   "the round-trip time across the two CPUs, which varies from run to run." % WRK_CONNS)
    return out


def tsv_rows(phase, lab, run, r):
    if not isinstance(r, dict):
        return [(phase, lab, "note", run, r)]
    return [(phase, lab, k, run, ("%.6g" % v) if isinstance(v, float) else str(v))
            for k, v in r.items() if not k.startswith("_") and "__" not in k]  # not suite and group


def write_outputs(raw, res, proxies, meta):
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    rows = []
    for phase, byp in raw.items():
        for lab, rl in byp.items():
            for i, r in enumerate(rl):
                rows += tsv_rows(phase, lab, str(i + 1), r)
            if len(rl) > 1:
                rows += tsv_rows(phase, lab, "median", res[phase][lab])
    with open(os.path.join(HERE, "results", TSV_NAME), "w") as f:
        f.write("phase\tproxy\tmetric\trun\tvalue\n")
        f.writelines("\t".join(row) + "\n" for row in rows)
    with open(os.path.join(REPO, MD_NAME), "w") as f:
        f.write(render(res, proxies, meta))
    log("wrote %s and tests/bench/results/%s" % (MD_NAME, TSV_NAME))


def print_targets(res, proxies):
    for name, lab, meas, ok in targets(res, proxies):
        print("%-8s %-20s %s: %s" % ("n/a" if ok is None else ("MET" if ok else "MISSED"), lab, name, meas))


# ---------------------------------------------------------------------- main
def setup_process():
    """subreaper (hitch workers outliving their master get reaped), signals,
    RLIMIT_NOFILE, CPUs: as bench.py's main() does"""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except Exception:
        pass
    signal.signal(signal.SIGTERM, bench.on_signal)
    signal.signal(signal.SIGHUP, bench.on_signal)
    if os.cpu_count() < 2:
        bench.OTHER_CPU = "0"
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (400000, 400000))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    bench.NOFILE = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    bench.TLS = "1.2"


def versions(tlsterm, baseline):
    V = bench.versions(tlsterm)
    if baseline:
        V["baseline"] = " / ".join(bench.run([baseline, "-V"], 10).stdout.strip().splitlines()) + \
            " (`%s`)" % baseline
    V["tlsterm"] += " (`%s`)" % tlsterm
    return V


def negotiated(res, labels):
    out = {}
    for lab in labels:
        r = res.get("many", {}).get(lab)
        if isinstance(r, dict):
            out[lab] = "%s, %s" % (r.get("flood__cipher", "?"), r.get("flood__group", "?"))
    return out


def parse_args():
    ap = argparse.ArgumentParser(description="handshake flood vs established connections")
    ap.add_argument("--quick", action="store_true", help="4-second phases (smoke run)")
    ap.add_argument("--baseline", metavar="BIN", help="another tlsterm binary, labelled 'tlsterm (baseline)'")
    ap.add_argument("--runs", type=int, default=1, metavar="N",
                    help="repeat every phase N times and report medians (default 1)")
    ap.add_argument("--flood-nice", type=int, default=0, metavar="N",
                    help="run the flood clients at nice N (default 0: an equal share of the client core)")
    ap.add_argument("tlsterm", nargs="?", help="tlsterm binary (default: build one)")
    a = ap.parse_args()
    if a.runs < 1:
        ap.error("--runs must be at least 1")
    return a


def command_line(a):
    """the options as given, for the report's header"""
    out = ["--quick"] if a.quick else []
    out += ["--runs %d" % a.runs] if a.runs != 1 else []
    out += ["--flood-nice %d" % a.flood_nice] if a.flood_nice else []
    out += ["--baseline %s" % a.baseline] if a.baseline else []
    out += [a.tlsterm] if a.tlsterm else []
    return "".join(" " + x for x in out)


def build_tlsload(tmp):
    tlsload = os.path.join(tmp, "tlsload")
    subprocess.run(["cc", "-O2", "-o", tlsload, os.path.join(HERE, "tlsload.c"), "-lssl", "-lcrypto"],
                   check=True, timeout=120)
    return tlsload


def main():
    a = parse_args()
    global FLOOD_NICE
    FLOOD_NICE = a.flood_nice
    secs = 4 if a.quick else 10
    setup_process()
    bench.ensure_tools()
    meta = {"quick": a.quick, "secs": secs, "runs": a.runs, "args": command_line(a),
            "load_start": open("/proc/loadavg").read().split()[0]}
    tmp = tempfile.mkdtemp(prefix="tlsterm-flood-")
    t0 = time.time()
    try:
        tlsterm = os.path.abspath(a.tlsterm or bench.build_tlsterm(
            os.path.join(tempfile.gettempdir(), "tlsterm-bench-build")))
        baseline = os.path.abspath(a.baseline) if a.baseline else None
        tlsload = build_tlsload(tmp)
        meta["versions"] = versions(tlsterm, baseline)
        cert = bench.make_certs(tmp)["ecdsa"]
        backend = bench.start_nginx(tmp)[1]
        # a one-address flood makes tens of thousands of connections from 127.0.0.2
        bench.set_sysctl("/proc/sys/net/ipv4/ip_local_port_range", "1024 65535")
        proxies = start_all(tmp, tlsterm, baseline, cert, backend)
        raw = run_all(proxies, tlsload, secs, a.runs)
        res = medians(raw)
        meta.update(elapsed=time.time() - t0, load_end=open("/proc/loadavg").read().split()[0],
                    negotiated=negotiated(res, [px.label for px in proxies]))
        write_outputs(raw, res, proxies, meta)
        print_targets(res, proxies)
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
