# SPDX-License-Identifier: BSD-2-Clause
"""The example alerting rules in docs/alerts/ (issue 16): promtool (from
Debian's `prometheus` package) accepts them and their unit tests pass,
every rule has a unit test where it fires and one where it does not, and
every metric, label matcher and $labels.X the rules use is one a running
tlsterm exports, so the rules cannot drift from /metrics unnoticed."""

import os
import re
import shutil
import urllib.request

import pytest

import tlsterm_harness as h

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.environ.get("TLSTERM_SRCDIR") or os.path.normpath(os.path.join(HERE, "..", ".."))
ALERTS = os.path.join(SRCDIR, "docs", "alerts")
RULES = os.path.join(ALERTS, "tlsterm-rules.yml")
RULE_TESTS = os.path.join(ALERTS, "tlsterm-rules.test.yml")
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"

needs_promtool = pytest.mark.skipif(
    not os.access(PROMTOOL, os.X_OK),
    reason="%s is not installed (Debian package prometheus; CI installs it)" % PROMTOOL)


def promtool(*args):
    r = h.run([PROMTOOL, *args], timeout=h.T(60), cwd=ALERTS)
    return r.returncode, (r.stdout + r.stderr).decode(errors="replace")


def load_yaml(path):
    yaml = pytest.importorskip("yaml", reason="python3-yaml is not installed")
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def alerting_rules():
    return [r for g in load_yaml(RULES)["groups"] for r in g["rules"] if "alert" in r]


@needs_promtool
def test_promtool_check_rules():
    rc, out = promtool("check", "rules", RULES)
    assert rc == 0, out
    n = len(alerting_rules())
    assert "SUCCESS: %d rules found" % n in out, out


@needs_promtool
def test_promtool_unit_tests_pass():
    rc, out = promtool("test", "rules", RULE_TESTS)
    assert rc == 0, out
    assert "SUCCESS" in out and "FAILED" not in out, out


def test_every_rule_has_a_firing_and_a_quiet_case():
    tests = load_yaml(RULE_TESTS)
    assert tests["rule_files"] == [os.path.basename(RULES)], tests["rule_files"]
    fires, quiet = set(), set()
    for group in tests["tests"]:
        for case in group.get("alert_rule_test", []):
            (fires if case.get("exp_alerts") else quiet).add(case["alertname"])
    names = [r["alert"] for r in alerting_rules()]
    assert len(names) == len(set(names)), names
    assert [n for n in names if n not in fires] == [], "rules never tested firing"
    assert [n for n in names if n not in quiet] == [], "rules never tested not firing"
    assert (fires | quiet) <= set(names), "tests of alerts that do not exist"
    for r in alerting_rules():
        assert r["labels"]["severity"] in ("warning", "critical"), r
        assert r["annotations"].get("summary") and r["annotations"].get("description"), r


# ---------------------------------------------------------------- drift

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? \S+$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def exposition(text):
    """{sample name: {label name: {values}}} of a text exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        assert m, "not a sample line: %r" % line
        labels = out.setdefault(m.group(1), {})
        for k, v in _LABEL.findall(m.group(2) or ""):
            labels.setdefault(k, set()).add(v)
    return out


def test_rules_use_what_tlsterm_exports(certs, http_backend, tlsterm):
    cfg = h.one_listener(http_backend.port)
    cfg["admin"] = {"listen": "127.0.0.1:%d" % h.free_port()}
    d = tlsterm(cfg)
    status, body, _ = h.https_get(d.addr(), certs.rsa_cert)     # an "ok" handshake series
    assert (status, body) == (200, h.BODY)
    d.wait_close(listener="https")
    with urllib.request.urlopen("http://%s/metrics" % cfg["admin"]["listen"],
                                timeout=h.T(10)) as r:
        exported = exposition(r.read().decode())

    for rule in alerting_rules():
        expr = rule["expr"]
        names = set(re.findall(r"\btlsterm_[a-z_]+\b", expr))
        assert names, rule["alert"]
        for n in names:
            assert n in exported, "%s: %s is not in /metrics" % (rule["alert"], n)
        # every name{label="value"} matcher matches what tlsterm exports
        for n, matchers in re.findall(r"\b(tlsterm_[a-z_]+)\{([^}]*)\}", expr):
            for k, v in _LABEL.findall(matchers):
                assert v in exported[n].get(k, set()), "%s: no %s{%s=%r} in /metrics (%s)" % (
                    rule["alert"], n, k, v, exported[n])
        # the labels the annotations name are labels of those metrics
        # (job and instance come from the scrape)
        have = {"job", "instance"}.union(*(exported[n].keys() for n in names))
        for text in rule["annotations"].values():
            for label in re.findall(r"\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)", text):
                assert label in have, "%s: $labels.%s, but %s have only %s" % (
                    rule["alert"], label, sorted(names), sorted(have))
