#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""Where tlsterm's CPU time goes under one load of the benchmark.

usage: tests/bench/profile.py full|resumed|keepalive|download|upload [TLSTERM_BIN]

Starts nginx and tlsterm (1 worker, ECDSA P-256, pinned to CPU 0) exactly as
run.sh does, records the load with `perf record -g` on the tlsterm process
only, and prints the measured figures, the share of CPU samples per library
(mbedcrypto = the crypto floor, kernel = sockets, libc = allocator and
syscall stubs, tlsterm = our own code) and the top symbols.  Needs perf
(linux-perf) and runs as root; loopback only; stops what it started."""

import atexit
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402

LOADS = ("full", "resumed", "keepalive", "download", "upload")


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in LOADS:
        sys.exit(__doc__)
    what = sys.argv[1]
    atexit.register(bench.cleanup)
    bench.ensure_tools()
    tmp = tempfile.mkdtemp(prefix="tlsterm-profile-")
    tl = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else bench.build_tlsterm(
        os.path.join(tempfile.gettempdir(), "tlsterm-bench-build"))
    tlsload = os.path.join(tmp, "tlsload")
    subprocess.run(["cc", "-O2", "-o", tlsload, os.path.join(HERE, "tlsload.c"), "-lssl", "-lcrypto"],
                   check=True)
    cert, key, _ = bench.make_certs(tmp)["ecdsa"]
    nginx, bport, upfile = bench.start_nginx(tmp)
    port = bench.free_port()
    conf = os.path.join(tmp, "t.yaml")
    with open(conf, "w") as f:
        f.write("workers: 1\nlog: {level: warn}\nlisteners:\n  - name: bench\n"
                "    listen: [\"127.0.0.1:%d\"]\n    certificates: [{cert: %s, key: %s}]\n"
                "    backend: app\nbackends:\n  app: {servers: [\"127.0.0.1:%d\"]}\n"
                % (port, cert, key, bport))
    p = bench.spawn(bench.pinned(bench.PROXY_CPU, [tl, "-c", conf]),
                    stderr=open(os.path.join(tmp, "tlsterm.log"), "w"))
    bench.wait_port(port, p)
    data = os.path.join(tmp, "perf.data")
    perf = bench.spawn(["perf", "record", "-q", "-g", "-o", data, "-p", str(p.pid)],
                       stderr=subprocess.DEVNULL)
    time.sleep(0.5)     # perf attaches asynchronously; nothing to wait on
    try:
        if what == "keepalive":
            print(bench.test_wrk(p, port, 5))
        elif what in ("full", "resumed"):
            print(bench.test_handshakes(tlsload, p, port, 4, what == "resumed"))
        else:
            print(bench.test_bulk(p, port, upfile, "down" if what == "download" else "up"))
    finally:
        perf.send_signal(2)
        perf.wait()
    for sort in ("dso", "dso,sym"):
        r = subprocess.run(["perf", "report", "-i", data, "--no-children", "-g", "none",
                            "--sort", sort], capture_output=True, text=True)
        lines = [l for l in r.stdout.splitlines() if l.strip() and not l.startswith("#")]
        print("\n".join(lines[:12 if sort == "dso" else 25]) + "\n")


if __name__ == "__main__":
    main()
