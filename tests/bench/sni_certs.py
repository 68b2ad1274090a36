#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""Start-up cost of many certificates: N ECDSA P-256 certificates with
distinct subjectAltName names (every 10th also carries a wildcard) on one
listener.  For 1 and N certificates and 1 and 2 workers it measures the
time from spawn to the "ready" log line, the RSS after start and the time
of `tlsterm -t`, then checks that SNI picks the right certificate for a
sample of names (exact, wildcard, unknown -> default).  Prints a markdown
table.

usage: sni_certs.py [--count N] [--sample K] [--repeat R] [--workers 1,2]
                    [--certs-dir DIR] TLSTERM_BIN

Times and RSS are medians over R starts (default 3).

The certificates are made once per run (openssl CLI, in parallel) in a
temporary directory, or kept in --certs-dir and reused when it already
holds N of them.  Every process this script starts is stopped by its PID.
"""
import argparse
import concurrent.futures
import os
import random
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

DOMAIN = "bench.test"


def log(*a):
    print("[sni_certs %s]" % time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


def names_of(i):
    names = ["host%d.%s" % (i, DOMAIN)]
    if i % 10 == 0:
        names.append("*.w%d.%s" % (i, DOMAIN))
    return names


def make_cert(d, i):
    cert, key = os.path.join(d, "c%d.pem" % i), os.path.join(d, "k%d.pem" % i)
    if os.path.exists(cert) and os.path.exists(key):
        return cert, key
    san = ",".join("DNS:" + n for n in names_of(i))
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                        "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "30",
                        "-subj", "/CN=" + names_of(i)[0], "-addext", "subjectAltName=" + san,
                        "-keyout", key + ".tmp", "-out", cert + ".tmp"],
                       capture_output=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError("openssl failed for cert %d: %s"
                           % (i, r.stderr.decode(errors="replace")))
    os.rename(key + ".tmp", key)
    os.rename(cert + ".tmp", cert)
    return cert, key


def make_certs(d, n):
    t0 = time.monotonic()
    jobs = min(32, (os.cpu_count() or 2) * 2)
    with concurrent.futures.ThreadPoolExecutor(jobs) as ex:
        pairs = list(ex.map(lambda i: make_cert(d, i), range(n)))
    log("%d certificates ready in %.1fs (%s)" % (n, time.monotonic() - t0, d))
    return pairs


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(path, pairs, workers, port, backend_port):
    with open(path, "w") as f:
        f.write("workers: %d\nlog: {level: info}\nlisteners:\n  - name: https\n"
                "    listen: [\"127.0.0.1:%d\"]\n    backend: app\n    certificates:\n"
                % (workers, port))
        for cert, key in pairs:
            f.write("      - {cert: \"%s\", key: \"%s\"}\n" % (cert, key))
        f.write("backends:\n  app:\n    servers: [\"127.0.0.1:%d\"]\n" % backend_port)


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def served_der(port, name, timeout=10):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw:
        with ctx.wrap_socket(raw, server_hostname=name) as s:
            return s.getpeercert(binary_form=True)


def der_of(cert):
    with open(cert) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def sample_checks(pairs, k, rng):
    """[(sni, index of the certificate expected)]"""
    n = len(pairs)
    idx = sorted(rng.sample(range(n), min(k, n)))
    checks = [(names_of(i)[0], i) for i in idx]
    wild = [i for i in range(0, n, 10)]
    for i in rng.sample(wild, min(max(1, k // 4), len(wild))):
        checks.append(("x%d.w%d.%s" % (rng.randrange(1000), i, DOMAIN), i))
    checks.append(("no-such-name.%s" % DOMAIN, 0))             # the default
    checks.append(("HOST%d.BENCH.TEST" % (n - 1), n - 1))      # case-insensitive
    return checks


def start_until_ready(binary, conf, logf):
    """Spawns the daemon; returns (process, seconds from spawn to ready)."""
    with open(logf, "wb") as lf:
        t0 = time.monotonic()
        p = subprocess.Popen([binary, "-c", conf], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=lf)
    try:
        while True:
            with open(logf, "rb") as f:
                if b" ready: " in f.read():
                    return p, time.monotonic() - t0
            if p.poll() is not None:
                raise RuntimeError("tlsterm exited with %s:\n%s" % (
                    p.returncode, open(logf, errors="replace").read()[-2000:]))
            if time.monotonic() > t0 + 600:
                raise RuntimeError("no ready line within 600s")
            time.sleep(0.002)
    except BaseException:
        stop(p)
        raise


def stop(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def run_one(binary, workdir, pairs, workers, checks, repeat):
    """Medians over `repeat` starts; the SNI sample is checked on the first."""
    port, backend = free_port(), socket.socket()
    backend.bind(("127.0.0.1", 0))
    backend.listen(64)
    conf = os.path.join(workdir, "sni-%d-%d.yaml" % (len(pairs), workers))
    logf = conf[:-5] + ".log"
    write_config(conf, pairs, workers, port, backend.getsockname()[1])
    checks_s, ready_s, rss = [], [], []
    ok, bad, t_hs = 0, [], 0.0
    try:
        for rep in range(repeat):
            t0 = time.monotonic()
            r = subprocess.run([binary, "-t", "-c", conf], capture_output=True, timeout=600)
            checks_s.append(time.monotonic() - t0)
            if r.returncode != 0:
                raise RuntimeError("tlsterm -t failed:\n"
                                   + r.stderr.decode(errors="replace")[-2000:])
            p, t = start_until_ready(binary, conf, logf)
            try:
                ready_s.append(t)
                rss.append(rss_kb(p.pid) / 1024.0)
                if rep == 0:
                    ders = {}
                    t0 = time.monotonic()
                    for name, i in checks:
                        want = ders.setdefault(i, der_of(pairs[i][0]))
                        if served_der(port, name) == want:
                            ok += 1
                        else:
                            bad.append(name)
                    t_hs = (time.monotonic() - t0) / max(1, len(checks)) * 1000
            finally:
                stop(p)
    finally:
        backend.close()
    med = statistics.median
    return {"certs": len(pairs), "workers": workers, "check_s": med(checks_s),
            "ready_s": med(ready_s), "rss_mib": med(rss), "sni_ok": ok, "sni_n": len(checks),
            "hs_ms": t_hs, "bad": bad}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--sample", type=int, default=40, help="exact names checked (default 40)")
    ap.add_argument("--certs-dir", help="keep the certificates here (reused when present)")
    ap.add_argument("--repeat", type=int, default=3, help="starts per row, median (default 3)")
    ap.add_argument("--workers", default="1,2", help="worker counts (default 1,2)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("tlsterm")
    a = ap.parse_args()
    binary = os.path.abspath(a.tlsterm)
    if not os.access(binary, os.X_OK):
        ap.error("%s is not an executable" % binary)
    work = tempfile.mkdtemp(prefix="tlsterm-sni-bench-")
    certs_dir = a.certs_dir or os.path.join(work, "certs")
    os.makedirs(certs_dir, exist_ok=True)
    rows = []
    try:
        pairs = make_certs(certs_dir, a.count)
        rng = random.Random(a.seed)
        for n in (1, a.count) if a.count > 1 else (1,):
            sub = pairs[:n]
            checks = sample_checks(sub, a.sample, rng) if n > 1 else [(names_of(0)[0], 0)]
            for workers in [int(w) for w in a.workers.split(",")]:
                log("certs=%d workers=%d" % (n, workers))
                rows.append(run_one(binary, work, sub, workers, checks, max(1, a.repeat)))
    finally:
        shutil.rmtree(work, ignore_errors=True)     # --certs-dir lives outside it
    print("| certificates | workers | `tlsterm -t` (s) | spawn to ready (s) | RSS after start (MiB)"
          " | SNI checks ok | mean handshake (ms) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print("| %d | %d | %.2f | %.2f | %.1f | %d/%d | %.1f |" % (
            r["certs"], r["workers"], r["check_s"], r["ready_s"], r["rss_mib"], r["sni_ok"],
            r["sni_n"], r["hs_ms"]))
    failed = [r for r in rows if r["bad"]]
    for r in failed:
        print("\nSNI picked the wrong certificate (certs=%d workers=%d) for: %s"
              % (r["certs"], r["workers"], ", ".join(r["bad"])), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
