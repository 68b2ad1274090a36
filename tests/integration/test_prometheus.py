# SPDX-License-Identifier: BSD-2-Clause
"""A real Prometheus (Debian's `prometheus` package) scrapes tlsterm's
admin listener (issue 16): the target is up, the exposition parses (a
parse error would make `up` 0 and fill the target's lastError), and after
known traffic the counters Prometheus stored are exactly the traffic:
handshakes, accepted connections, backend connects, the handshake
histogram.  `promtool check metrics` lints the exposition itself.

Prometheus runs as a child of the test on 127.0.0.1 with its own TSDB in
the test's temporary directory, scraping every second; the test waits on
query results against a deadline and stops Prometheus by its PID."""

import json
import os
import shutil
import signal
import ssl
import subprocess
import urllib.error
import urllib.parse
import urllib.request

import pytest

import tlsterm_harness as h

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
NOT_INSTALLED = "%s is not installed (Debian package prometheus; CI installs it)"

# The number of HTTPS requests sent through tlsterm.
REQUESTS = 6


def http_get(url, timeout=None, headers=None):
    """(status, headers, body) of a plain-HTTP GET; an HTTP error status is
    returned, not raised."""
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout or h.T(10)) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


class Prometheus:
    """One Prometheus server scraping `targets` (job "tlsterm") every
    second, its data, config and log in `workdir`."""

    def __init__(self, workdir, targets):
        self.dir = str(workdir)
        os.makedirs(self.dir, exist_ok=True)
        self.port = h.free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.conf = os.path.join(self.dir, "prometheus.yml")
        self.log_path = os.path.join(self.dir, "prometheus.log")
        self.proc = None
        with open(self.conf, "w") as f:
            f.write("global:\n"
                    "  scrape_interval: 1s\n"
                    "  scrape_timeout: 1s\n"
                    "  evaluation_interval: 1s\n"
                    "scrape_configs:\n"
                    "  - job_name: tlsterm\n"
                    "    static_configs:\n"
                    "      - targets: [%s]\n" % ", ".join('"%s"' % t for t in targets))

    def start(self):
        self._log_f = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [PROMETHEUS, "--config.file=" + self.conf,
             "--storage.tsdb.path=" + os.path.join(self.dir, "data"),
             "--web.listen-address=127.0.0.1:%d" % self.port,
             "--log.level=info"],
            stdin=subprocess.DEVNULL, stdout=self._log_f, stderr=subprocess.STDOUT,
            cwd=self.dir, preexec_fn=h.die_with_parent)

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("prometheus exited with %s:\n%s"
                                     % (self.proc.returncode, self.log()))
            try:
                return http_get(self.url + "/-/ready", timeout=h.T(2))[0] == 200
            except OSError:
                return False
        h.wait_until(ready, h.T(30), "prometheus to be ready", interval=0.1)
        return self

    def stop(self):
        """SIGTERM by PID, SIGKILL at the deadline."""
        if self.proc is None or self.proc.poll() is not None:
            self._close()
            return
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=h.T(20))
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=h.T(10))
        self._close()

    def _close(self):
        f = getattr(self, "_log_f", None)
        if f is not None and not f.closed:
            f.close()

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def api(self, path, **params):
        url = self.url + path + ("?" + urllib.parse.urlencode(params) if params else "")
        status, _, body = http_get(url)
        doc = json.loads(body)
        assert status == 200 and doc.get("status") == "success", (url, status, body[:500])
        return doc["data"]

    def query(self, expr):
        """The instant vector of `expr` now: [(labels, float value)]."""
        data = self.api("/api/v1/query", query=expr)
        assert data["resultType"] == "vector", data
        return [(r["metric"], float(r["value"][1])) for r in data["result"]]

    def scalar(self, expr):
        """The value of a one-element vector, None while it is empty."""
        v = self.query(expr)
        assert len(v) <= 1, (expr, v)
        return v[0][1] if v else None

    def wait_value(self, expr, want, timeout=None):
        """Waits until `expr` is a one-element vector of value `want`."""
        last = []

        def check():
            last[:] = [self.scalar(expr)]
            return last[0] == want
        try:
            h.wait_until(check, timeout or h.T(30), "%s == %s" % (expr, want), interval=0.2)
        except AssertionError as e:
            raise AssertionError("%s; last value %s; targets: %s" % (
                e, last, json.dumps(self.api("/api/v1/targets")["activeTargets"])))


@pytest.fixture
def prometheus(tmp_path):
    """prometheus(targets) -> a started Prometheus, stopped after the test."""
    if not os.access(PROMETHEUS, os.X_OK):
        pytest.skip(NOT_INSTALLED % PROMETHEUS)
    started = []

    def start(targets):
        p = Prometheus(tmp_path / ("prometheus%d" % len(started)), targets)
        started.append(p)
        return p.start()

    yield start
    for p in started:
        p.stop()


def wait_admin(admin):
    """Waits until the admin listener answers /healthz."""
    def up():
        try:
            return http_get("http://%s/healthz" % admin, timeout=h.T(2))[0] == 200
        except OSError:
            return False
    h.wait_until(up, h.T(10), "the admin listener on %s" % admin, interval=0.05)


def admin_cfg(backend_port):
    cfg = h.one_listener(backend_port)
    cfg["admin"] = {"listen": "127.0.0.1:%d" % h.free_port()}
    return cfg


def cert_serial_and_not_after(path):
    """(serial as upper-case hex without leading zeros, notAfter as unix
    time) of a PEM certificate."""
    r = h.run(["openssl", "x509", "-in", path, "-noout", "-serial", "-enddate"])
    assert r.returncode == 0, r.stderr
    f = dict(line.split("=", 1) for line in r.stdout.decode().split("\n") if "=" in line)
    not_after = int(ssl.cert_time_to_seconds(f["notAfter"].strip()))
    return f["serial"].strip().upper().lstrip("0"), not_after


def test_prometheus_scrapes_tlsterm(certs, http_backend, tlsterm, prometheus):
    cfg = admin_cfg(http_backend.port)
    d = tlsterm(cfg)
    admin = cfg["admin"]["listen"]
    wait_admin(admin)
    prom = prometheus([admin])

    # Before the traffic: the target is up and Prometheus stored the
    # accepted count of the harness's readiness probes (a TCP connect per
    # listen address, no bytes: accepted, and no handshake).
    probes = len(d.probe_ports)
    prom.wait_value('up{job="tlsterm"}', 1)
    prom.wait_value('tlsterm_connections_accepted_total{job="tlsterm",listener="https"}', probes)
    assert prom.query('tlsterm_handshakes_total{result="ok"}') == []

    for _ in range(REQUESTS):
        status, body, _ = h.https_get(d.addr(), certs.rsa_cert)
        assert (status, body) == (200, h.BODY)
    lines = d.wait_close(listener="https", count=REQUESTS)
    # the suites by their IANA names, from the close lines' mbedTLS names
    iana = {v: k for k, v in h.SUITES13.items()}
    suites = {iana.get(l["cipher"], l["cipher"].replace("-", "_")) for l in lines}

    # Prometheus stores the new values on a later scrape: wait for them.
    prom.wait_value('sum(tlsterm_handshakes_total{job="tlsterm",result="ok"})', REQUESTS)
    prom.wait_value('tlsterm_connections_accepted_total{job="tlsterm",listener="https"}',
                    REQUESTS + probes)
    assert prom.scalar('up{job="tlsterm"}') == 1

    # Everything below comes from the same or a later scrape as the values
    # waited for above: counters only grow, and no more traffic was sent.
    ok = prom.query('tlsterm_handshakes_total{result="ok"}')
    assert sum(v for _, v in ok) == REQUESTS
    for labels, _ in ok:
        assert labels["listener"] == "https", labels
        assert labels["version"] == h.DEFAULT_TLS, labels
        assert labels["suite"] in suites, (labels, suites)
        assert labels["resumed"] == "false", labels
    assert prom.scalar('sum(tlsterm_handshakes_total{result="failed"})') == 0
    # the histogram arrived whole: the +Inf bucket and _count are the handshakes
    assert prom.scalar('sum(tlsterm_handshake_duration_seconds_bucket{le="+Inf"})') == REQUESTS
    assert prom.scalar('sum(tlsterm_handshake_duration_seconds_count)') == REQUESTS
    server = "127.0.0.1:%d" % http_backend.port
    assert prom.scalar('tlsterm_backend_connects_total{backend="app",server="%s"}'
                       % server) == REQUESTS
    assert prom.scalar('tlsterm_server_up{backend="app",server="%s"}' % server) == 1
    assert prom.scalar('tlsterm_connections_open{listener="https"}') == 0
    assert prom.scalar('tlsterm_reloads_total{result="failure"}') == 0
    assert prom.scalar("tlsterm_generation") == 1
    assert prom.scalar("tlsterm_draining") == 0
    workers = prom.query("tlsterm_worker_up")
    assert sorted(l["worker"] for l, _ in workers) == [str(i) for i in range(cfg["workers"])]
    assert all(v == 1 for _, v in workers), workers
    serial, not_after = cert_serial_and_not_after(certs.rsa_cert)
    cert = prom.query("tlsterm_certificate_not_after_seconds")
    assert len(cert) == 1, cert
    assert cert[0][0]["listener"] == "https" and cert[0][0]["names"] == "localhost", cert
    assert cert[0][0]["serial"].lstrip("0") == serial, (cert, serial)
    assert cert[0][1] == not_after, (cert, not_after)

    # the target as Prometheus sees it: healthy, no scrape error
    targets = prom.api("/api/v1/targets")["activeTargets"]
    assert len(targets) == 1, targets
    assert targets[0]["labels"]["instance"] == admin, targets
    assert targets[0]["health"] == "up" and targets[0]["lastError"] == "", targets


def test_metrics_pass_promtool_lint(certs, http_backend, tlsterm):
    """`promtool check metrics` (the text format and the naming
    conventions: HELP and TYPE, _total counters, base units) finds
    nothing in an exposition with every kind of family populated."""
    if not os.access(PROMTOOL, os.X_OK):
        pytest.skip(NOT_INSTALLED % PROMTOOL)
    cfg = admin_cfg(http_backend.port)
    d = tlsterm(cfg)
    wait_admin(cfg["admin"]["listen"])
    for _ in range(2):
        status, body, _ = h.https_get(d.addr(), certs.rsa_cert)
        assert (status, body) == (200, h.BODY)
    d.wait_close(listener="https", count=2)
    status, hdrs, body = http_get("http://%s/metrics" % cfg["admin"]["listen"])
    assert status == 200, (status, body[:300])
    assert hdrs["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8", hdrs
    r = h.run([PROMTOOL, "check", "metrics"], input=body)
    out = (r.stdout + r.stderr).decode(errors="replace")
    assert r.returncode == 0 and out.strip() == "", out
