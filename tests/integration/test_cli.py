# SPDX-License-Identifier: BSD-2-Clause
"""The command line: -V, -h, a bad option, a missing config file."""

import re

import tlsterm_harness as h


def test_version():
    r = h.run([h.BIN, "-V"], timeout=h.T(10))
    assert r.returncode == 0
    lines = r.stdout.decode().splitlines()
    assert re.fullmatch(r"tlsterm \d+\.\d+\.\d+", lines[0]), lines
    for lib in ("mbedTLS", "libevent", "libyaml"):
        assert any(re.fullmatch(r"%s \S+.*" % lib, l) for l in lines[1:]), (lib, lines)


def test_help():
    r = h.run([h.BIN, "-h"], timeout=h.T(10))
    assert r.returncode == 0
    assert r.stdout.decode().startswith("usage: tlsterm")
    assert "-c FILE" in r.stdout.decode()
    assert r.stderr == b""


def test_unknown_option():
    r = h.run([h.BIN, "-Z"], timeout=h.T(10))
    assert r.returncode == 2
    assert "usage: tlsterm" in r.stderr.decode()
    assert r.stdout == b""


def test_missing_config_file(tmp_path):
    missing = str(tmp_path / "nope.yaml")
    for args in (["-c", missing], ["-t", "-c", missing]):
        r = h.run([h.BIN, *args], timeout=h.T(10))
        assert r.returncode == 1, (args, r.returncode)
        err = r.stderr.decode()
        assert missing in err, err
        assert r.stdout == b""
