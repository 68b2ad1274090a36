# SPDX-License-Identifier: BSD-2-Clause
"""Under valgrind memcheck: three GETs and a SIGTERM leave no leaks and no
memory errors."""

import os
import re
import shutil

import pytest

import tlsterm_harness as h


@pytest.mark.skipif(bool(h.SANITIZERS), reason="sanitizer build: valgrind cannot run it")
@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind not installed")
def test_no_leaks_under_valgrind(tmp_path, certs, http_backend, tlsterm):
    vglog = str(tmp_path / "valgrind.log")
    wrapper = ["valgrind", "--leak-check=full", "--show-leak-kinds=definite,indirect",
               "--errors-for-leak-kinds=definite,indirect", "--error-exitcode=99",
               "--log-file=" + vglog]
    d = tlsterm(h.one_listener(http_backend.port, workers=1), wrapper=wrapper,
                ready_timeout=h.T(120))
    for _ in range(3):
        status, body, _ = h.https_get(d.addr(), certs.rsa_cert, timeout=h.T(60))
        assert (status, body) == (200, h.BODY)
    d.wait_close(listener="https", count=3, timeout=h.T(60))
    problems = d.stop(timeout=h.T(120))
    report = open(vglog).read() if os.path.exists(vglog) else ""
    assert d.returncode != 99, "valgrind found errors:\n" + report
    assert not problems, problems
    assert d.returncode == 0
    assert "definitely lost: 0 bytes" in report or "All heap blocks were freed" in report, report
    assert not re.search(r"(definitely|indirectly) lost: [1-9]", report), report
    assert re.search(r"ERROR SUMMARY: 0 errors", report), report
