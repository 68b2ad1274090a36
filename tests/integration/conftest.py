# SPDX-License-Identifier: BSD-2-Clause
"""Fixtures for the tlsterm integration suite (helpers: tlsterm_harness.py).

  certs           session: RSA and ECDSA self-signed certs + a stray key
  backend(cls, …) function: starts a backend server thread, stopped after
  tlsterm(cfg, …) function: starts the daemon; after the test it is
                  stopped and checked (all connections logged closed,
                  exit 0 on SIGTERM, "stopping; 0 connection(s) open",
                  no sanitizer report)
"""

import os

import pytest

import tlsterm_harness as h


def pytest_report_header(config):
    return "tlsterm: %s (protocols: %s; sanitizers: %s, timeout scale %.1f)" % (
        h.BIN or "TLSTERM_BIN NOT SET", h.PROTOCOLS or "unknown",
        h.SANITIZERS or "no", h.SCALE)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def pytest_collection_modifyitems(config, items):
    if not h.BIN:
        raise pytest.UsageError("set TLSTERM_BIN to the tlsterm binary to test")
    if not os.access(h.BIN, os.X_OK):
        raise pytest.UsageError("TLSTERM_BIN=%s is not an executable" % h.BIN)


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    return h.Certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def backend():
    started = []

    def start(cls, *args, **kw):
        b = cls(*args, **kw).start()
        started.append(b)
        return b

    yield start
    for b in reversed(started):
        b.stop()


@pytest.fixture
def http_backend(backend):
    return backend(h.HttpBackend)


@pytest.fixture
def tlsterm(request, tmp_path, certs, backend):
    """tlsterm(cfg, name="tlsterm", wrapper=None) -> started h.Tlsterm.

    Depends on `backend` so that daemons stop before the backends do."""
    daemons = []

    def start(cfg, name="tlsterm", wrapper=None, ready_timeout=None):
        d = h.Tlsterm(tmp_path / name, cfg, certs=certs, wrapper=wrapper, name=name)
        daemons.append(d)
        return d.start(ready_timeout=ready_timeout)

    yield start
    problems = []
    for d in reversed(daemons):
        problems += ["%s: %s" % (d.name, p) for p in d.stop()]
    failed = getattr(request.node, "rep_call", None)
    if problems or (failed is not None and failed.failed):
        for d in daemons:
            print("----- %s log (%s) -----" % (d.name, d.log_path))
            print(d.log_tail(80))
    if problems:
        pytest.fail("tlsterm end-of-test checks failed:\n  " + "\n  ".join(problems), pytrace=False)
