#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""Three mbedTLS builds side by side (issue 15): tlsterm on Debian 12's
mbedTLS 2.28, on Debian 13's mbedTLS 3.6 and on the tuned mbedTLS 3.6
(src/mbedtls/build.sh), against hitch and HAProxy from Debian 12, in one run.

Driven by tests/bench/run.sh (the default mode).  Reuses bench.py's process
handling, nginx backend, tlsload client and measurements.

usage: three_builds.py [--quick] [--no-docs]

Builds (incremental, cached under $TLSTERM_BENCH_CACHE, default
/var/tmp/tlsterm-bench3):
  deb12  the host's packaged mbedTLS 2.28: configure && make in CACHE/deb12
  deb13  Debian 13's packaged mbedTLS 3.6: the checkout copied into the
         Debian 13 root ($TLSTERM_BENCH_ROOT, default
         /var/cache/tlsterm-ci/trixie.new) at /root/bench13/src, built in
         /root/bench13/build, chrooted in a private mount namespace (its own
         /proc, /dev, /sys mounts, gone when it ends).  The daemon runs the
         same way: `unshare -m sh -c 'mount ...; exec chroot ROOT tlsterm'`,
         every step an exec, so the PID the harness holds is tlsterm's; the
         chroot shares the host's network, so it listens on the host's
         loopback.
  tuned  the tuned mbedTLS 3.6: tests/tuned.sh builds it from the current
         src/mbedtls/ (cached by source hash) and prints its directory;
         configure --with-mbedtls=DIR in CACHE/tuned-<hash>.

Output: tests/bench/results/three-builds.tsv (every run and the medians),
docs/perf-*.svg (gnuplot), and the section "Three mbedTLS builds side by
side" of docs/performance.md (replaced in place, the rest of the file is
left alone).  Every process it starts is stopped by PID.
"""
import argparse
import datetime
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
from bench import log, spawn, stop, pinned, run, free_port, wait_port, tree_cpu, tree_rss, kv, med, fmt, \
    ratio  # noqa: E402

HERE = bench.HERE
REPO = bench.REPO
CACHE = os.environ.get("TLSTERM_BENCH_CACHE", "/var/tmp/tlsterm-bench3")
ROOT13 = os.environ.get("TLSTERM_BENCH_ROOT", "/var/cache/tlsterm-ci/trixie.new")
IN13 = "/root/bench13"          # inside ROOT13
BUILDS = ["deb12", "deb13", "tuned"]
NAMES = {"deb12": "tlsterm 2.28 (Deb 12)", "deb13": "tlsterm 3.6 (Deb 13)", "tuned": "tlsterm 3.6 tuned",
         "hitch": "hitch", "haproxy": "HAProxy"}
SHORT = {"deb12": "tlsterm\\n2.28 Deb12", "deb13": "tlsterm\\n3.6 Deb13", "tuned": "tlsterm\\n3.6 tuned",
         "hitch": "hitch", "haproxy": "HAProxy"}
PROXIES = BUILDS + ["hitch", "haproxy"]
SECTION = "## Three mbedTLS builds side by side"


# ------------------------------------------------------------------ builds
def sh(argv, **kw):
    kw.setdefault("check", True)
    return subprocess.run(argv, **kw)


def autogen():
    if not os.path.exists(os.path.join(REPO, "configure")):
        sh(["./autogen.sh"], cwd=REPO, stdout=subprocess.DEVNULL)


def build_host(bdir, extra):
    os.makedirs(bdir, exist_ok=True)
    if not os.path.exists(os.path.join(bdir, "Makefile")):
        sh([os.path.join(REPO, "configure"), "-q"] + extra, cwd=bdir)
    sh(["make", "-j2", "-s", "src/tlsterm", "tests/bench/crypto_floor"], cwd=bdir, stdout=subprocess.DEVNULL)
    return os.path.join(bdir, "src", "tlsterm"), os.path.join(bdir, "tests", "bench", "crypto_floor")


def tuned_dir():
    r = sh(["sh", os.path.join(REPO, "tests", "tuned.sh")], capture_output=True, text=True)
    d = r.stdout.strip().splitlines()[-1]
    for l in r.stderr.splitlines():
        log("  " + l)
    return d


def root_wrap(script):
    """argv running `script` (sh) in a private mount namespace where ROOT13
    has /proc, /dev and /sys mounted; the script's last command should exec
    chroot.  No --fork: unshare execs sh, so the PID is the script's."""
    r = ROOT13
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
            'set -e; mount -t proc proc "%s/proc"; mount --rbind /dev "%s/dev"; mount --rbind /sys "%s/sys"; %s'
            % (r, r, r, script)]


def build_deb13():
    src = ROOT13 + IN13 + "/src"
    os.makedirs(src, exist_ok=True)
    # the checkout (tracked and untracked-not-ignored files), mtimes kept so
    # that make rebuilds only what changed
    files = sh(["git", "-C", REPO, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
               capture_output=True).stdout
    p1 = subprocess.Popen(["tar", "--null", "--no-recursion", "--ignore-failed-read", "-T", "-", "-cf", "-"],
                          cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    p2 = subprocess.Popen(["tar", "-xf", "-", "-C", src], stdin=p1.stdout)
    p1.stdin.write(files)
    p1.stdin.close()
    p1.stdout.close()
    if p2.wait() != 0 or p1.wait() != 0:
        raise RuntimeError("copying the checkout into %s failed" % src)
    script = ("cd %(d)s/src && { [ -x configure ] || ./autogen.sh >/dev/null; } && mkdir -p ../build && "
              "cd ../build && { [ -f Makefile ] || ../src/configure -q; } && "
              "make -j2 -s src/tlsterm tests/bench/crypto_floor >/dev/null" % {"d": IN13})
    sh(["unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--kill-child", "sh", "-c",
        'set -e; r=%s; mount -t proc proc "$r/proc"; mount --rbind /dev "$r/dev"; mount --rbind /sys "$r/sys"; '
        'exec chroot "$r" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME=/root '
        'LANG=C.UTF-8 sh -c "$1"' % ROOT13, "build13", script])
    return IN13 + "/build/src/tlsterm", IN13 + "/build/tests/bench/crypto_floor"


def build_all(meta):
    autogen()
    bins = {}
    t0 = time.time()
    log("build deb12 (host, mbedTLS 2.28)")
    bins["deb12"] = build_host(os.path.join(CACHE, "deb12"), [])
    log("build tuned: tests/tuned.sh")
    td = tuned_dir()
    meta["tuned_dir"] = td
    bins["tuned"] = build_host(os.path.join(CACHE, "tuned-" + os.path.basename(td)[len("mbedtls-tuned-"):][:16]),
                               ["--with-mbedtls=" + td])
    log("build deb13 (in %s)" % ROOT13)
    bins["deb13"] = build_deb13()
    meta["build_s"] = time.time() - t0
    return bins


def argv_for(build, bins, args):
    """argv running the build's binary (tlsterm or crypto_floor) with args,
    pinned to the proxy CPU."""
    if build == "deb13":
        q = " ".join("'%s'" % a for a in args)
        return pinned(bench.PROXY_CPU, root_wrap("exec chroot %s %s %s" % (ROOT13, bins, q)))
    return pinned(bench.PROXY_CPU, [bins] + list(args))


def version_of(build, binary):
    if build == "deb13":
        r = run(["chroot", ROOT13, binary, "-V"], 10)
    else:
        r = run([binary, "-V"], 10)
    return " / ".join((r.stdout + r.stderr).strip().splitlines())


def crypto_floor(build, binary, secs):
    r = run(argv_for(build, binary, [str(secs)]), 300)
    out = {}
    for l in r.stdout.splitlines():
        p = l.split("\t")
        if len(p) == 3:
            out[p[0]] = float(p[2])
    return out


# ----------------------------------------------------------------- proxies
def start_all(tmp, bins, cert, backend, tag):
    c, k, pem = cert
    procs = {}
    for b in BUILDS:
        q = free_port()
        if b == "deb13":
            rd = ROOT13 + IN13 + "/run"
            os.makedirs(rd, exist_ok=True)
            for f in (c, k):
                shutil.copy(f, rd)
            cc, kk = [IN13 + "/run/" + os.path.basename(f) for f in (c, k)]
            yml_host = "%s/tlsterm-%s.yaml" % (rd, tag)
            yml = IN13 + "/run/tlsterm-%s.yaml" % tag
        else:
            cc, kk = c, k
            yml = yml_host = os.path.join(tmp, "tlsterm-%s-%s.yaml" % (b, tag))
        with open(yml_host, "w") as f:
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
""" % (q, cc, kk, backend))
        p = spawn(argv_for(b, bins[b][0], ["-c", yml]), stdout=subprocess.DEVNULL,
                  stderr=open("%s/%s-%s.log" % (tmp, b, tag), "w"))
        procs[b] = (p, q)
    q = free_port()
    p = spawn(pinned(bench.PROXY_CPU, ["hitch", "--backend=[127.0.0.1]:%d" % backend,
                                       "--frontend=[127.0.0.1]:%d" % q, "--workers=2",
                                       "--tls-protos=TLSv1.2 TLSv1.3", "--daemon=off", "--backlog=4096",
                                       "--ocsp-dir=%s" % tmp, "--log-level=1", "--user=nobody",
                                       "--group=nogroup", pem]),
              stdout=subprocess.DEVNULL, stderr=open("%s/hitch-%s.log" % (tmp, tag), "w"))
    procs["hitch"] = (p, q)
    q = free_port()
    cfg = os.path.join(tmp, "haproxy-%s.cfg" % tag)
    with open(cfg, "w") as f:
        f.write(bench.haproxy_cfg(2, q, pem, "1.2", backend).replace("ssl-max-ver TLSv1.2", "ssl-max-ver TLSv1.3"))
    p = spawn(pinned(bench.PROXY_CPU, ["haproxy", "-db", "-f", cfg]), stdout=subprocess.DEVNULL,
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


def hs(tlsload, proc, port, secs, resume, tls13):
    cpu0 = tree_cpu(proc.pid)
    argv = [tlsload, "hs", "-p", str(port), "-c", "32", "-d", str(secs)] + (["-r"] if resume else []) + \
        (["-3"] if tls13 else [])
    r = run(pinned(bench.OTHER_CPU, argv), timeout=secs + 60)
    cpu1 = tree_cpu(proc.pid)
    line = [l for l in r.stdout.splitlines() if l.startswith("DONE")]
    if not line:
        raise RuntimeError("tlsload: %s %s" % (r.stdout, r.stderr))
    d = kv(line[0])
    ok = int(d["ok"])
    s = float(d["secs"])
    return {"conn_per_s": ok / s, "cpu_us": (cpu1 - cpu0) / ok * 1e6 if ok else float("nan"),
            "client_cpu_pct": float(d["client_cpu_s"]) / s * 100, "errors": int(d["err"]),
            "resumed_pct": int(d["resumed"]) / ok * 100 if ok else 0.0,
            "_cipher": d.get("cipher", "?"), "_group": d.get("group", "?"), "_proto": d.get("proto", "?")}


def memory(tlsload, proc, port, n, backend, timeout):
    bench.TLS = "1.2"
    return bench.test_memory(tlsload, proc, port, n, backend, timeout)


# ------------------------------------------------------------------- tests
# (key, label, unit, kind): kind hs = (pass, resume, tls13)
HS_TESTS = [("ecdsa12_full", "TLS 1.2 full, ECDSA P-256", ("ecdsa", False, False)),
            ("ecdsa13_full", "TLS 1.3 full, ECDSA P-256", ("ecdsa", False, True)),
            ("ecdsa12_resumed", "TLS 1.2 resumed (ticket), ECDSA", ("ecdsa", True, False)),
            ("ecdsa13_resumed", "TLS 1.3 resumed (ticket), ECDSA", ("ecdsa", True, True)),
            ("rsa12_full", "TLS 1.2 full, RSA-2048", ("rsa", False, False)),
            ("rsa13_full", "TLS 1.3 full, RSA-2048", ("rsa", False, True))]


def supports13(b):
    return b != "deb12"


def run_all(a, meta, tsv):
    quick = a.quick
    runs = 1 if quick else 3
    hs_secs = 2 if quick else 5
    wrk_secs = 3 if quick else 5
    bulk_n = 1 if quick else 3
    n_idle = 2000 if quick else 5000
    res = {}   # res[test][proxy] = [run dicts]
    tmp = tempfile.mkdtemp(prefix="tlsterm-bench3-")
    try:
        bins = build_all(meta)
        meta["versions"] = {b: version_of(b, bins[b][0]) for b in BUILDS}
        meta["versions"].update({k: v for k, v in bench.versions(bins["deb12"][0]).items() if k != "tlsterm"})
        tlsload = os.path.join(tmp, "tlsload")
        sh(["cc", "-O2", "-o", tlsload, os.path.join(HERE, "tlsload.c"), "-lssl", "-lcrypto"])
        floors = {}
        for b in BUILDS:
            log("crypto floor", b)
            try:
                floors[b] = crypto_floor(b, bins[b][1], 0.5 if quick else 1)
            except Exception as e:
                log("crypto floor %s failed: %s" % (b, e))
                floors[b] = {}
            for k, v in floors[b].items():
                tsv.append(("crypto_floor", b, k, "median", v))
        meta["floors"] = floors
        certs = bench.make_certs(tmp)
        nginx, bport, upfile = bench.start_nginx(tmp)
        bench.set_sysctl("/proc/sys/net/ipv4/ip_local_port_range", "1024 65535")
        for cpass in ("ecdsa", "rsa"):
            log("pass", cpass)
            procs = start_all(tmp, bins, certs[cpass], bport, cpass)
            if cpass == "ecdsa":
                res["idle_rss"] = {n: [{"rss": tree_rss(p.pid)}] for n, (p, q) in procs.items()}
                meta["s_client"] = {}
                for n, (p, q) in procs.items():
                    meta["s_client"][n] = bench.probe_s_client(q)
            for key, label, (tp, resume, t13) in HS_TESTS:
                if tp != cpass:
                    continue
                for i in range(runs):
                    for name in PROXIES:
                        if t13 and name in BUILDS and not supports13(name):
                            continue
                        p, q = procs[name]
                        log(key, name, "run", i + 1)
                        res.setdefault(key, {}).setdefault(name, []).append(hs(tlsload, p, q, hs_secs, resume, t13))
            if cpass == "ecdsa":
                for i in range(runs):
                    for name in PROXIES:
                        p, q = procs[name]
                        log("keepalive", name, "run", i + 1)
                        r = bench.test_wrk(p, q, wrk_secs)
                        r["cpu_us"] = r.pop("cpu_us_per_req")
                        res.setdefault("keepalive", {}).setdefault(name, []).append(r)
                for d in ("down", "up"):
                    for i in range(bulk_n):
                        for name in PROXIES:
                            p, q = procs[name]
                            log("bulk", d, name, "run", i + 1)
                            res.setdefault("bulk_" + d, {}).setdefault(name, []).append(
                                bench.test_bulk(p, q, upfile, d))
                for name in PROXIES:
                    p, q = procs[name]
                    log("idle memory", n_idle, name)
                    res.setdefault("idle", {}).setdefault(name, []).append(
                        memory(tlsload, p, q, n_idle, bport, 120))
            for name, (p, q) in procs.items():
                if p.poll() is not None:
                    log("WARNING: %s exited early with %s" % (name, p.returncode))
                stop(p)
                bench.started.remove(p)
            bench.reap()
        meta["n_idle"] = n_idle
    finally:
        bench.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
        d = ROOT13 + IN13 + "/run"
        shutil.rmtree(d, ignore_errors=True)
    return res


# ------------------------------------------------------------------ charts
def gnuplot_ok():
    if shutil.which("gnuplot"):
        return True
    log("installing gnuplot-nox")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    r = subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "gnuplot-nox"], env=env,
                       timeout=600)
    return r.returncode == 0 and shutil.which("gnuplot")


def chart(path, title, ylabel, series, rows, nd=0, term="svg size 900,460 dynamic font 'Sans,11' background rgb 'white'"):
    """Clustered bar chart: rows = [(proxy, [value per series])], each bar
    labelled with its value (n/a bars are left out)."""
    dat = path + ".dat"
    with open(dat, "w") as f:
        for name, vals in rows:
            f.write('"%s" %s\n' % (SHORT[name], " ".join("%.6g" % v if v == v else "NaN" for v in vals)))
    k = len(series)
    ymax = max([v for _, vals in rows for v in vals if v == v] + [1])
    plots, labels = [], []
    colors = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2"]
    for i, s in enumerate(series):
        plots.append("'%s' using %d:xtic(1) title '%s' lc rgb '%s'" % (dat, i + 2, s, colors[i % 5]))
        off = (i - (k - 1) / 2.0) / (k + 1.0)
        labels.append("'%s' using ($0 + %.4f):%d:(sprintf('%%.%df', $%d)) with labels offset 0,0.6 font ',9' "
                      "notitle" % (dat, off, i + 2, nd, i + 2))
    gp = """set terminal %s
set output '%s'
set title '%s'
set ylabel '%s'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 1
set yrange [0:%g]
set grid ytics
set bmargin 4
set key top left
set datafile missing 'NaN'
plot %s
""" % (term, path, title, ylabel, ymax * 1.15, ", ".join(plots + labels))
    r = subprocess.run(["gnuplot"], input=gp, text=True, capture_output=True)
    os.unlink(dat)
    if r.returncode != 0:
        log("gnuplot %s: %s" % (path, r.stderr[-500:]))


def charts(res, meta):
    if not gnuplot_ok():
        log("no gnuplot: charts skipped")
        return []
    out = []
    d = os.path.join(REPO, "docs")

    def v(test, name, key="cpu_us"):
        return med(res.get(test, {}).get(name, []), key)
    specs = [
        ("perf-full-handshake.svg", "Proxy CPU per full handshake (lower is better)", "µs per connection",
         ["TLS 1.2 ECDSA P-256", "TLS 1.3 ECDSA P-256", "TLS 1.2 RSA-2048", "TLS 1.3 RSA-2048"],
         lambda n: [v("ecdsa12_full", n), v("ecdsa13_full", n), v("rsa12_full", n), v("rsa13_full", n)], 0),
        ("perf-resumed-handshake.svg", "Proxy CPU per resumed handshake (session ticket)", "µs per connection",
         ["TLS 1.2", "TLS 1.3"], lambda n: [v("ecdsa12_resumed", n), v("ecdsa13_resumed", n)], 0),
        ("perf-request.svg", "Proxy CPU per keep-alive request (wrk, GET 100 B)", "µs per request",
         ["keep-alive"], lambda n: [v("keepalive", n)], 1),
        ("perf-bulk.svg", "Proxy CPU per GiB relayed (curl, 100 MiB)", "CPU s per GiB",
         ["download", "upload"], lambda n: [v("bulk_down", n, "cpu_s_per_gib"), v("bulk_up", n, "cpu_s_per_gib")],
         2),
        ("perf-idle-memory.svg", "Memory per idle TLS connection (%s connections, TLS 1.2)"
         % fmt(float(meta.get("n_idle", 0))), "bytes per connection", ["RSS growth / connection"],
         lambda n: [v("idle", n, "bytes_per_conn")], 0),
    ]
    for fn, title, yl, series, get, nd in specs:
        p = os.path.join(d, fn)
        chart(p, title, yl, series, [(n, get(n)) for n in PROXIES], nd)
        if os.path.exists(p):
            out.append(fn)
    return out


# ------------------------------------------------------------------ report
def write_tsv(res, tsv, path):
    for test, byp in res.items():
        for name, rl in byp.items():
            for i, r in enumerate(rl):
                for k, val in r.items():
                    if not k.startswith("_"):
                        tsv.append((test, name, k, str(i + 1), val))
            for k in rl[0]:
                if not k.startswith("_"):
                    tsv.append((test, name, k, "median", med(rl, k)))
            for k in ("_proto", "_cipher", "_group"):
                if k in rl[0]:
                    tsv.append((test, name, k[1:], "1", rl[0][k]))
    with open(path, "w") as f:
        f.write("test\tproxy\tmetric\trun\tvalue\n")
        for row in tsv:
            val = row[4]
            f.write("\t".join(row[:4]) + "\t" + (("%.6g" % val) if isinstance(val, float) else str(val)) + "\n")


def render(res, meta, chart_files, quick):
    L = []
    w = L.append
    V = meta["versions"]

    def m(test, name, key="cpu_us"):
        return med(res.get(test, {}).get(name, []), key)
    w(SECTION + "\n")
    w("<!-- generated by tests/bench/run.sh (tests/bench/three_builds.py): do not edit this section by hand -->\n")
    w("_Generated by `tests/bench/run.sh%s` on %s in %.0f s (builds %.0f s), 1-min load average %s at start, "
      "%s at end. %s Raw figures: [`tests/bench/results/three-builds.tsv`](../tests/bench/results/three-builds.tsv)._\n"
      % (" --quick" if quick else "", datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), meta["elapsed"],
         meta.get("build_s", 0), meta["load_start"], meta["load_end"],
         "One run per figure (--quick)." if quick else "Every figure is the median of 3 runs."))
    w("tlsterm three times, on the same machine in the same run as hitch and HAProxy (Debian 12's packages, "
      "OpenSSL 3.0), all five in front of the same nginx, all pinned to CPU 0 with the clients on CPU 1, each "
      "accepting TLS 1.2 and TLS 1.3 (the client chooses):\n")
    w("- **tlsterm 2.28 (Deb 12)**: Debian 12's packaged mbedTLS (TLS 1.2 only). `%s`" % V["deb12"])
    w("- **tlsterm 3.6 (Deb 13)**: Debian 13's packaged mbedTLS, built and run in a Debian 13 root (chroot, "
      "host network). `%s`" % V["deb13"])
    w("- **tlsterm 3.6 tuned**: mbedTLS 3.6 built by `src/mbedtls/build.sh` (`tests/tuned.sh`: `%s`). `%s`"
      % (os.path.basename(meta.get("tuned_dir", "?")), V["tuned"]))
    w("- **hitch** %s; **HAProxy** %s; client OpenSSL %s\n" % (bench.platform(V)[3], bench.platform(V)[4],
                                                                  bench.platform(V)[2].split()[-1]))
    w("Proxy CPU is utime+stime of the proxy's processes (`/proc/PID/stat`) over each load divided by the "
      "operations done; for the Debian 13 build the PID is tlsterm's own (the chroot wrapper `exec`s it). "
      "Handshakes: `tlsload hs -c 32` (new connection, handshake, GET 100 B, close; `-3` for TLS 1.3; "
      "`-r` offers the first connection's ticket on every later one); the client offers OpenSSL 3.0's default "
      "groups (X25519, P-256, X448, P-521, P-384), so the ECDSA P-256 certificate is usable in TLS 1.2 and "
      "every proxy negotiates X25519. Keep-alive: `wrk -t1 -c64` GET 100 B; bulk: curl 100 MiB down and "
      "up; both with OpenSSL's client defaults, so TLS 1.3 except on the 2.28 build (TLS 1.2). Idle memory: "
      "RSS growth of the proxy over N established, resumed, idle TLS 1.2 connections, per connection.\n")

    def row(label, test, key="cpu_us", nd=0, ratio_to="hitch"):
        vals = [m(test, n, key) for n in PROXIES]
        h = m(test, ratio_to, key)
        cells = ["%s (%s×)" % (fmt(x, nd), fmt(ratio(x, h), 2)) if x == x else "n/a" for x in vals]
        w("| %s | %s |" % (label, " | ".join(cells)))
    w("### Proxy CPU per operation, and ratio to hitch\n")
    w("| µs of proxy CPU per … | " + " | ".join(NAMES[n] for n in PROXIES) + " |")
    w("|---|" + "---:|" * len(PROXIES))
    for key, label, _ in HS_TESTS:
        row(label, key)
    row("keep-alive request", "keepalive", nd=1)
    row("bulk download, CPU s/GiB", "bulk_down", "cpu_s_per_gib", 2)
    row("bulk upload, CPU s/GiB", "bulk_up", "cpu_s_per_gib", 2)
    w("")
    w("Bytes per idle TLS connection (RSS growth over %s idle TLS 1.2 connections), ratio to HAProxy:\n"
      % fmt(float(meta["n_idle"])))
    w("| | " + " | ".join(NAMES[n] for n in PROXIES) + " |")
    w("|---|" + "---:|" * len(PROXIES))
    row("bytes per idle connection", "idle", "bytes_per_conn", 0, "haproxy")
    row("still open when measured", "idle", "still_open", 0, "haproxy")
    w("")
    w("Throughput (one proxy core) and what was negotiated:\n")
    w("| | " + " | ".join(NAMES[n] for n in PROXIES) + " |")
    w("|---|" + "---:|" * len(PROXIES))
    for key, label, _ in HS_TESTS:
        w("| %s, conn/s | %s |" % (label, " | ".join(fmt(m(key, n, "conn_per_s"), 0) for n in PROXIES)))
    for key, label in (("ecdsa12_resumed", "TLS 1.2 resumed %"), ("ecdsa13_resumed", "TLS 1.3 resumed %")):
        w("| %s | %s |" % (label, " | ".join(fmt(m(key, n, "resumed_pct"), 1) for n in PROXIES)))
    w("| keep-alive requests/s | %s |" % " | ".join(fmt(m("keepalive", n, "req_per_s"), 0) for n in PROXIES))
    w("| keep-alive p99 ms | %s |" % " | ".join(fmt(m("keepalive", n, "p99_ms"), 2) for n in PROXIES))
    w("| bulk download MiB/s | %s |" % " | ".join(fmt(m("bulk_down", n, "mib_per_s"), 0) for n in PROXIES))
    for key, label in (("ecdsa12_full", "TLS 1.2 full: suite, group"), ("ecdsa13_full", "TLS 1.3 full: suite, group")):
        w("| %s | %s |" % (label, " | ".join(
            ("`%s`, %s" % (res[key][n][0]["_cipher"], res[key][n][0]["_group"])) if n in res.get(key, {}) else "n/a"
            for n in PROXIES)))
    w("| bulk (curl): version, suite | %s |" % " | ".join(
        "%s, `%s`" % (res["bulk_down"][n][0]["_proto"], res["bulk_down"][n][0]["_cipher"]) for n in PROXIES))
    errs = {n: sum(r.get("errors", 0) for t in res for r in res[t].get(n, []) if isinstance(r, dict)) for n in PROXIES}
    w("| failed connections / non-2xx, all loads | %s |" % " | ".join(str(errs[n]) for n in PROXIES))
    w("")
    w("### Crypto floor of each build (`tests/bench/crypto_floor`, µs per operation, CPU s per GiB)\n")
    fl = meta["floors"]
    keys = ["ecdsa_p256_sign", "ecdhe_x25519", "ecdhe_secp256r1", "rsa2048_sign", "aes128_gcm_16k",
            "chacha20_poly1305_16k"]
    w("| primitive | " + " | ".join(NAMES[b] for b in BUILDS) + " |")
    w("|---|" + "---:|" * len(BUILDS))
    for k in keys:
        w("| %s | %s |" % (k, " | ".join(fmt(fl.get(b, {}).get(k, float("nan")), 1 if "16k" not in k else 2)
                                        for b in BUILDS)))
    fr = {b: fl.get(b, {}).get("ecdsa_p256_sign", float("nan")) + fl.get(b, {}).get("ecdhe_x25519", float("nan"))
          for b in BUILDS}
    w("| **TLS 1.2 full-handshake floor** (ECDSA sign + X25519 ECDHE) | %s |"
      % " | ".join("**%s**" % fmt(fr[b], 0) for b in BUILDS))
    w("| TLS 1.2 ECDSA full handshake measured / floor | %s |"
      % " | ".join(fmt(ratio(m("ecdsa12_full", b), fr[b]), 2) for b in BUILDS))
    w("")
    w("crypto_floor measures the TLS 1.2 primitives through mbedTLS's legacy APIs (`mbedtls_ecdh_*`, on "
      "Everest in the tuned build). TLS 1.3's X25519 goes through PSA instead: in the tuned build through "
      "tlsterm's Everest PSA driver (`src/mbedtls/everest_driver/`), in Debian 13's build through the generic "
      "ECP code; instruction counts per primitive (callgrind) are in "
      "[`tests/bench/results/mbedtls-switches.md`](../tests/bench/results/mbedtls-switches.md).\n")
    w("### Issue 15 targets\n")
    t12, h12 = m("ecdsa12_full", "tuned"), m("ecdsa12_full", "hitch")
    t13, h13 = m("ecdsa13_full", "tuned"), m("ecdsa13_full", "hitch")
    bt, bh = m("idle", "tuned", "bytes_per_conn"), m("idle", "haproxy", "bytes_per_conn")
    tg = [("TLS 1.2 full handshake (ECDSA P-256), tuned ≤ hitch", "%s µs vs %s µs (%s×)"
           % (fmt(t12, 0), fmt(h12, 0), fmt(ratio(t12, h12), 2)), t12 <= h12),
          ("TLS 1.3 full handshake (ECDSA P-256), tuned ≤ 1.3 × hitch", "%s µs vs 1.3 × %s = %s µs (%s×)"
           % (fmt(t13, 0), fmt(h13, 0), fmt(1.3 * h13, 0), fmt(ratio(t13, h13), 2)), t13 <= 1.3 * h13),
          ("RSA-2048 full handshakes (report)", "TLS 1.2: tuned %s× hitch; TLS 1.3: %s×"
           % (fmt(ratio(m("rsa12_full", "tuned"), m("rsa12_full", "hitch")), 2),
              fmt(ratio(m("rsa13_full", "tuned"), m("rsa13_full", "hitch")), 2)), None),
          ("Bytes per idle TLS connection, tuned ≤ HAProxy", "%s vs %s bytes" % (fmt(bt, 0), fmt(bh, 0)), bt <= bh)]
    w("| target | measured | result |\n|---|---|---|")
    for name, meas, ok in tg:
        w("| %s | %s | **%s** |" % (name, meas, "reported" if ok is None else ("MET" if ok else "MISSED")))
    w("")
    if chart_files:
        w("### Charts (generated by the harness with gnuplot)\n")
        for c in chart_files:
            w("![%s](%s)\n" % (c[:-4], c))
    extra = os.path.join(HERE, "three_builds_notes.md")
    if os.path.exists(extra):
        w(open(extra).read().rstrip() + "\n")
    if quick:
        w("_This was a `--quick` run (one run per figure, 2 s loads, 2,000 idle connections): use a full run for "
          "figures to quote._\n")
    return "\n".join(L) + "\n"


def splice(md_path, section):
    """replace SECTION (up to the next `## ` heading) in md_path, or append it"""
    txt = open(md_path).read() if os.path.exists(md_path) else ""
    i = txt.find(SECTION)
    if i < 0:
        txt = txt.rstrip() + "\n\n" + section
    else:
        j = txt.find("\n## ", i + len(SECTION))
        txt = txt[:i] + section + (txt[j + 1:] if j >= 0 else "")
    with open(md_path, "w") as f:
        f.write(txt)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-docs", action="store_true", help="write the TSV only (not docs/)")
    a = ap.parse_args()
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except Exception:
        pass
    signal.signal(signal.SIGTERM, bench.on_signal)
    signal.signal(signal.SIGHUP, bench.on_signal)
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (400000, 400000))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    bench.NOFILE = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if os.cpu_count() < 2:
        bench.OTHER_CPU = "0"
    bench.ensure_tools()
    meta = {"load_start": open("/proc/loadavg").read().split()[0]}
    t0 = time.time()
    tsv = []
    res = run_all(a, meta, tsv)
    meta["elapsed"] = time.time() - t0
    meta["load_end"] = open("/proc/loadavg").read().split()[0]
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    write_tsv(res, tsv, os.path.join(HERE, "results", "three-builds.tsv"))
    if not a.no_docs:
        cf = charts(res, meta)
        splice(os.path.join(REPO, "docs", "performance.md"), render(res, meta, cf, a.quick))
        log("wrote docs/performance.md (section), docs/perf-*.svg, tests/bench/results/three-builds.tsv")
    log("done in %.0f s" % meta["elapsed"])
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as e:
        log("interrupted:", e)
        bench.cleanup()
        sys.exit(130)
