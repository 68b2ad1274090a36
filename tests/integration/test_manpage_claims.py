# SPDX-License-Identifier: BSD-2-Clause
"""tlsterm(8)'s DESCRIPTION makes claims about what tlsterm does; these
checks tie the ones that can be checked to the code, so that a feature
added later cannot leave the page describing an older program (as it did:
"does not parse HTTP", "round robin" after forwarded_headers and the other
balance methods existed)."""

import os
import re

import tlsterm_harness as h

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.environ.get("TLSTERM_SRCDIR") or os.path.normpath(os.path.join(HERE, "..", ".."))


def read(*parts):
    with open(os.path.join(SRCDIR, *parts), encoding="utf-8") as f:
        return f.read()


def section(page, name):
    """The plain words of one .SH section: macro names and font escapes
    dropped, arguments kept, one space between words."""
    m = re.search(r"^\.SH %s\n(.*?)(?=^\.SH )" % re.escape(name), read("docs", page),
                  re.M | re.S)
    assert m, "%s has no %s section" % (page, name)
    words = []
    for line in m.group(1).splitlines():
        if line.startswith(('.\\"', "'\\\"")):
            continue
        if line.startswith("."):
            line = line.split(None, 1)[1] if " " in line else ""
        line = re.sub(r"\\f[BIRP]|\\&", "", line).replace("\\-", "-").replace('"', "")
        words.append(line)
    return re.sub(r"\s+", " ", " ".join(words))


def enum_names(source, kind):
    m = re.search(r"%s = \{\s*\(const char \*const\[\]\)\{ ([^}]*) \}" % kind, source)
    assert m, kind
    return re.findall(r'"([^"]+)"', m.group(1))


def keys_of(source):
    return set(re.findall(r'^\s*\{ "(\w+)", (?:cfg_)?on_', source, re.M))


DESCRIPTION = section("tlsterm.8", "DESCRIPTION")


def test_every_balance_method_is_named():
    for name in enum_names(read("src", "config_backend.c"), "balance_kind"):
        assert name in DESCRIPTION, "DESCRIPTION does not name balance method %s" % name


def test_the_listener_and_backend_features_are_named():
    keys = keys_of(read("src", "config_listener.c")) | keys_of(read("src", "config_backend.c"))
    for key in ("proxy_protocol", "proxy_protocol_in", "forwarded_headers",
                "redirect_to_https"):
        assert key in keys, "the config has no %s any more: update this test" % key
        assert key in DESCRIPTION, "DESCRIPTION does not mention %s" % key


def test_http_parsing_is_described_as_it_is():
    assert "does not parse HTTP" not in DESCRIPTION
    assert re.search(r"forwarded_headers\s*,\s*which parses each request and response",
                     DESCRIPTION)


def test_no_promises_about_later_versions():
    """"does not parse HTTP yet" in a manual is a claim that goes stale
    unseen: what tlsterm lacks is said without a promise."""
    promise = re.compile(r"\b(does|do|can|will|is|are) not( [\w/.-]+){0,4} yet\b|"
                         r"\bnot yet (supported|implemented|available|parsed)\b", re.I)
    for page in ("tlsterm.8", "tlsterm.yaml.5"):
        text = re.sub(r"\s+", " ", read("docs", page))
        m = promise.search(text)
        assert not m, "%s promises a later version: %s" % (page, m.group(0))


def test_tls_versions_match_this_build():
    """DESCRIPTION says which mbedTLS speaks which versions; -V says which
    this build is and speaks."""
    r = h.run([h.BIN, "-V"], timeout=h.T(10))
    out = r.stdout.decode() + r.stderr.decode()
    m = re.search(r"Mbed TLS (\d+)\.(\d+)", out, re.I)
    assert m, out
    speaks13 = "TLS 1.3" in out.split("protocols:", 1)[1].split("(")[0]
    if (int(m.group(1)), int(m.group(2))) >= (3, 6):
        assert speaks13, out
        assert "TLS 1.2 and TLS 1.3 are negotiated when tlsterm is built against mbedTLS 3.6" \
            in DESCRIPTION
    else:
        assert not speaks13, out
        assert "mbedTLS 2.28 (Debian 12) speaks TLS 1.2 only" in DESCRIPTION
