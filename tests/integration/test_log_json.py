# SPDX-License-Identifier: BSD-2-Clause
"""log.format: json -- every line one JSON object (ts, level, then one
member per key=value field, integers as numbers, msg for plain text);
control bytes escaped; the format switches with a reload while workers
log; and hs_ms/ms are true milliseconds, not 4 ms steps."""

import json
import re
import signal
import socket
import threading

import tlsterm_harness as h


class JsonTlsterm(h.Tlsterm):
    """The harness's close-line helpers, reading JSON lines."""

    def objects(self):
        out = []
        for line in self.log_lines():
            out.append(json.loads(line))        # every line must parse
        return out

    def close_lines(self, include_probes=False, listener=None):
        out = []
        for o in self.objects():
            if "conn" not in o or "reason" not in o:
                continue
            port = int(o["client"].rsplit(":", 1)[1])
            if not include_probes and port in self.probe_ports:
                continue
            if listener is None or o["listener"] == listener:
                o["line"] = json.dumps(o)
                out.append(o)
        return out

    def _closed_ports(self):
        return {int(o["client"].rsplit(":", 1)[1]) for o in self.close_lines(True)}

    def stop(self, *a, **kw):
        problems = [p for p in super().stop(*a, **kw) if "'stopped:' line" not in p]
        if self.returncode == 0 and not any(o.get("msg", "").startswith("stopped: ")
                                            for o in self.objects()):
            problems.append("no stopped: line in the JSON log")
        return problems

    def counts(self):
        objs = self.objects()
        return (sum(1 for o in objs if o.get("msg") == "accepted"),
                sum(1 for o in objs if "reason" in o and "conn" in o))


def start_json(tmp_path, certs, cfg):
    d = JsonTlsterm(tmp_path / "d", cfg, certs=certs)
    return d.start()


def test_json_lines(certs, http_backend, tmp_path):
    cfg = h.one_listener(http_backend.port, log_level="debug")
    cfg["log"]["format"] = "json"
    d = start_json(tmp_path, certs, cfg)
    try:
        status, body, port = h.https_get(d.addr(), certs.rsa_cert)
        assert (status, body) == (200, h.BODY)
        line = d.wait_close(port=port)
        raw = socket.create_connection(d.addr(), timeout=h.T(10))
        bad_port = raw.getsockname()[1]
        raw.sendall(b"GET /\x01\"\\ HTTP/1.1\r\n\r\n")
        h.recv_all(raw)
        raw.close()
        bad = d.wait_close(port=bad_port)
    finally:
        problems = d.stop()
    assert problems == []
    objs = d.objects()
    for o in objs:
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", o["ts"]), o
        assert o["level"] in ("error", "warn", "info", "debug"), o
    # the access line: one member per field, numbers as numbers
    assert line["conn"] > 0 and line["listener"] == "https" and line["reason"].startswith("done"), line
    for k in ("in", "out", "hs_ms", "ms", "open", "gen", "resumed"):
        assert isinstance(line[k], int), (k, line)
    assert line["tls"] == "TLSv1.2" or line["tls"] == "TLSv1.3", line
    assert line["client"] == "127.0.0.1:%d" % port and "msg" not in line, line
    assert bad["reason"] == "plain HTTP request sent to the TLS port", bad
    # plain messages: msg; "conn=N client=.. listener=.. accepted": fields + msg
    assert any(o.get("msg", "").startswith("tlsterm ") and " ready: " in o["msg"]
               for o in objs), objs[:5]
    acc = [o for o in objs if o.get("msg") == "accepted"]
    assert acc and all(isinstance(o["conn"], int) for o in acc), acc[:3]


def test_json_escapes_control_bytes(certs, http_backend, tmp_path):
    """An SNI with a tab and a quote: the daemon makes it '?' in any
    format; a config path with a newline reaches the log unchanged, and
    JSON escapes it as \\u000a."""
    d_dir = tmp_path / "we\nird\"dir"
    cfg = h.one_listener(http_backend.port, log_level="info")
    cfg["log"]["format"] = "json"
    d = JsonTlsterm(d_dir, cfg, certs=certs)
    d.start()
    try:
        d.send_signal(signal.SIGHUP)
        d.wait_log(r'"msg":"reloaded .*we\\u000aird\\"dir', what="the reload line")
    finally:
        problems = d.stop()
    assert problems == []
    assert any("we\nird\"dir" in o.get("msg", "") for o in d.objects())


def test_format_switch_on_reload(certs, http_backend, tmp_path):
    """Text to JSON by a reload while clients keep the workers logging:
    every line is whole, text before the switch and JSON after it."""
    cfg = h.one_listener(http_backend.port, log_level="info")
    d = h.Tlsterm(tmp_path / "d", cfg, certs=certs).start()
    stop = threading.Event()
    errors = []

    def clients():
        while not stop.is_set():
            try:
                h.https_get(d.addr(), certs.rsa_cert)
            except Exception as e:      # noqa: BLE001 -- reported below
                errors.append(e)

    t = threading.Thread(target=clients)
    t.start()
    try:
        h.wait_until(lambda: len(d.close_lines()) >= 5, h.T(20), "some text access lines")
        cfg["log"]["format"] = "json"
        d.rewrite(cfg)
        d.send_signal(signal.SIGHUP)
        d.wait_log(r'^\{"ts":.*"msg":"reloaded ', what="the reload line, in JSON")
        h.wait_until(lambda: sum(l.startswith('{"ts":') and '"reason":"done' in l
                                 for l in d.log_lines()) >= 5, h.T(20), "json access lines")
    finally:
        stop.set()
        t.join()
        d.expect_open_at_stop = None
        problems = d.stop()
    problems = [p for p in problems if "'stopped:' line" not in p]     # it is JSON
    assert problems == [] and errors == [], (problems, errors)
    lines = d.log_lines()
    first_json = next(i for i, l in enumerate(lines) if l.startswith("{"))
    for l in lines[:first_json]:
        assert re.match(r"^\S+Z (error|warn|info|debug) ", l), l
    for l in lines[first_json:]:
        json.loads(l)


def test_timings_are_true_milliseconds(certs, http_backend, tlsterm):
    """With a 4 ms clock every ms value is a multiple of 4 (or close to
    one); over 40 connections true milliseconds show other values."""
    d = tlsterm(h.one_listener(http_backend.port, log_level="info"))
    ports = [h.https_get(d.addr(), certs.rsa_cert)[2] for _ in range(40)]
    lines = [d.wait_close(port=p) for p in ports]
    values = [l["hs_ms"] for l in lines] + [l["ms"] for l in lines]
    assert any(v % 4 not in (0,) for v in values), values
