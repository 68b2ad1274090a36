# SPDX-License-Identifier: BSD-2-Clause
"""limits against handshake floods: what one client address may take
(limits.per_address: connections open at once, new connections per second
with a burst, exempt CIDRs, the address from a trusted PROXY header) and
how many handshakes may be in progress (limits.max_handshakes,
limits.worker_max_handshakes).

A refused address sees its TCP connection closed before any TLS byte,
other addresses are served meanwhile, the refusal is logged once per
address per 10 s and counted in the "stopped:" line.  Past the handshake
limit the worker stops accepting: new connections wait in the kernel's
accept queue (its length is read from /proc/net/tcp) and are served as
soon as a handshake ends -- and, at SIGTERM, are served rather than
reset (an expected failure until the drain accepts them: see its
reason).  Bad values are configuration errors with FILE:LINE:COL.

Clients look like different hosts by binding a source address in
127.0.0.0/8 before they connect."""

import math
import os
import re
import signal
import socket
import ssl
import struct
import time

import pytest

import tlsterm_harness as h

OTHER = "127.0.0.2"         # the address the limits are tried on
THIRD = "127.0.0.3"         # an unrelated client

GET10 = b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n"


# ---------------------------------------------------------------- helpers

def connect_from(src, addr, timeout=None):
    """A plain TCP connection to addr from source address src."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout or h.T(10))
    try:
        s.bind((src, 0))
        s.connect(addr)
    except BaseException:
        s.close()
        raise
    return s


def tls_from(src, addr, cafile):
    """A verified TLS connection (handshake done) from source address src."""
    raw = connect_from(src, addr)
    try:
        return h.client_context(cafile).wrap_socket(raw, server_hostname="localhost")
    except BaseException:
        raw.close()
        raise


def get_from(src, d, certs):
    """GET / over HTTP/1.0 from src: (status, body)."""
    s = tls_from(src, d.addr(), certs.rsa_cert)
    try:
        s.sendall(GET10)
        raw = h.recv_all(s)
    finally:
        s.close()
    status, _, body = h.parse_response(raw)
    return status, body


def served_or_refused(raw, cafile):
    """Completes a TLS handshake and a GET on a connected socket: True when
    the backend's answer came back, False when tlsterm closed the
    connection instead (EOF or reset during the handshake).  A timeout is
    neither and is raised."""
    try:
        s = h.client_context(cafile).wrap_socket(raw, server_hostname="localhost")
    except TimeoutError:
        raw.close()
        raise
    except (ssl.SSLError, ConnectionError, OSError):
        raw.close()
        return False
    try:
        s.sendall(GET10)
        status, _, body = h.parse_response(h.recv_all(s))
    finally:
        s.close()
    assert (status, body) == (200, h.BODY), (status, body)
    return True


def assert_refused(src, d):
    """A connection from src is closed by tlsterm before it sends any TLS
    byte, although the client sends a ClientHello.  Returns its port."""
    s = connect_from(src, d.addr())
    try:
        port = s.getsockname()[1]
        how = h.hello_then_closed(s, h.T(5))
    finally:
        s.close()
    assert how in ("eof", "reset"), "a connection from %s got %s, not closed" % (src, how)
    return port


def stopped_refused(d):
    """Stops the daemon (with the end-of-test checks) and returns the
    number of connections its "stopped:" line says per_address refused."""
    problems = d.stop()
    assert not problems, problems
    m = re.search(r" info stopped: \d+ connection\(s\) served, \d+ refused at max_connections, "
                  r"(\d+) refused by per_address limits, ", d.log(), re.M)
    assert m, d.log_tail()
    return int(m.group(1))


def conns_rx(limit, client, n=1):
    return (r" warn client=%s listener=https: per_address\.connections \(%d\) reached: "
            r"refused %d connection\(s\) since the last report \(one report per 10 s per "
            r"address\)$" % (re.escape(client), limit, n))


def rate_rx(client, rate, burst, n=1):
    return (r" warn client=%s listener=https: per_address\.handshakes_per_second \(%d, burst "
            r"%d\) reached: refused %d connection\(s\) since the last report \(one report "
            r"per 10 s per address\)$" % (re.escape(client), rate, burst, n))


def reports_for(d, client):
    """The per_address refusal lines naming client."""
    return re.findall(r"^.* warn client=%s listener=\S+: per_address\..*$" % re.escape(client),
                      d.log(), re.M)


def close_lines_from(d, client):
    return [l for l in d.close_lines() if l["client"].rsplit(":", 1)[0] == client]


def wait_closes_from(d, client, n):
    """Waits for n access lines of client (a client may see its EOF just
    before tlsterm writes the line), then checks there are no more."""
    h.wait_until(lambda: len(close_lines_from(d, client)) >= n, h.T(10),
                 "%d access line(s) of %s" % (n, client))
    assert len(close_lines_from(d, client)) == n, d.log_tail()


def flood(src, d, certs, n):
    """n connections from src, all connected first (so tlsterm judges them
    within moments), then each tried in turn.  Returns (served, seconds
    from the first connect until the last outcome): every admission
    happened inside that span."""
    t0 = time.monotonic()
    socks = []
    try:
        for _ in range(n):
            socks.append(connect_from(src, d.addr()))
    except BaseException:
        for s in socks:
            s.close()
        raise
    served = [served_or_refused(s, certs.rsa_cert) for s in socks]
    return sum(served), time.monotonic() - t0


# ---------------------------------------------------------------- per_address.connections

def test_per_address_connections(certs, http_backend, tlsterm):
    d = tlsterm(h.one_listener(http_backend.port,
                               limits={"per_address": {"connections": 2}}))
    held = [tls_from(OTHER, d.addr(), certs.rsa_cert) for _ in range(2)]
    try:
        for s in held:
            assert h.http11_exchange(s) == h.BODY
        # the third from the same address: closed, no TLS byte, no access line
        p1 = assert_refused(OTHER, d)
        d.wait_log(conns_rx(2, OTHER))
        p2 = assert_refused(OTHER, d)       # counted, not logged again
        # other addresses are served meanwhile
        assert get_from(THIRD, d, certs) == (200, h.BODY)
        assert get_from("127.0.0.1", d, certs) == (200, h.BODY)
        # and the held ones still relay
        for s in held:
            assert h.http11_exchange(s) == h.BODY
        assert len(reports_for(d, OTHER)) == 1, reports_for(d, OTHER)
        assert not [l for l in d.close_lines() if h.client_port(l) in (p1, p2)], d.log_tail()
        ports = [s.getsockname()[1] for s in held]
    finally:
        for s in held:
            s.close()
    for p in ports:
        d.wait_close(port=p)
    # the address is free again once its connections closed (the count
    # drops just after the close line: retry, and count what was refused)
    extra = []

    def served_again():
        try:
            return get_from(OTHER, d, certs) == (200, h.BODY)
        except (ssl.SSLError, ConnectionError, AssertionError) as e:
            extra.append(repr(e))
            return False
    h.wait_until(served_again, h.T(5), "a GET from %s after its connections closed" % OTHER)
    wait_closes_from(d, OTHER, 3)
    assert stopped_refused(d) == 2 + len(extra), extra


# ---------------------------------------------------------------- handshakes_per_second

RATE, BURST, FLOOD = 1, 3, 8


def test_per_address_handshake_rate(certs, http_backend, tlsterm):
    d = tlsterm(h.one_listener(http_backend.port, limits={
        "per_address": {"handshakes_per_second": RATE, "handshake_burst": BURST}}))
    served, elapsed = flood(OTHER, d, certs, FLOOD)
    refused = FLOOD - served
    # the bucket starts full and refills RATE per second: never more than
    # that got through, never less than the burst
    assert BURST <= served <= BURST + RATE * (math.floor(elapsed) + 1), (served, elapsed)
    assert refused >= 1, "%d connections in %.1fs, none refused" % (FLOOD, elapsed)
    # another address is not held back by it
    assert get_from(THIRD, d, certs) == (200, h.BODY)
    d.wait_log(rate_rx(OTHER, RATE, BURST))
    assert len(reports_for(d, OTHER)) == 1, reports_for(d, OTHER)
    assert reports_for(d, THIRD) == []
    # access lines only for the connections served
    wait_closes_from(d, OTHER, served)
    assert stopped_refused(d) == refused


def test_per_address_exempt(certs, http_backend, tlsterm):
    d = tlsterm(h.one_listener(http_backend.port, limits={"per_address": {
        "connections": 2, "handshakes_per_second": RATE, "handshake_burst": BURST,
        "exempt": ["192.0.2.0/24", OTHER + "/32"]}}))
    # past both limits at once: FLOOD connections open together, each served
    held = []
    try:
        for _ in range(FLOOD):
            held.append(tls_from(OTHER, d.addr(), certs.rsa_cert))
        for s in held:
            assert h.http11_exchange(s) == h.BODY
    finally:
        for s in held:
            s.close()
    assert reports_for(d, OTHER) == []
    # the neighbour address is limited as configured
    held = [tls_from(THIRD, d.addr(), certs.rsa_cert) for _ in range(2)]
    try:
        assert_refused(THIRD, d)
        d.wait_log(conns_rx(2, THIRD))
    finally:
        for s in held:
            s.close()
    assert reports_for(d, OTHER) == []
    assert stopped_refused(d) == 1


# ---------------------------------------------------------------- behind a trusted PROXY sender

def v1_header(src, sport):
    return ("PROXY TCP4 %s 198.51.100.1 %d 443\r\n" % (src, sport)).encode()


V2_LOCAL = b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x20, 0x00]) + struct.pack(">H", 0)


def proxied(d, certs, header):
    """A TLS connection from 127.0.0.1 (the trusted sender) that starts
    with `header`; returns the MemTLS after one GET, or None when tlsterm
    closed it during the handshake."""
    c = h.MemTLS(d.addr(), certs.rsa_cert)
    try:
        c.sock.sendall(header)
        c.handshake()
    except (AssertionError, ssl.SSLError, ConnectionError):
        c.close()
        return None
    except BaseException:
        c.close()
        raise
    assert c.get().endswith(h.BODY)
    return c


def test_per_address_behind_proxy_protocol(certs, http_backend, tlsterm):
    cfg = h.one_listener(http_backend.port, limits={"per_address": {"connections": 1}},
                         opts={"proxy_protocol_in": True, "trusted": ["127.0.0.1"]},
                         # info: a connection refused after its PROXY header was
                         # logged "accepted" at debug level but gets no access line
                         log_level="info")
    d = tlsterm(cfg)
    held = []
    try:
        first = proxied(d, certs, v1_header("192.0.2.7", 40001))
        assert first is not None, "the first connection of 192.0.2.7 was refused"
        held.append(first)
        # the same client again, while its first connection is open: refused
        assert proxied(d, certs, v1_header("192.0.2.7", 40002)) is None
        d.wait_log(conns_rx(1, "192.0.2.7"))
        # another client behind the same sender; the sender itself (127.0.0.1,
        # now carrying two connections) is not what is counted
        other = proxied(d, certs, v1_header("192.0.2.8", 40003))
        assert other is not None, "192.0.2.8 was refused"
        held.append(other)
        # PROXY LOCAL (the sender's own check) is not judged: two at once
        for _ in range(2):
            c = proxied(d, certs, V2_LOCAL)
            assert c is not None, "a PROXY LOCAL connection was refused"
            held.append(c)
        for c in held:
            assert c.get().endswith(h.BODY)
    finally:
        for c in held:
            c.close()
    # (at info level the harness does not wait for the access lines)
    for client, n in (("192.0.2.7", 1), ("192.0.2.8", 1), ("127.0.0.1", 2)):
        wait_closes_from(d, client, n)      # 127.0.0.1: the two LOCAL ones
    assert reports_for(d, "127.0.0.1") == []
    assert reports_for(d, "192.0.2.8") == []
    assert len(reports_for(d, "192.0.2.7")) == 1
    assert stopped_refused(d) == 1


# ---------------------------------------------------------------- max_handshakes

def accept_queue(port):
    """Connections waiting in the accept queue of the 127.0.0.1:port
    listening socket (rx_queue of a LISTEN row of /proc/net/tcp)."""
    local = "0100007F:%04X" % port
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1] == local and fields[3] == "0A":
                return int(fields[4].split(":")[1], 16)
    raise AssertionError("no listening socket on 127.0.0.1:%d in /proc/net/tcp" % port)


def accepted(d, port):
    return re.search(r" debug conn=\d+ client=127\.0\.0\.1:%d listener=https accepted$" % port,
                     d.log(), re.M)


@pytest.mark.parametrize("limits, what", [
    ({"worker_max_handshakes": 2}, "limits.worker_max_handshakes"),
    ({"max_handshakes": 2}, "limits.max_handshakes / workers"),
    ({"max_handshakes": 2, "worker_max_handshakes": 5}, "limits.max_handshakes"),
], ids=["worker", "derived", "process"])
def test_max_handshakes_holds_accepts(certs, http_backend, tlsterm, limits, what):
    d = tlsterm(h.one_listener(http_backend.port, workers=1, limits=limits,
                               timeouts={"handshake": "120s"}))
    hold_rx = (r" warn worker=0: %s \(2\) handshakes in progress; new connections wait in "
               r"the accept queue$" % re.escape(what))
    t0 = time.monotonic()
    quiet = [socket.create_connection(d.addr(), timeout=h.T(10)) for _ in range(2)]
    waiting = None
    try:
        # two connections that send nothing are in handshake: the limit
        for s in quiet:
            port = s.getsockname()[1]
            h.wait_until(lambda: accepted(d, port), h.T(10), "conn from port %d accepted" % port)
        d.wait_log(hold_rx)
        waiting = socket.create_connection(d.addr(), timeout=h.T(10))
        wport = waiting.getsockname()[1]
        h.wait_until(lambda: accept_queue(d.port()) == 1, h.T(10),
                     "the third connection in the accept queue")
        # a short window to show it stays there (not synchronisation)
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            assert accept_queue(d.port()) == 1 and not accepted(d, wport), d.log_tail()
            time.sleep(0.05)
        # a handshake ends (the client goes away): the waiting one is served
        quiet.pop(0).close()
        s = h.client_context(certs.rsa_cert).wrap_socket(waiting, server_hostname="localhost")
        waiting = s
        s.sendall(GET10)
        status, _, body = h.parse_response(h.recv_all(s))
        assert (status, body) == (200, h.BODY)
        assert accept_queue(d.port()) == 0
    finally:
        for s in quiet:
            s.close()
        if waiting is not None:
            waiting.close()
    # the warning is rate-limited: once per 10 s per worker
    n = len(re.findall(hold_rx, d.log(), re.M))
    assert 1 <= n <= 1 + int((time.monotonic() - t0) / 10), n


def test_drain_serves_the_accept_queue_held_by_max_handshakes(certs, http_backend, tlsterm):
    """tlsterm(8), SHUTDOWN: connections already in the accept queue are
    accepted and served, not reset -- also those waiting there because
    handshakes were at their limit."""
    d = tlsterm(h.one_listener(http_backend.port, workers=1,
                               limits={"worker_max_handshakes": 1},
                               timeouts={"handshake": "120s", "drain": "120s"}))
    quiet = socket.create_connection(d.addr(), timeout=h.T(10))
    waiting = None
    stopping = False
    try:
        port = quiet.getsockname()[1]
        h.wait_until(lambda: accepted(d, port), h.T(10), "the quiet connection accepted")
        # (the hold warning came with the start-up probe already, and is
        # quiet for 10 s: the accept queue is what shows the hold)
        waiting = socket.create_connection(d.addr(), timeout=h.T(10))
        h.wait_until(lambda: accept_queue(d.port()) == 1, h.T(10),
                     "the second connection in the accept queue")
        d.send_signal(signal.SIGTERM)
        stopping = True
        d.wait_log(r"received Terminated, stopping; 1 connection\(s\) open")
        # the quiet one is still in its handshake: only the drain can take
        # the waiting one from the queue
        served = served_or_refused(waiting, certs.rsa_cert)
        waiting = None
    finally:
        quiet.close()
        if waiting is not None:
            waiting.close()
        if stopping:
            d.expect_open_at_stop = 1
            problems = d.stop(send=False)
    assert served, "the connection in the accept queue was reset at SIGTERM"
    assert not problems, problems


# ---------------------------------------------------------------- configuration errors

def limits_config(limits_yaml):
    """A config text whose `limits:` section starts on line 2."""
    return ("workers: 1\n"                                   # 1
            "limits:\n"                                      # 2
            + limits_yaml +
            "listeners:\n"
            "  - name: https\n"
            "    listen: [\"127.0.0.1:%d\"]\n"
            "    certificates: [{cert: %%(cert)s, key: %%(key)s}]\n"
            "    backend: app\n"
            "backends:\n"
            "  app: {servers: [\"127.0.0.1:%d\"]}\n" % (h.free_port(), h.free_port()))


@pytest.mark.parametrize("limits_yaml, where, message", [
    ("  per_address:\n    connections: -1\n", "4:18",
     'invalid connections "-1": expected an integer from 0 to '),
    ("  per_address:\n    handshakes_per_second: many\n", "4:28",
     'invalid handshakes_per_second "many": expected an integer from 0 to '),
    ("  per_address:\n    handshake_burts: 3\n", "4:5",
     'unknown key "handshake_burts" (did you mean "handshake_burst"?)'),
    ("  per_address:\n    exempt: [\"10.0.0.0/8\", \"10.1.0.0/33\"]\n", "4:28",
     'invalid exempt address "10.1.0.0/33": prefix length must be 0 to 32'),
    ("  per_address:\n    exempt: [bogus]\n", "4:14",
     'invalid exempt address "bogus": not a numeric IPv4 or IPv6 address'),
    ("  max_handshakes: -5\n", "3:19",
     'invalid max_handshakes "-5": expected an integer from 0 to '),
    ("  worker_max_handshake: 4\n", "3:3",
     'unknown key "worker_max_handshake" (did you mean "worker_max_handshakes"?)'),
], ids=["connections", "rate", "unknown-key", "cidr-prefix", "cidr-address",
        "max_handshakes", "worker-typo"])
def test_limits_config_errors(tmp_path, certs, limits_yaml, where, message):
    p = str(tmp_path / "tlsterm.yaml")
    with open(p, "w") as f:
        f.write(limits_config(limits_yaml) % {"cert": certs.rsa_cert, "key": certs.rsa_key})
    r = h.run([h.BIN, "-t", "-c", p], timeout=h.T(20))
    err = r.stderr.decode(errors="replace")
    assert r.returncode == 1, err
    want = re.escape("%s:%s: %s" % (p, where, message)) + (r"\d+" if message.endswith(" ") else "")
    lines = err.splitlines()
    assert len(lines) == 2 and re.fullmatch(want, lines[0]), err
    assert lines[1] == "%s: configuration has 1 error" % p, err


def test_limits_config_ok(tmp_path, certs):
    p = str(tmp_path / "tlsterm.yaml")
    with open(p, "w") as f:
        f.write(limits_config("  max_handshakes: 0\n  worker_max_handshakes: 64\n"
                              "  per_address:\n    connections: 100\n"
                              "    handshakes_per_second: 20\n    handshake_burst: 50\n"
                              "    exempt: [\"10.0.0.0/8\", \"2001:db8::/32\"]\n")
                % {"cert": certs.rsa_cert, "key": certs.rsa_key})
    r = h.run([h.BIN, "-t", "-c", p], timeout=h.T(20))
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    assert r.stdout.decode() == "%s: configuration OK\n" % p


def _sched_policies(pid):
    """{tid: policy number} of every thread (0 SCHED_OTHER, 5 SCHED_IDLE)."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        out[int(tid)] = int(fields[38])     # field 41 of proc(5): policy
    return out


def test_handshakes_run_on_idle_priority_threads(certs, http_backend, tlsterm):
    """docs/design.md, "Established traffic first": each worker has one
    handshake thread at SCHED_IDLE, so relaying preempts handshake crypto;
    the threads that relay stay at the normal policy, and a handshake done
    there serves its request."""
    d = tlsterm(h.one_listener(http_backend.port, workers=2))
    assert h.https_get(d.addr(), certs.rsa_cert, timeout=h.T(10))[1] == h.BODY
    policies = _sched_policies(d.pid)
    idle = [t for t, p in policies.items() if p == 5]
    assert len(idle) == 2, policies
    assert all(p == 0 for t, p in policies.items() if t not in idle), policies
