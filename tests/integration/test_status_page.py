# SPDX-License-Identifier: BSD-2-Clause
"""The admin listener's HTML status page (issue 16) as a real browser
shows it: headless Chromium (Debian's `chromium` package) renders
/status.html at a phone's size (390x844) to a PNG, and dumps the DOM it
built.  The config has two listeners, three certificates (one expiring in
10 days) and a backend of two servers, one of them a closed port that the
health check has marked DOWN, so every table of the page has something to
show.  The DOM has the tables `listeners`, `servers` and `certificates`
with one data row per listener / server / certificate, the live server UP
and the dead one DOWN, and no script at all; the screenshot is a real
390-pixel-wide rendering in which the UP and DOWN cells are coloured.

The screenshot is kept in the build tree, at tests/status-page.png, for
a human to look at: $TLSTERM_BUILDDIR when set, else the build root that
holds $TLSTERM_BIN (BUILDDIR/src/tlsterm) when it has a Makefile, else
the test's temporary directory."""

import html.parser
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import urllib.request
import zlib

import pytest

import pki
import tlsterm_harness as h

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PHONE = (390, 844)

pytestmark = pytest.mark.skipif(
    not os.access(CHROMIUM, os.X_OK),
    reason="%s is not installed (Debian package chromium; CI installs it)" % CHROMIUM)


def screenshot_path(tmp_path):
    """Where the screenshot is kept (see the module's docstring)."""
    root = os.environ.get("TLSTERM_BUILDDIR", "")
    if not root and h.BIN:
        build = os.path.dirname(os.path.dirname(os.path.abspath(h.BIN)))
        if os.path.isfile(os.path.join(build, "Makefile")):
            root = build
    return os.path.join(root or str(tmp_path), "tests", "status-page.png")


# ---------------------------------------------------------------- Chromium

def chromium(profile, url, *mode):
    """Runs headless Chromium on `url` with `mode` (--screenshot=...,
    --dump-dom) at the phone's window size; returns its stdout.  Chromium
    runs in a session of its own, and whatever of that session is left
    when it exits or at the deadline (its helper processes) is killed by
    the group id."""
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
           "--user-data-dir=" + str(profile), "--window-size=%d,%d" % PHONE,
           "--hide-scrollbars", "--disable-dev-shm-usage", "--no-first-run",
           "--no-default-browser-check", "--disable-extensions", "--disable-sync",
           "--disable-background-networking", "--disable-component-update",
           *mode, url]
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True,
                         preexec_fn=h.die_with_parent)
    pgid = p.pid                    # its own session: the group id is its pid
    try:
        out, err = p.communicate(timeout=h.T(90))
    except subprocess.TimeoutExpired:
        os.killpg(pgid, signal.SIGKILL)
        out, err = p.communicate(timeout=h.T(10))
        raise AssertionError("chromium did not finish within %.0fs: %s\n%s"
                             % (h.T(90), cmd, err.decode(errors="replace")[-3000:]))
    finally:
        try:
            os.killpg(pgid, signal.SIGKILL)     # helpers still running, if any
        except ProcessLookupError:
            pass
    assert p.returncode == 0, "chromium exited with %s: %s\n%s" % (
        p.returncode, cmd, err.decode(errors="replace")[-3000:])
    return out.decode("utf-8", errors="replace")


# ---------------------------------------------------------------- the DOM

class Tables(html.parser.HTMLParser):
    """The tables of a page by id: {id: [[cell text, ...] per row]}, rows
    of header cells (<th>) apart in self.heads; every data cell as (table
    id, text, class) in self.cells; every start tag; the text of <h1> and
    of <style>."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tables, self.heads = {}, {}
        self.cells = []
        self.tags = []
        self.h1 = []
        self.style = []
        self._table = None
        self._row = None
        self._cell = None
        self._cell_class = None
        self._row_has_td = False
        self._in = None             # "h1" or "style" while inside one

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "table":
            self._table = a.get("id", "")
            self.tables.setdefault(self._table, [])
            self.heads.setdefault(self._table, [])
        elif tag == "tr" and self._table is not None:
            self._row, self._row_has_td = [], False
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
            self._cell_class = a.get("class") if tag == "td" else None
            self._row_has_td |= tag == "td"
        elif tag in ("h1", "style"):
            self._in = tag

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            text = " ".join("".join(self._cell).split())
            self._row.append(text)
            if tag == "td":
                self.cells.append((self._table, text, self._cell_class))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            (self.tables if self._row_has_td else self.heads)[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None
        elif tag == self._in:
            self._in = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._in == "h1":
            self.h1.append(data)
        elif self._in == "style":
            self.style.append(data)


def parse(dom):
    t = Tables()
    t.feed(dom)
    t.close()
    return t


def css_background(style, cls):
    """The (r, g, b) of the `background` (or background-color) that the
    page's own CSS gives class `cls` as #rgb / #rrggbb in a rule of
    selector .cls, None when it gives none."""
    m = re.search(r"(?:^|[\s,}])\.%s\s*\{[^}]*?\bbackground(?:-color)?\s*:\s*"
                  r"#([0-9a-fA-F]{6}|[0-9a-fA-F]{3})\b" % re.escape(cls), style)
    if not m:
        return None
    x = m.group(1)
    if len(x) == 3:
        x = "".join(c * 2 for c in x)
    return tuple(int(x[i:i + 2], 16) for i in (0, 2, 4))


def row_with(rows, cell):
    """The one row that has a cell equal to `cell`."""
    found = [r for r in rows if cell in r]
    assert len(found) == 1, "%d rows with a cell %r in %s" % (len(found), cell, rows)
    return found[0]


# ---------------------------------------------------------------- the PNG

def png_pixels(data):
    """(width, height, rows of RGB(A) bytes) of an 8-bit RGB or RGBA,
    non-interlaced PNG (what Chromium writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG: %r" % data[:16]
    pos, idat, ihdr = 8, [], None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + n
    assert ihdr is not None and idat, "no IHDR or IDAT chunk"
    width, height, depth, ctype, _, _, interlace = ihdr
    assert depth == 8 and ctype in (2, 6) and interlace == 0, ihdr
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = width * bpp
    assert len(raw) == height * (stride + 1), (len(raw), width, height, bpp)
    rows, prev = [], bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if f == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif f == 2:
            for i in range(stride):
                line[i] = (line[i] + prev[i]) & 0xFF
        elif f == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif f == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b = prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xFF
        else:
            assert f == 0, "PNG filter type %d" % f
        rows.append(bytes(line))
        prev = line
    return width, height, bpp, rows


def colour_counts(bpp, rows):
    """{(r, g, b): number of pixels}."""
    counts = {}
    for line in rows:
        for i in range(0, len(line), bpp):
            px = line[i:i + 3]
            counts[px] = counts.get(px, 0) + 1
    return {tuple(k): v for k, v in counts.items()}


# ---------------------------------------------------------------- the test

def test_status_page_in_chromium(tmp_path, http_backend, tlsterm):
    ca = pki.CA(tmp_path / "pki", "status")
    www = ca.issue("www", sans=["www.example.test"], kind="ec", days=90)
    api_ec = ca.issue("api-ec", sans=["api.example.test", "api2.example.test"], kind="ec",
                      days=10)
    api_rsa = ca.issue("api-rsa", sans=["api.example.test", "api2.example.test"], kind="rsa",
                       days=200)
    dead = "127.0.0.1:%d" % h.free_port()       # nothing listens there
    live = "127.0.0.1:%d" % http_backend.port
    cfg = h.config([h.listener("https", h.free_port(), "app", cert=(www.entry(),)),
                    h.listener("api", h.free_port(), "app",
                               cert=(api_ec.entry(), api_rsa.entry()))],
                   {"app": [live, dead]})
    cfg["backends"]["app"]["health"] = {"interval": "100ms", "fall": 2}
    admin = "127.0.0.1:%d" % h.free_port()
    cfg["admin"] = {"listen": admin}
    d = tlsterm(cfg)
    d.wait_log(r"warn backend=app server=%s is DOWN " % dead.replace(".", r"\."),
               timeout=h.T(10))
    for listener, name, n in (("https", "www.example.test", 3), ("api", "api.example.test", 1)):
        for _ in range(n):
            status, body, _ = h.https_get(d.addr(listener), ca.cert, server_hostname=name)
            assert (status, body) == (200, h.BODY)
        d.wait_close(listener=listener, count=n)

    # what the page is rendered from, as JSON (no Accept header: JSON)
    with urllib.request.urlopen("http://%s/status" % admin, timeout=h.T(10)) as r:
        assert r.headers["Content-Type"].startswith("application/json"), dict(r.headers)
        st = json.loads(r.read())
    ups = {s["address"]: s["up"] for b in st["backends"] for s in b["servers"]}
    assert ups == {live: True, dead: False}, st["backends"]

    # the DOM Chromium built from /status.html
    dom = chromium(tmp_path / "profile-dom", "http://%s/status.html" % admin, "--dump-dom")
    page = parse(dom)
    assert "<script" not in dom.lower(), dom
    assert not [t for t, _ in page.tags if t == "script"], page.tags
    assert "".join(page.h1).strip() == "tlsterm", page.h1
    assert ("meta", {"name": "viewport", "content": "width=device-width, initial-scale=1"}) \
        in page.tags, [t for t in page.tags if t[0] == "meta"]
    for tid in ("listeners", "servers", "certificates"):
        assert tid in page.tables, "no table id=%s in:\n%s" % (tid, dom)

    listeners = page.tables["listeners"]
    assert len(listeners) == 2, listeners
    for l in cfg["listeners"]:
        row = row_with(listeners, l["name"])
        assert l["listen"][0] in " ".join(row), (l, row)

    servers = page.tables["servers"]
    assert len(servers) == 2, servers
    assert "UP" in row_with(servers, live) and "DOWN" not in row_with(servers, live), servers
    assert "DOWN" in row_with(servers, dead) and "UP" not in row_with(servers, dead), servers

    certificates = page.tables["certificates"]
    assert len(certificates) == 3, certificates
    for listener, leaf, names in (("https", www, "www.example.test"),
                                  ("api", api_ec, "api.example.test"),
                                  ("api", api_rsa, "api.example.test")):
        rows = [r for r in certificates
                if any(c.replace(":", "").upper().lstrip("0") == leaf.serial.lstrip("0")
                       for c in r)]
        assert len(rows) == 1, (leaf.serial, certificates)
        assert listener in rows[0] and names in " ".join(rows[0]), (listener, names, rows[0])

    # a browser asking for /status gets the page too (Accept: text/html)
    negotiated = parse(chromium(tmp_path / "profile-neg", "http://%s/status" % admin,
                                "--dump-dom"))
    assert set(negotiated.tables) >= {"listeners", "servers", "certificates"}, negotiated.tables

    # the rendering at a phone's size
    png = screenshot_path(tmp_path)
    os.makedirs(os.path.dirname(png), exist_ok=True)
    if os.path.exists(png):
        os.remove(png)              # never judge a screenshot of an earlier run
    chromium(tmp_path / "profile-shot", "http://%s/status.html" % admin,
             "--screenshot=" + png)
    assert os.path.isfile(png), "chromium wrote no %s" % png
    with open(png, "rb") as f:
        data = f.read()
    assert len(data) > 10 * 1024, "%s: only %d bytes" % (png, len(data))
    width, height, bpp, rows = png_pixels(data)
    assert (width, height) == PHONE, (width, height)
    colours = colour_counts(bpp, rows)
    # the page's background is white; its text, borders and the coloured
    # cells are other colours: a real rendering, not a blank page
    assert colours.get((255, 255, 255), 0) > width * height // 4, sorted(
        colours.items(), key=lambda kv: -kv[1])[:8]
    assert len(colours) > 20, len(colours)
    # where the page's CSS gives the UP and the DOWN cell a background
    # colour of their own, the phone shows it (the two servers' rows are
    # near the top, within the first screen)
    style = "".join(page.style)
    for state in ("UP", "DOWN"):
        classes = [c for t, text, c in page.cells if t == "servers" and text == state]
        assert len(classes) == 1, (state, page.cells)
        colour = None
        for cls in (classes[0] or "").split():
            colour = css_background(style, cls) or colour
        if colour is None:
            print("the page's CSS gives the %s cell no background of its own" % state)
            continue
        assert colours.get(colour, 0) > 100, "the %s cell's background %s is not in %s" % (
            state, colour, png)
    print("status page screenshot: %s" % png)
