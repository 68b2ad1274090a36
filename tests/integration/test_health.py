# SPDX-License-Identifier: BSD-2-Clause
"""Active health checks: a server failing its check is taken out after
`fall` failures and brought back after `rise` successes, each transition
logged, without any client traffic needed to notice."""

import subprocess

import pytest

import tlsterm_harness as h
from test_pool import ask


class Checked(h.Backend):
    """HTTP server named `name`: /health answers self.health_status, every
    other path 200 with "server NAME"."""

    def __init__(self, name, **kw):
        super().__init__(**kw)
        self.name = name
        self.health_status = 200
        self.health_hits = 0

    async def handle(self, reader, writer, conn):
        while True:
            try:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            except Exception:
                return
            path = head.split(" ", 2)[1]
            if path == "/health":
                self.health_hits += 1
                status, body = self.health_status, b"health\n"
            else:
                status, body = 200, ("server %s\n" % self.name).encode()
            writer.write(b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n\r\n%s"
                         % (status, len(body), body))
            await writer.drain()
            if "HTTP/1.0" in head.split("\r\n", 1)[0]:
                return


def cfg_for(servers, health):
    cfg = h.one_listener(1)
    cfg["backends"]["app"] = {"servers": ["127.0.0.1:%d" % b.port for b in servers],
                              "health": health}
    return cfg


def test_http_check_takes_a_server_out_and_back(certs, backend, tlsterm):
    bs = [backend(Checked, n) for n in "abc"]
    d = tlsterm(cfg_for(bs, {"type": "http", "path": "/health", "interval": "100ms",
                             "timeout": "1s", "rise": 2, "fall": 3}))
    h.wait_until(lambda: all(b.health_hits >= 1 for b in bs), h.T(10), "the first checks")
    bs[2].health_status = 503
    d.wait_log(r"warn backend=app server=127\.0\.0\.1:%d is DOWN \(health check failed 3 "
               r"time\(s\): status 503, expected 200\)" % bs[2].port, timeout=h.T(10))
    assert {ask(d, certs) for _ in range(20)} == {"a", "b"}
    bs[2].health_status = 200
    d.wait_log(r"info backend=app server=127\.0\.0\.1:%d is UP \(health check passed 2 "
               r"time\(s\)\)" % bs[2].port, timeout=h.T(10))
    h.wait_until(lambda: ask(d, certs) == "c", h.T(10), "traffic back on c")


def test_tcp_check_notices_a_dead_server_without_traffic(certs, backend, tlsterm):
    bs = [backend(Checked, n) for n in "ab"]
    d = tlsterm(cfg_for(bs, {"interval": "100ms", "fall": 2}))
    port = bs[1].port
    bs[1].stop()
    d.wait_log(r"warn backend=app server=127\.0\.0\.1:%d is DOWN \(health check failed 2 "
               r"time\(s\): Connection refused\)" % port, timeout=h.T(10))
    # no client connection was made; the first one goes to the live server
    assert "reason=" not in "".join(l for l in d.log_lines() if "backend=127" in l)
    assert {ask(d, certs) for _ in range(6)} == {"a"}
    assert "is down for" not in d.log()         # never needed the passive path


def test_health_checks_follow_reloads(certs, backend, tlsterm):
    a, b = backend(Checked, "a"), backend(Checked, "b")
    health = {"type": "http", "path": "/health", "interval": "100ms"}
    d = tlsterm(cfg_for([a], health))
    h.wait_until(lambda: a.health_hits >= 2, h.T(10), "checks of generation 1")
    d.rewrite(cfg_for([b], health))
    d.reload()
    hits_a = a.health_hits
    # five rounds of the new generation's checks: time enough for an old
    # check to have run several times had it not been stopped
    h.wait_until(lambda: b.health_hits >= 5, h.T(10), "checks of generation 2")
    assert a.health_hits <= hits_a + 1, (hits_a, a.health_hits)
    assert ask(d, certs) == "b"


@pytest.mark.parametrize("health,msg", [
    ({"type": "udp"}, 'invalid type "udp": expected tcp or http'),
    ({"path": "/x"}, "health: path and expect_status need \"type: http\""),
    ({"type": "http", "path": "x"}, 'invalid path "x": must start with / and contain no spaces'),
    ({"rise": 0}, 'invalid rise "0": expected an integer from 1 to 100'),
    ({"type": "http", "expect_status": 99}, 'invalid expect_status "99": expected an integer '
                                            'from 100 to 599'),
])
def test_health_config_errors(tmp_path, certs, health, msg):
    cfg = h.one_listener(1)
    cfg["backends"]["app"]["health"] = health
    d = h.Tlsterm(tmp_path / "d", cfg, certs=certs)
    r = subprocess.run([h.BIN, "-t", "-c", d.conf_path], capture_output=True, text=True,
                       timeout=h.T(30))
    assert r.returncode == 1 and msg in r.stderr, r.stderr
