#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""What forwarded_headers costs: keep-alive HTTPS requests (wrk, 64
connections, 100-byte responses from nginx) through

  tlsterm          plain relay (the main benchmark's configuration)
  tlsterm+fwd      forwarded_headers: true (every request head parsed and
                   rewritten, every response framed)
  haproxy+fwd      HAProxy in mode http with option forwardfor and
                   X-Forwarded-Proto/Port set: the peer that does the same
                   work (hitch cannot add headers)

each pinned to CPU 0, for SECS seconds, ROUNDS times interleaved; prints the
median requests/s, p99, proxy CPU per request and the proxy's RSS with the
64 connections open, with ratios.  The same machine, the same run.
Loopback only; stops what it started.

usage: tests/bench/forwarded.py [--secs N] [--rounds N] [TLSTERM_BIN]
"""
import argparse
import atexit
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402


def start_tlsterm(tmp, tl, cert, key, bport, fwd):
    port = bench.free_port()
    yml = os.path.join(tmp, "tlsterm-%s.yaml" % ("fwd" if fwd else "plain"))
    with open(yml, "w") as f:
        f.write("workers: 2\nlog: {level: warn}\nlisteners:\n  - name: bench\n"
                "    listen: [\"127.0.0.1:%d\"]\n    certificates: [{cert: %s, key: %s}]\n"
                "    backend: app\nbackends:\n  app: {servers: [\"127.0.0.1:%d\"]%s}\n"
                % (port, cert, key, bport, ", forwarded_headers: true" if fwd else ""))
    p = bench.spawn(bench.pinned(bench.PROXY_CPU, [tl, "-c", yml]), stdout=subprocess.DEVNULL,
                    stderr=open(yml + ".log", "w"))
    bench.wait_port(port, p)
    return p, port


def start_haproxy(tmp, pem, bport):
    port = bench.free_port()
    cfg = os.path.join(tmp, "haproxy-fwd.cfg")
    with open(cfg, "w") as f:
        f.write("""global
  nbthread 2
  maxconn 5000
defaults
  mode http
  option forwardfor
  option http-keep-alive
  timeout connect 5s
  timeout client 600s
  timeout server 600s
  timeout http-keep-alive 600s
frontend f
  bind 127.0.0.1:%d ssl crt %s ssl-min-ver TLSv1.2 ssl-max-ver TLSv1.2
  http-request set-header X-Forwarded-Proto https
  http-request set-header X-Forwarded-Port %%[dst_port]
  default_backend b
backend b
  server s 127.0.0.1:%d
""" % (port, pem, bport))
    p = bench.spawn(bench.pinned(bench.PROXY_CPU, ["haproxy", "-db", "-f", cfg]),
                    stdout=subprocess.DEVNULL, stderr=open(cfg + ".log", "w"))
    bench.wait_port(port, p)
    return p, port


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--secs", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("tlsterm", nargs="?")
    a = ap.parse_args()
    atexit.register(bench.cleanup)
    bench.ensure_tools()
    tmp = tempfile.mkdtemp(prefix="tlsterm-fwd-bench-")
    tl = os.path.abspath(a.tlsterm) if a.tlsterm else bench.build_tlsterm(
        os.path.join(tempfile.gettempdir(), "tlsterm-bench-build"))
    cert, key, pem = bench.make_certs(tmp)["ecdsa"]
    _, bport, _ = bench.start_nginx(tmp)
    procs = {"tlsterm": start_tlsterm(tmp, tl, cert, key, bport, False),
             "tlsterm+fwd": start_tlsterm(tmp, tl, cert, key, bport, True),
             "haproxy+fwd": start_haproxy(tmp, pem, bport)}
    res = {name: [] for name in procs}
    for rnd in range(a.rounds):
        for name, (p, port) in procs.items():
            r = bench.test_wrk(p, port, a.secs)
            r["rss_kb"] = bench.tree_rss(p.pid) // 1024
            bench.log("round %d %s: %s" % (rnd + 1, name, r))
            if r["errors"] or r["_sockerr"]:
                sys.exit("%s: errors in the load: %s" % (name, r))
            res[name].append(r)
    print("\n| proxy | requests/s | p99 ms | CPU us/req | RSS MB (64 conns open) |")
    print("|---|---:|---:|---:|---:|")
    for name in procs:
        print("| %s | %s | %s | %s | %s |" % (
            name, bench.fmt(bench.med(res[name], "req_per_s"), 0),
            bench.fmt(bench.med(res[name], "p99_ms"), 2),
            bench.fmt(bench.med(res[name], "cpu_us_per_req"), 1),
            bench.fmt(bench.med(res[name], "rss_kb") / 1024, 1)))
    cpu = {n: bench.med(res[n], "cpu_us_per_req") for n in procs}
    print("\nCPU per request: tlsterm+fwd / tlsterm = %s (the rewriting's cost); "
          "tlsterm+fwd / haproxy+fwd = %s"
          % (bench.fmt(bench.ratio(cpu["tlsterm+fwd"], cpu["tlsterm"]), 2),
             bench.fmt(bench.ratio(cpu["tlsterm+fwd"], cpu["haproxy+fwd"]), 2)))


if __name__ == "__main__":
    main()
