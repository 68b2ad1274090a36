# SPDX-License-Identifier: BSD-2-Clause
"""The man pages: they format without a groff warning, man(1) renders
them, and they document every config key and every command-line option.

Convention the key checks rely on: in tlsterm.yaml.5 every key is the tag
(the line after .TP) of its own entry, written as its path with the
placeholders in italics, e.g. `.B tls.tickets.key_file`,
`.B certificates[].cert` or `.BI backends. name .servers`.
"""

import os
import re
import shutil

import pytest

import tlsterm_harness as h

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.environ.get("TLSTERM_SRCDIR") or os.path.normpath(os.path.join(HERE, "..", ".."))
DOCS = os.path.join(SRCDIR, "docs")
CONFIG_C = [os.path.join(SRCDIR, "src", f) for f in ("config.c", "config_backend.c",
                                                               "config_listener.c", "config_limits.c",
                                                               "config_admin.c", "config_core.c")]
PAGES = ["tlsterm.8", "tlsterm.yaml.5"]
# Sections of tlsterm.yaml.5 whose .TP tags are config keys and nothing else.
KEY_SECTIONS = ("TOP-LEVEL KEYS", "LISTENERS", "BACKENDS")

needs_groff = pytest.mark.skipif(shutil.which("groff") is None,
                                 reason="groff not installed (Debian package groff-base)")
needs_man = pytest.mark.skipif(shutil.which("man") is None,
                               reason="man not installed (Debian package man-db)")


def page_path(name):
    return os.path.join(DOCS, name)


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


# ---------------------------------------------------------------- formatting

@needs_groff
@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("tbl", [False, True], ids=["plain", "tbl"])
def test_groff_has_no_warnings(page, tbl):
    """groff -man -Tutf8 -ww -z: every warning enabled, output discarded;
    also through tbl, as man(1) formats a page whose first line asks for it."""
    if not tbl and read(page_path(page)).startswith("'\\\" t"):
        # man(1) always runs tbl for such a page; groff 1.23 (Debian 13)
        # warns about a table formatted without it, 1.22 did not
        pytest.skip("%s asks for tbl on its first line" % page)
    cmd = ["groff"] + (["-t"] if tbl else []) + ["-man", "-Tutf8", "-ww", "-z", page_path(page)]
    r = h.run(cmd, timeout=h.T(60))
    assert r.returncode == 0, (cmd, r.returncode, r.stderr.decode(errors="replace"))
    assert r.stdout == b"" and r.stderr == b"", (cmd, r.stderr.decode(errors="replace"))


def man_render(page):
    env = dict(os.environ, MANWIDTH="80", PAGER="cat", MANPAGER="cat")
    env.pop("MAN_KEEP_FORMATTING", None)
    return h.run(["man", "-l", page_path(page)], env=env, timeout=h.T(60))


@needs_man
@pytest.mark.parametrize("page", PAGES)
def test_man_renders(page):
    r = man_render(page)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    assert r.stderr == b"", r.stderr.decode(errors="replace")
    text = r.stdout.decode()
    title = page.rsplit(".", 1)[0].upper()
    lines = text.splitlines()
    assert lines and lines[0].startswith(title), lines[:1]
    for section in ("NAME", "DESCRIPTION", "SEE ALSO"):
        assert re.search(r"^%s$" % section, text, re.M), (page, section)
    # Not a stray escape or request left in the text.
    assert not re.search(r"\\f[BIRP]|^\s*\.(B|I|BR|BI|RB|TP|PP|IP|SH|SS|EX|EE)\b", text, re.M), page
    # Readable at 80 columns: no example or table line runs past the edge.
    wide = [l for l in lines if len(l) > 80]
    assert not wide, wide


# ---------------------------------------------------------------- .TP tags

def macro_args(rest):
    """Splits the arguments of a macro line the way troff does (double
    quotes group, "" inside quotes is one quote)."""
    args, cur, quoted, i, started = [], "", False, 0, False
    while i < len(rest):
        ch = rest[i]
        if quoted:
            if ch == '"' and rest[i + 1:i + 2] == '"':
                cur += '"'
                i += 1
            elif ch == '"':
                quoted = False
            else:
                cur += ch
        elif ch == '"' and not cur:
            quoted = started = True
        elif ch in " \t":
            if started:
                args.append(cur)
            cur, started = "", False
        else:
            cur += ch
            started = True
        i += 1
    if started:
        args.append(cur)
    return args


FONT_MACROS = {"B": "B", "I": "I", "BI": "BI", "IB": "IB", "BR": "BR", "RB": "RB",
               "IR": "IR", "RI": "RI"}


def tag_text(line, keep_italic=True):
    """The text of a tag line, with font changes resolved; italic parts
    (placeholders) are dropped unless keep_italic."""
    pieces = []             # (font, text)
    m = re.match(r"\.([A-Z]{1,2})\s*(.*)$", line)
    if m and m.group(1) in FONT_MACROS:
        fonts = FONT_MACROS[m.group(1)]
        for n, arg in enumerate(macro_args(m.group(2))):
            pieces.append((fonts[n % len(fonts)], arg))
    elif not line.startswith("."):
        pieces.append(("R", line))
    out = []
    for font, text in pieces:
        # Inline font changes: \fB, \fI, \fR, \fP.
        for n, part in enumerate(re.split(r"\\f([BIRP])", text)):
            if n % 2:
                font = "R" if part == "P" else part
                continue
            if font != "I" or keep_italic:
                out.append(part)
    text = "".join(out)
    text = text.replace("\\-", "-").replace("\\&", "").replace("\\(dq", '"')
    return re.sub(r"\\\(..|\\.", "", text)


def tp_tags(path):
    """[(section, tag line)] for every .TP/.TQ entry of a page."""
    tags, section, want = [], "", False
    for line in read(path).splitlines():
        if line.startswith(".SH "):
            section = " ".join(macro_args(line[4:]))
        if want and not line.startswith('.\\"'):
            tags.append((section, line))
            want = False
        elif line.strip() in (".TP", ".TQ") or line.startswith(".TP "):
            want = True
    return tags


def tag_words(tag):
    """Identifier-like words of a tag, placeholders removed:
    `tls.tickets.key_file` -> [tls, tickets, key_file]."""
    return re.findall(r"[A-Za-z_][A-Za-z0-9_]*", tag_text(tag, keep_italic=False))


# ---------------------------------------------------------------- config keys

def parser_keys():
    """[(table, key)] from the key_spec tables of src/config*.c, and the parent key of each table that is reached
    through on_submap."""
    src = "".join(read(p) for p in CONFIG_C)
    keys, parents = [], {}
    for m in re.finditer(r"(?:static )?const struct key_spec (\w+)\[\]\s*=\s*\{(.*?)\n\};", src, re.S):
        table, body = m.group(1), m.group(2)
        for e in re.finditer(r'\{\s*"(\w+)"\s*,\s*(?:cfg_)?on_\w+', body):
            keys.append((table, e.group(1)))
        for e in re.finditer(r'\{\s*"(\w+)"\s*,\s*cfg_on_submap\s*,\s*\w+\s*,\s*(\w+)', body):
            parents[e.group(2)] = e.group(1)
    return keys, parents


def test_parser_keys_found():
    """The extraction itself works: the tables and keys are all there."""
    keys, parents = parser_keys()
    tables = {t for t, _ in keys}
    assert {"top_keys", "listener_keys", "cert_keys", "backend_keys"} <= tables, tables
    assert ("top_keys", "listeners") in keys and ("timeout_keys", "drain") in keys, keys
    assert parents.get("ticket_keys") == "tickets" and parents.get("log_keys") == "log", parents
    assert len(keys) >= 40, keys


def yaml5_tags():
    return [(s, t) for s, t in tp_tags(page_path("tlsterm.yaml.5"))]


def test_every_config_key_is_documented():
    keys, parents = parser_keys()
    tags = [tag_words(t) for _, t in yaml5_tags()]
    words = {w for ws in tags for w in ws}
    missing = []
    for table, key in keys:
        if key not in words:
            missing.append("%s: %s" % (table, key))
        elif table in parents:
            # A key of a nested mapping is documented under its parent:
            # "tickets.key_file", not a "key_file" of something else.
            parent = parents[table]
            if not any(ws[i:i + 2] == [parent, key] for ws in tags for i in range(len(ws) - 1)):
                missing.append("%s: %s.%s" % (table, parent, key))
    assert not missing, "keys the parser accepts but tlsterm.yaml.5 does not document:\n  " + \
        "\n  ".join(missing)


def test_no_documented_key_is_unknown():
    """Every tag in the key sections names keys the parser accepts, so a
    removed or misspelt key does not stay in the page."""
    keys, _ = parser_keys()
    known = {k for _, k in keys}
    unknown = []
    for section, tag in yaml5_tags():
        if section in KEY_SECTIONS:
            unknown += ["%s: %s (%s)" % (section, w, tag) for w in tag_words(tag) if w not in known]
    assert not unknown, unknown
    assert {s for s, _ in yaml5_tags()} >= set(KEY_SECTIONS)


# ---------------------------------------------------------------- options

def test_every_option_is_documented():
    r = h.run([h.BIN, "-h"], timeout=h.T(10))
    assert r.returncode == 0, r.stderr
    usage = r.stdout.decode()
    options = set(re.findall(r"(?<![\w-])-([A-Za-z])\b", usage))
    assert {"c", "t", "V", "h"} <= options, usage
    documented = set()
    for section, tag in tp_tags(page_path("tlsterm.8")):
        if section == "OPTIONS":
            m = re.match(r"-([A-Za-z])\b", tag_text(tag).strip())
            if m:
                documented.add(m.group(1))
    missing = sorted(options - documented)
    assert not missing, "options in `tlsterm -h` without an entry in tlsterm.8 OPTIONS: %s" % \
        ", ".join("-" + o for o in missing)
    synopsis = read(page_path("tlsterm.8")).split(".SH SYNOPSIS", 1)[1].split(".SH", 1)[0]
    for o in options:
        assert "\\-" + o in synopsis, ("-" + o, "not in SYNOPSIS")
