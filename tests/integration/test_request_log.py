# SPDX-License-Identifier: BSD-2-Clause
"""forwarded_headers: one log line per request and its response (method,
path, status, bytes, time), beside the connection's access line; pipelined
requests pair with their responses in order; HEAD, 204, chunked and
close-delimited responses end where HTTP says; a request tlsterm answers
itself, or one cut short, says so and stays visible with log.access off."""

import re
import socket

import tlsterm_harness as h
from test_forwarded import fwd_config, read_response, tls_session


class ByPath(h.HeadRecorder):
    """Answers by path: /missing 404, /empty 204, /chunked a chunked body,
    /eof a body delimited by the close, anything else 200; HEAD without a
    body.  self.sent keeps each response's bytes."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.sent = []

    def answer(self, head):
        method, target = head.split(b" ", 2)[:2]
        keep = True
        if target == b"/missing":
            resp = b"HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\n\r\nnot found\n"
        elif target == b"/empty":
            resp = b"HTTP/1.1 204 No Content\r\n\r\n"
        elif target == b"/chunked":
            resp = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        elif target == b"/eof":
            resp, keep = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end", False
        else:
            body = b"hello " + target
            resp = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
            if method != b"HEAD":
                resp += body
        self.sent.append(resp)
        return resp, keep


def request_lines(d, conn=None, level="info"):
    """The per-request lines (of connection `conn`), parsed, in log order."""
    rx = re.compile(r"^\S+ %s (conn=(\d+) req=\d+ .*)$" % level)
    out = []
    for line in d.log_lines():
        m = rx.match(line)
        if m and (conn is None or int(m.group(2)) == conn):
            kv = h.parse_kv(m.group(1))
            kv["line"] = line
            out.append(kv)
    return out


def wait_requests(d, conn, n, level="info"):
    """Waits for n request lines of connection `conn`; returns them."""
    h.wait_until(lambda: len(request_lines(d, conn, level)) >= n, h.T(10),
                 "%d request line(s) of conn=%s in:\n%s" % (n, conn, d.log_tail()))
    return request_lines(d, conn, level)


def get(path, method=b"GET"):
    return b"%s %s HTTP/1.1\r\nHost: a\r\n\r\n" % (method, path)


def fields(line):
    return (line["method"], line["path"], line["status"], int(line["in"]), int(line["out"]))


def test_keepalive_requests_get_a_line_each(certs, backend, tlsterm):
    b = backend(ByPath)
    d = tlsterm(fwd_config(b.port))
    reqs = [get(b"/a?x=1&y=%20"), get(b"/missing"), get(b"/h", b"HEAD")]
    with tls_session(d, certs) as (s, f):
        port = s.getsockname()[1]
        statuses = []
        for i, r in enumerate(reqs):
            s.sendall(r)
            statuses.append(read_response(f, head=(i == 2))[0])
    assert statuses == ["HTTP/1.1 200 OK", "HTTP/1.1 404 Not Found", "HTTP/1.1 200 OK"]
    close = d.wait_close(port=port)
    conn = int(close["conn"])
    lines = wait_requests(d, conn, 3)
    assert [fields(l) for l in lines] == [
        ("GET", "/a?x=1&y=%20", "200", len(reqs[0]), len(b.sent[0])),
        ("GET", "/missing", "404", len(reqs[1]), len(b.sent[1])),
        ("HEAD", "/h", "200", len(reqs[2]), len(b.sent[2])),
    ], [l["line"] for l in lines]
    assert [l["req"] for l in lines] == ["1", "2", "3"]
    for l in lines:
        assert l["client"] == close["client"] and l["listener"] == "https"
        assert int(l["ms"]) >= 0 and "end" not in l, l["line"]
        assert not l["line"].endswith('"'), l["line"]       # never taken for an access line
    # the connection's access line stays, once, with the sums
    assert len(d.close_lines(listener="https")) == 1
    assert close["in"] > sum(map(len, reqs))                # with X-Forwarded-*
    assert close["out"] == sum(len(x) for x in b.sent)


def test_pipelined_requests_pair_with_their_responses(certs, backend, tlsterm):
    b = backend(ByPath)
    d = tlsterm(fwd_config(b.port))
    reqs = [get(b"/one"), get(b"/missing"), get(b"/empty"), get(b"/chunked")]
    with tls_session(d, certs) as (s, f):
        port = s.getsockname()[1]
        s.sendall(b"".join(reqs))                 # one write: pipelined
        got = [read_response(f)[0] for _ in range(3)]
        status = f.readline()
        assert f.read(len(b.sent[3]) - len(status)).endswith(b"0\r\n\r\n")
    assert got == ["HTTP/1.1 200 OK", "HTTP/1.1 404 Not Found", "HTTP/1.1 204 No Content"]
    conn = int(d.wait_close(port=port)["conn"])
    lines = wait_requests(d, conn, 4)
    assert [fields(l) for l in lines] == [
        ("GET", "/one", "200", len(reqs[0]), len(b.sent[0])),
        ("GET", "/missing", "404", len(reqs[1]), len(b.sent[1])),
        ("GET", "/empty", "204", len(reqs[2]), len(b.sent[2])),
        ("GET", "/chunked", "200", len(reqs[3]), len(b.sent[3])),
    ], [l["line"] for l in lines]


def test_close_delimited_response_ends_with_the_backend(certs, backend, tlsterm):
    b = backend(ByPath)
    d = tlsterm(fwd_config(b.port))
    with tls_session(d, certs) as (s, f):
        port = s.getsockname()[1]
        s.sendall(get(b"/eof"))
        assert f.read().endswith(b"until the end")
    conn = int(d.wait_close(port=port)["conn"])
    (line,) = wait_requests(d, conn, 1)
    assert fields(line) == ("GET", "/eof", "200", len(get(b"/eof")), len(b.sent[0])), line
    assert "end" not in line, line["line"]


def test_path_is_quoted_safely_and_capped(certs, backend, tlsterm):
    b = backend(ByPath)
    d = tlsterm(fwd_config(b.port))
    long_path = b"/" + b"x" * 1000
    odd = b'/q"uote\\back'
    with tls_session(d, certs) as (s, f):
        port = s.getsockname()[1]
        for p in (long_path, odd):
            s.sendall(get(p))
            read_response(f)
    conn = int(d.wait_close(port=port)["conn"])
    lines = wait_requests(d, conn, 2)
    assert lines[0]["path"] == "/" + "x" * 255 + "...", lines[0]["line"]
    assert lines[1]["path"] == "/q?uote?back", lines[1]["line"]
    assert lines[0]["status"] == lines[1]["status"] == "200"


def test_tlsterms_own_answer_stays_visible_without_access_log(certs, backend, tlsterm):
    """log.access false (log.level info): a served request has no line, a
    request tlsterm answers with 400 itself has one, and says why."""
    b = backend(ByPath)
    cfg = fwd_config(b.port)
    cfg["log"] = {"level": "info", "access": False}
    d = tlsterm(cfg)
    bad = b"GET /bad HTTP/1.1\r\nBad Header: x\r\n\r\n"
    with tls_session(d, certs) as (s, f):
        s.sendall(get(b"/fine"))
        assert read_response(f)[0] == "HTTP/1.1 200 OK"
        s.sendall(bad)
        assert read_response(f)[0] == "HTTP/1.1 400 Bad Request"
    (own,) = wait_requests(d, None, 1, level="info")
    assert fields(own) == ("GET", "/bad", "400", len(bad), own["out"]) and own["out"] > 0
    assert own["req"] == "2"
    assert own["end"].startswith("answered by tlsterm: malformed request: invalid header name"), \
        own["line"]
    # the served one was logged (at debug, not shown) before, so its absence is final
    assert "/fine" not in d.log()
    d.expect_open_at_stop = None


def test_request_cut_short_says_so(certs, backend, tlsterm):
    b = backend(ByPath)
    d = tlsterm(fwd_config(b.port))
    with tls_session(d, certs) as (s, f):
        port = s.getsockname()[1]
        s.sendall(get(b"/done"))
        read_response(f)
        s.sendall(b"GET /half HTTP/1.1\r\nHo")
        d.wait_log(r"conn=\d+ req=1 ")
    conn = int(d.wait_close(port=port)["conn"])
    lines = wait_requests(d, conn, 2)
    assert lines[1]["req"] == "2" and lines[1]["method"] == "-" and lines[1]["path"] == "-"
    assert lines[1]["status"] == "-" and int(lines[1]["in"]) == len(b"GET /half HTTP/1.1\r\nHo")
    assert lines[1]["end"].startswith("connection closed mid-request: "), lines[1]["line"]
