#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
# idle_mem.py - tlsterm's RSS per idle established TLS connection, alone
# (one worker, a python backend, tests/bench/tlsload.c holding N
# connections): for comparing mbedTLS builds (MBEDTLS_SSL_OUT_CONTENT_LEN).
# usage: tests/bench/idle_mem.py TLSTERM_BIN TLSLOAD_BIN CERT KEY [-n N] [--tls 1.2|1.3]
import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time

BACKEND = r'''
import http.server, socketserver, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        b = b"ok\n"
        self.send_response(200); self.send_header("Content-Length", "3"); self.end_headers()
        self.wfile.write(b)
    def log_message(self, *a): pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    request_queue_size = 4096
S(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
'''


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def rss(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def kv(line):
    return dict(x.split("=", 1) for x in line.split() if "=" in x)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tlsterm")
    ap.add_argument("tlsload")
    ap.add_argument("cert")
    ap.add_argument("key")
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("--tls", choices=("1.2", "1.3"), default="1.2")
    a = ap.parse_args()
    a.cert, a.key = os.path.abspath(a.cert), os.path.abspath(a.key)
    tmp = tempfile.mkdtemp(prefix="idle_mem.")
    bport, port = free_port(), free_port()
    be = subprocess.Popen([sys.executable, "-c", BACKEND, str(bport)])
    yml = os.path.join(tmp, "t.yaml")
    with open(yml, "w") as f:
        f.write("workers: 1\nlog: {level: error}\nlimits: {max_connections: 100000}\n"
                "listeners:\n  - name: m\n    listen: [\"127.0.0.1:%d\"]\n"
                "    certificates: [{cert: %s, key: %s}]\n    backend: app\n"
                "backends:\n  app: {servers: [\"127.0.0.1:%d\"]}\n"
                "tls: {min_version: \"%s\", max_version: \"%s\"}\n"
                % (port, a.cert, a.key, bport, a.tls, a.tls))
    tl = subprocess.Popen([a.tlsterm, "-c", yml], stderr=open(os.path.join(tmp, "log"), "w"))
    time.sleep(0.5)
    if tl.poll() is not None:
        sys.exit("tlsterm exited: " + open(os.path.join(tmp, "log")).read())
    try:
        time.sleep(1.0)
        # a fresh process each time: after a round, glibc keeps the freed
        # memory and a second round's RSS growth would under-count
        for rnd in ("measure",):
            base = rss(tl.pid)
            c = subprocess.Popen([a.tlsload, "hold", "-p", str(port), "-n", str(a.n), "-c", "64",
                                  "-t", "30", "-S", "8"] + (["-3"] if a.tls == "1.3" else []),
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            d = kv(c.stdout.readline())
            time.sleep(2)
            held_rss = rss(tl.pid)
            c.stdin.write("check\n")
            c.stdin.flush()
            chk = kv(c.stdout.readline())
            c.stdin.write("quit\n")
            c.stdin.flush()
            c.wait(60)
            held = int(d.get("ok", 0)) - int(chk.get("closed", 0))
            if rnd == "measure":
                print("tls\t%s\nheld\t%d\nrss_before\t%d\nrss_with\t%d\nbytes_per_conn\t%.0f"
                      % (a.tls, held, base, held_rss, (held_rss - base) / held if held else -1))
            time.sleep(3)
    finally:
        tl.terminate()
        be.terminate()
        tl.wait(10)
        be.wait(10)


if __name__ == "__main__":
    main()
