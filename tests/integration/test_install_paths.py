# SPDX-License-Identifier: BSD-2-Clause
"""One configuration path, and an install that never overwrites it.

The path the binary reads by default (`tlsterm -h`), the one the built
systemd unit names, and the one README, the operator guide, the man pages
and the example configuration tell the operator are the same:
/etc/tlsterm/tlsterm.yaml (configure makes /etc the sysconfdir for the
prefixes /usr/local and /usr). `make install` installs the example as
tlsterm.yaml.example every time and as tlsterm.yaml only when there is none.
"""

import os
import re
import shutil
import subprocess

import pytest

import tlsterm_harness as h

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.environ.get("TLSTERM_SRCDIR") or os.path.normpath(os.path.join(HERE, "..", ".."))
BUILDDIR = os.path.dirname(os.path.dirname(os.path.abspath(h.BIN))) if h.BIN else ""
CONFIG = "/etc/tlsterm/tlsterm.yaml"
EXAMPLE = os.path.join(SRCDIR, "conf", "tlsterm.yaml.example")
# what the operator reads; the man pages are checked on their own below
DOCS = ["README.md", "docs/operator-guide.md", "conf/tlsterm.yaml.example",
        "debian/control"]
MAN_PAGES = ["docs/tlsterm.8", "docs/tlsterm.yaml.5"]
# any absolute path that ends in tlsterm/tlsterm.yaml (man pages write \- for -)
CONFIG_PATH = re.compile(r"(/[\w./\\-]*?)/tlsterm/tlsterm\.yaml(?![\w.])")


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def make_var(name):
    """A variable of the build's Makefile (prefix, sysconfdir, sbindir),
    with ${prefix} and ${exec_prefix} expanded."""
    m = re.search(r"^%s = (.*)$" % re.escape(name),
                  read(os.path.join(BUILDDIR, "Makefile")), re.M)
    value = m.group(1).strip()
    return re.sub(r"\$\{(prefix|exec_prefix)\}", lambda v: make_var(v.group(1)), value)


def needs_build_tree():
    if not BUILDDIR or not os.path.isfile(os.path.join(BUILDDIR, "Makefile")):
        pytest.skip("TLSTERM_BIN is not in a configured build tree")


def help_default():
    r = h.run([h.BIN, "-h"], timeout=h.T(10))
    text = (r.stdout + r.stderr).decode(errors="replace")
    m = re.search(r"-c FILE\s+configuration file \(default (\S+)\)", text)
    assert m, text
    return m.group(1)


def test_help_names_the_configured_default():
    """`tlsterm -h` prints sysconfdir/tlsterm/tlsterm.yaml of its build, and
    a build configured without --sysconfdir for /usr/local or /usr says
    /etc/tlsterm/tlsterm.yaml, the path every document uses."""
    needs_build_tree()
    sysconfdir = make_var("sysconfdir")
    assert help_default() == sysconfdir + "/tlsterm/tlsterm.yaml"
    log = read(os.path.join(BUILDDIR, "config.log"))
    invocation = re.search(r"^\s+\$ (.*configure.*)$", log, re.M).group(1)
    if make_var("prefix") in ("/usr/local", "/usr") and "--sysconfdir" not in invocation:
        assert sysconfdir == "/etc", (invocation, sysconfdir)


def test_unit_names_the_same_path():
    """The generated tlsterm.service runs sbindir/tlsterm on the path
    `tlsterm -h` names, in ExecStartPre, ExecStart and ExecReload."""
    needs_build_tree()
    unit = os.path.join(BUILDDIR, "systemd", "tlsterm.service")
    if not os.path.isfile(unit):
        pytest.skip("systemd/tlsterm.service not built")
    conf = help_default()
    sbindir = make_var("sbindir")
    lines = [ln for ln in read(unit).splitlines()
             if re.match(r"Exec(StartPre|Start|Reload)=\S*tlsterm ", ln)]
    assert len(lines) == 3, lines
    for ln in lines:
        assert ln.split("=", 1)[1].endswith("tlsterm -t -c " + conf) or \
            ln.split("=", 1)[1].endswith("tlsterm -c " + conf), ln
        assert ln.split("=", 1)[1].startswith(sbindir + "/tlsterm "), (ln, sbindir)


def config_paths(rel):
    text = read(os.path.join(SRCDIR, rel)).replace("\\-", "-")
    return [m.group(0) for m in CONFIG_PATH.finditer(text)]


@pytest.mark.parametrize("doc", DOCS)
def test_docs_name_one_path(doc):
    """README, the operator guide, the example and the package description
    name the configuration /etc/tlsterm/tlsterm.yaml and nothing else, and
    never a path under /usr/local/etc."""
    paths = config_paths(doc)
    assert paths, "%s names no configuration path" % doc
    assert set(paths) == {CONFIG}, (doc, sorted(set(paths)))
    assert "/usr/local/etc" not in read(os.path.join(SRCDIR, doc)), doc


@pytest.mark.parametrize("page", MAN_PAGES)
def test_man_pages_name_one_path(page):
    """tlsterm(8) and tlsterm.yaml(5) name the same path as everything else
    (-c default, FILES, DESCRIPTION)."""
    paths = config_paths(page)
    assert paths, "%s names no configuration path" % page
    assert set(paths) == {CONFIG}, (page, sorted(set(paths)))
    assert "/usr/local/etc" not in read(os.path.join(SRCDIR, page)), page


def listen_stream():
    text = read(os.path.join(SRCDIR, "systemd", "tlsterm.socket"))
    return re.findall(r"^ListenStream=(\S+)$", text, re.M)


def test_example_listens_where_the_socket_unit_does():
    """The example's listener has exactly tlsterm.socket's ListenStream=
    addresses, so socket activation works with it unchanged."""
    m = re.search(r"^\s+listen: \[(.*)\]$", read(EXAMPLE), re.M)
    assert m, "no one-line listen: list in the example"
    listen = [a.strip().strip('"') for a in m.group(1).split(",")]
    assert listen == listen_stream()


def test_example_passes_check_with_a_certificate(tmp_path, certs):
    """The example is a complete configuration once the operator's parts
    are there: the certificate and key it names (here a test pair) and the
    user it drops to (here the one running the test)."""
    text = read(EXAMPLE)
    for line in ("user: tlsterm", "group: tlsterm"):
        assert re.search("^%s$" % line, text, re.M), line
    text = re.sub(r"^(user|group): tlsterm$", "", text, flags=re.M)
    conf = tmp_path / "tlsterm.yaml"
    conf.write_text(text)
    r = h.run([h.BIN, "-t", "-c", str(conf)], timeout=h.T(30))
    out = (r.stdout + r.stderr).decode(errors="replace")
    assert r.returncode != 0 and "cannot read certificate %s/server.pem" % tmp_path in out, out
    cert, key = certs.pair("ec")
    shutil.copy(cert, tmp_path / "server.pem")
    shutil.copy(key, tmp_path / "server.key")
    r = h.run([h.BIN, "-t", "-c", str(conf)], timeout=h.T(30))
    out = (r.stdout + r.stderr).decode(errors="replace")
    assert r.returncode == 0 and "configuration OK" in out, out


def make_install(destdir):
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
    r = subprocess.run(["make", "-s", "install", "DESTDIR=" + str(destdir)], cwd=BUILDDIR,
                       env=env, capture_output=True, timeout=h.T(300))
    out = (r.stdout + r.stderr).decode(errors="replace")
    assert r.returncode == 0, out
    return out


def test_make_install_never_overwrites_the_configuration(tmp_path):
    """make install: the example as tlsterm.yaml.example, refreshed every
    time, and as tlsterm.yaml only when there is none; make uninstall
    removes tlsterm.yaml only while it is the unchanged example."""
    needs_build_tree()
    confdir = tmp_path / make_var("sysconfdir").lstrip("/") / "tlsterm"
    example = read(EXAMPLE)
    make_install(tmp_path)
    assert (confdir / "tlsterm.yaml").read_text() == example
    assert (confdir / "tlsterm.yaml.example").read_text() == example
    # the operator edits the configuration; an old example is still there
    mine = example + "# the operator's own line\n"
    (confdir / "tlsterm.yaml").write_text(mine)
    (confdir / "tlsterm.yaml.example").write_text("# an older release's example\n")
    out = make_install(tmp_path)
    assert "keeping" in out, out
    assert (confdir / "tlsterm.yaml").read_text() == mine
    assert (confdir / "tlsterm.yaml.example").read_text() == example
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    r = subprocess.run(["make", "-s", "uninstall", "DESTDIR=" + str(tmp_path)], cwd=BUILDDIR,
                       env=env, capture_output=True, timeout=h.T(120))
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    assert sorted(os.listdir(confdir)) == ["tlsterm.yaml"]
    assert (confdir / "tlsterm.yaml").read_text() == mine
