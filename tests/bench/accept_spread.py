#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""How tlsterm spreads new connections over its workers (SO_REUSEPORT).

Runs tlsterm with `workers: 1` and `workers: 2` against a local HTTP
backend, drives full TLS 1.2 handshakes (new connection, GET, close) from
several client processes for a fixed time, and reports connections/s,
tlsterm's CPU time per connection, and how the CPU time split between the
worker threads (from /proc/PID/task/*/stat).  Bounded in time; loopback only.

usage: accept_spread.py [--seconds N] [--clients N] TLSTERM_BIN
"""
import argparse
import http.server
import multiprocessing
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def do_GET(self):
        body = b"x" * 100
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def make_cert(d):
    cert, key = os.path.join(d, "c.pem"), os.path.join(d, "k.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost", "-keyout", key, "-out", cert],
                   check=True, capture_output=True)
    return cert, key


def client(port, cafile, until, q):
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    n = 0
    while time.time() < until:
        with socket.create_connection(("127.0.0.1", port)) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                s.sendall(b"GET / HTTP/1.0\r\n\r\n")
                while s.recv(4096):
                    pass
        n += 1
    q.put(n)


def task_cpu(pid):
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        out[tid] = (int(fields[11]) + int(fields[12])) / TICK
    return out


def run(binary, workers, seconds, clients, cert, key, backend_port, d):
    port = free_port()
    cfg = os.path.join(d, f"w{workers}.yaml")
    with open(cfg, "w") as f:
        f.write(f"""workers: {workers}
log: {{level: warn}}
listeners:
  - name: bench
    listen: ["127.0.0.1:{port}"]
    certificates: [{{cert: {cert}, key: {key}}}]
    backend: app
backends:
  app: {{servers: ["127.0.0.1:{backend_port}"]}}
""")
    p = subprocess.Popen([binary, "-c", cfg], stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    before = task_cpu(p.pid)
    q = multiprocessing.Queue()
    until = time.time() + seconds
    procs = [multiprocessing.Process(target=client, args=(port, cert, until, q))
             for _ in range(clients)]
    for c in procs:
        c.start()
    total = sum(q.get(timeout=seconds + 30) for _ in procs)
    for c in procs:
        c.join()
    after = task_cpu(p.pid)
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=10)
    per_thread = sorted((after[t] - before.get(t, 0) for t in after), reverse=True)
    cpu = sum(per_thread)
    return total / seconds, cpu / max(total, 1) * 1e6, per_thread


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("binary")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        cert, key = make_cert(d)
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        print("| workers | conn/s | tlsterm CPU us/conn | CPU s per thread |")
        print("|---|---|---|---|")
        for w in (1, 2):
            rate, us, threads = run(a.binary, w, a.seconds, a.clients, cert, key,
                                    srv.server_address[1], d)
            split = ", ".join(f"{t:.2f}" for t in threads if t > 0.005)
            print(f"| {w} | {rate:.0f} | {us:.0f} | {split} |")
        srv.shutdown()


if __name__ == "__main__":
    sys.exit(main())
