# SPDX-License-Identifier: BSD-2-Clause
"""The deployment examples of docs/deploy (the fleet guide, README.md
there), checked with the tools at hand rather than read:

  * kubernetes.yaml parses (python3-yaml) and its numbers agree with its
    own tlsterm.yaml: the readiness probe asks /healthz on the port
    admin.listen uses; terminationGracePeriodSeconds covers the preStop
    sleep + drain_notice + drain; drain_notice covers the readiness probe
    and the preStop sleep the balancer's check of the node; the Secrets are
    mounted (never by subPath, which is never updated) where the
    configuration reads them; the Service is a LoadBalancer with
    externalTrafficPolicy Local and a PROXY protocol annotation, and the
    listener reads that header; the PodDisruptionBudget and the Service
    select the Deployment's pods; the CronJob rotates the Secret the pods
    mount, with the kubectl verbs its Role allows, on a schedule that the
    ticket lifetime fits;
  * the ConfigMap's tlsterm.yaml passes `tlsterm -t` (test certificates and
    a real ticket-key file where the Secrets would be, 127.0.0.1 for the
    cluster DNS name of the application);
  * tlsterm@.service, instantiated as tlsterm@a.service, passes
    `systemd-analyze verify` and keeps tlsterm.service's sandbox;
  * tlsterm-ticket-rotate.service and .timer pass `systemd-analyze
    verify`, the timer elapses every 12 hours (systemd-analyze calendar),
    and the service's command really rotates a key file."""

import os
import re
import shutil
import datetime

import pytest

import tlsterm_harness as h

yaml = pytest.importorskip("yaml", reason="python3-yaml is not installed (.ci/deps installs it)")

SRCDIR = os.environ.get("TLSTERM_SRCDIR") or \
    os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEPLOY = os.path.join(SRCDIR, "docs", "deploy")
K8S = os.path.join(DEPLOY, "kubernetes.yaml")
TEMPLATE = os.path.join(DEPLOY, "tlsterm@.service")
ROTATE_SERVICE = os.path.join(DEPLOY, "tlsterm-ticket-rotate.service")
ROTATE_TIMER = os.path.join(DEPLOY, "tlsterm-ticket-rotate.timer")
SERVICE_IN = os.path.join(SRCDIR, "systemd", "tlsterm.service.in")

ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None,
                                   reason="systemd-analyze (systemd) is not installed")

# The Debian package's paths, which the examples use
SBIN_TLSTERM = "/usr/sbin/tlsterm"

UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def seconds(v):
    """A tlsterm duration ("15s", "1m30s", "500ms", "10h") in seconds."""
    parts = re.findall(r"(\d+)(ms|s|m|h|d)", str(v))
    assert parts and "".join(n + u for n, u in parts) == str(v), "not a duration: %r" % v
    return sum(int(n) * UNITS[u] for n, u in parts)


# ---------------------------------------------------------------- kubernetes.yaml

def manifests():
    with open(K8S) as f:
        docs = [d for d in yaml.safe_load_all(f) if d is not None]
    assert docs, K8S
    return docs


def the(docs, kind):
    found = [d for d in docs if d.get("kind") == kind]
    assert len(found) == 1, "%d %s objects in %s" % (len(found), kind, K8S)
    return found[0]


def tlsterm_yaml(docs):
    """(text, parsed) of the ConfigMap's tlsterm.yaml."""
    text = the(docs, "ConfigMap")["data"]["tlsterm.yaml"]
    return text, yaml.safe_load(text)


def pod(docs):
    return the(docs, "Deployment")["spec"]["template"]["spec"]


def container(docs):
    cs = [c for c in pod(docs)["containers"] if c["name"] == "tlsterm"]
    assert len(cs) == 1, pod(docs)["containers"]
    return cs[0]


def container_port(c, port):
    """A probe's or Service's port (number or name) as a number."""
    if isinstance(port, int):
        return port
    named = [p["containerPort"] for p in c.get("ports", []) if p.get("name") == port]
    assert named, "no container port named %r" % port
    return named[0]


def addr_port(addr):
    return int(addr.rsplit(":", 1)[1])


def prestop_sleep(c):
    """Seconds the preStop hook sleeps (0 without one)."""
    ps = c.get("lifecycle", {}).get("preStop")
    if not ps:
        return 0
    if "sleep" in ps:
        return int(ps["sleep"]["seconds"])
    cmd = ps["exec"]["command"]
    assert os.path.basename(cmd[0]) == "sleep" and len(cmd) == 2, \
        "a preStop hook other than a sleep: %r" % cmd
    return seconds(cmd[1] if cmd[1][-1].isalpha() else cmd[1] + "s")


def labels_match(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


def test_manifests_hold_every_piece():
    docs = manifests()
    kinds = [d["kind"] for d in docs]
    for kind in ("ConfigMap", "Deployment", "Service", "PodDisruptionBudget", "CronJob"):
        assert kind in kinds, kinds
    assert len({d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"}) == 1
    dep = the(docs, "Deployment")
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert labels_match(dep["spec"]["selector"]["matchLabels"], labels)
    # the PodDisruptionBudget and the Service select these pods
    pdb = the(docs, "PodDisruptionBudget")
    assert pdb["apiVersion"] == "policy/v1"
    assert labels_match(pdb["spec"]["selector"]["matchLabels"], labels)
    assert pdb["spec"].get("maxUnavailable") == 1 or pdb["spec"].get("minAvailable"), pdb
    svc = the(docs, "Service")
    assert labels_match(svc["spec"]["selector"], labels)
    # a rollout never takes capacity away first
    ru = dep["spec"]["strategy"]["rollingUpdate"]
    assert ru["maxUnavailable"] == 0 and ru["maxSurge"] >= 1, ru


def test_service_sends_the_proxy_protocol_the_listener_reads():
    docs = manifests()
    svc = the(docs, "Service")
    assert svc["spec"]["type"] == "LoadBalancer"
    assert svc["spec"]["externalTrafficPolicy"] == "Local"
    ann = svc["metadata"].get("annotations", {})
    assert ann.get("service.beta.kubernetes.io/aws-load-balancer-proxy-protocol") == "*", ann
    _, cfg = tlsterm_yaml(docs)
    c = container(docs)
    (port,) = svc["spec"]["ports"]
    target = container_port(c, port["targetPort"])
    listeners = [l for l in cfg["listeners"] if any(addr_port(a) == target for a in l["listen"])]
    assert len(listeners) == 1, "no listener on the Service's targetPort %d" % target
    l = listeners[0]
    assert l["proxy_protocol_in"] is True
    # the balancer's range, not the world: a trusted peer may claim any address
    assert l["trusted"] and not [t for t in l["trusted"] if t.endswith("/0")], l["trusted"]
    assert cfg["backends"][l["backend"]]["forwarded_headers"] is True


def test_readiness_probe_is_healthz_on_the_admin_port():
    docs = manifests()
    _, cfg = tlsterm_yaml(docs)
    c = container(docs)
    admin = cfg["admin"]["listen"]
    probe = c["readinessProbe"]["httpGet"]
    assert probe["path"] == "/healthz", probe
    assert container_port(c, probe["port"]) == addr_port(admin), (probe, admin)
    # the kubelet probes the pod's address: loopback would never answer it
    assert not admin.startswith(("127.", "[::1]", "unix:")), admin
    assert cfg["admin"].get("allow_remote") is True
    # the liveness probe must not be /healthz, which fails during the drain
    live = c["livenessProbe"]["httpGet"]
    assert live["path"] != "/healthz" and container_port(c, live["port"]) == addr_port(admin)


def test_drain_notice_covers_the_readiness_probe():
    docs = manifests()
    _, cfg = tlsterm_yaml(docs)
    r = container(docs)["readinessProbe"]
    period, fails = r.get("periodSeconds", 10), r.get("failureThreshold", 3)
    # interval x failures needed + the check already under way
    assert seconds(cfg["timeouts"]["drain_notice"]) >= period * fails + period, (cfg["timeouts"], r)


def test_prestop_covers_the_balancers_check_of_the_node():
    docs = manifests()
    ann = the(docs, "Service")["metadata"]["annotations"]
    interval = int(ann["service.beta.kubernetes.io/aws-load-balancer-healthcheck-interval"])
    fails = int(ann["service.beta.kubernetes.io/aws-load-balancer-healthcheck-unhealthy-threshold"])
    assert prestop_sleep(container(docs)) >= interval * fails + interval


def test_grace_period_covers_prestop_notice_and_drain():
    docs = manifests()
    _, cfg = tlsterm_yaml(docs)
    need = prestop_sleep(container(docs)) + seconds(cfg["timeouts"]["drain_notice"]) + \
        seconds(cfg["timeouts"]["drain"])
    grace = pod(docs)["terminationGracePeriodSeconds"]
    print("terminationGracePeriodSeconds %d for preStop + drain_notice + drain = %d s"
          % (grace, need))
    assert grace > need, "a margin for the exit is needed: %d <= %d" % (grace, need)


def secret_mounts(docs):
    """{mountPath: (volume, volumeMount)} of the tlsterm container's Secret
    and ConfigMap volumes."""
    vols = {v["name"]: v for v in pod(docs)["volumes"]}
    return {m["mountPath"]: (vols[m["name"]], m) for m in container(docs)["volumeMounts"]}


def files_read(cfg):
    """[(role, path)] of the files tlsterm.yaml names."""
    out = [("key_file", cfg["tls"]["tickets"]["key_file"])]
    for l in cfg["listeners"]:
        for c in l.get("certificates", []):
            out += [("cert", c["cert"]), ("key", c["key"])]
    return out


def mount_of(docs, path):
    for mp, (vol, m) in secret_mounts(docs).items():
        if path.startswith(mp.rstrip("/") + "/"):
            return mp, vol, m
    raise AssertionError("%s is on no volume of the pod" % path)


def test_secrets_are_mounted_where_the_configuration_reads_them():
    docs = manifests()
    _, cfg = tlsterm_yaml(docs)
    for role, path in files_read(cfg):
        mp, vol, m = mount_of(docs, path)
        assert "secret" in vol, "%s (%s) is not on a Secret volume: %r" % (path, role, vol)
        # a subPath mount is never updated: the watch would see nothing
        assert "subPath" not in m, m
        name = os.path.relpath(path, mp)
        items = vol["secret"].get("items")
        assert items is None or name in [i["path"] for i in items], (path, items)
    # the configuration file itself, where the command says
    cmd = container(docs)["command"]
    conf = cmd[cmd.index("-c") + 1]
    mp, vol, m = mount_of(docs, conf)
    assert vol.get("configMap", {}).get("name") == the(docs, "ConfigMap")["metadata"]["name"]
    assert os.path.relpath(conf, mp) == "tlsterm.yaml"


def test_configmap_configuration_passes_tlsterm_t(tmp_path, certs):
    docs = manifests()
    text, cfg = tlsterm_yaml(docs)
    made = {}
    for role, path in files_read(cfg):
        local = str(tmp_path / "secrets" / path.lstrip("/"))
        os.makedirs(os.path.dirname(local), exist_ok=True)
        if role == "cert":
            shutil.copy(certs.rsa_cert, local)
        elif role == "key":
            shutil.copy(certs.rsa_key, local)
        else:
            r = h.run([h.BIN, "-k", local], timeout=h.T(20))
            assert r.returncode == 0, r.stderr
        made[path] = local
    for path, local in made.items():
        text = text.replace(path, local)
    # the application's Service name only resolves inside the cluster
    text, n = re.subn(r"\b[a-z0-9.-]+\.svc\.cluster\.local\b", "127.0.0.1", text)
    conf = tmp_path / "tlsterm.yaml"
    conf.write_text(text)
    r = h.run([h.BIN, "-t", "-c", str(conf)], timeout=h.T(30))
    out = (r.stdout + r.stderr).decode(errors="replace")
    print(out)
    assert r.returncode == 0, out


def hours_between(schedule):
    """The interval of a cron schedule that fires at a fixed minute on a
    set of hours ("0 */12 * * *", "0 0,12 * * *")."""
    minute, hour, dom, month, dow = schedule.split()
    assert minute.isdigit() and (dom, month, dow) == ("*", "*", "*"), schedule
    if hour.startswith("*/"):
        hours = list(range(0, 24, int(hour[2:])))
    else:
        hours = sorted(int(x) for x in hour.split(","))
    gaps = [(b - a) % 24 or 24 for a, b in zip(hours, hours[1:] + hours[:1])]
    return min(gaps)


def test_rotation_cronjob_fits_the_ticket_lifetime():
    docs = manifests()
    _, cfg = tlsterm_yaml(docs)
    cj = the(docs, "CronJob")["spec"]
    interval = hours_between(cj["schedule"]) * 3600
    lifetime = seconds(cfg["tls"]["tickets"]["lifetime"])
    late = cj.get("startingDeadlineSeconds")
    assert late is not None, "a run without a deadline may start any time after its slot"
    # a ticket sealed just before a rotation must expire before its key is
    # dropped one rotation later, even when that rotation started early
    # relative to a late one
    assert lifetime + late < interval, (lifetime, late, interval)
    assert cj["concurrencyPolicy"] == "Forbid"
    job = cj["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 0     # never rotate twice for one slot
    spec = job["template"]["spec"]
    steps = spec.get("initContainers", []) + spec["containers"]
    # `tlsterm -k` rotates; the Secret it reads and patches is the one the
    # pods mount at the key file's directory, and the Role allows exactly that
    assert [s for s in steps if s["command"][-2:] == ["-k", s["command"][-1]]
            and os.path.basename(s["command"][0]) == "tlsterm"], steps
    _, vol, _ = mount_of(docs, cfg["tls"]["tickets"]["key_file"])
    secret = vol["secret"]["secretName"]
    scripts = " ".join(" ".join(s["command"]) for s in steps)
    assert re.search(r"kubectl .*get secret %s\b" % secret, scripts), scripts
    assert re.search(r"kubectl .*patch secret %s\b" % secret, scripts), scripts
    role = the(docs, "Role")
    (rule,) = role["rules"]
    assert rule["resources"] == ["secrets"] and rule["resourceNames"] == [secret]
    assert sorted(rule["verbs"]) == ["get", "patch"]
    binding = the(docs, "RoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert [s["name"] for s in binding["subjects"]] == [spec["serviceAccountName"]]


# ---------------------------------------------------------------- systemd

def unit_settings(text):
    """{(section, key): [values]} of a unit file."""
    out, section = {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        k, _, v = line.partition("=")
        out.setdefault((section, k.strip()), []).append(v.strip())
    return out


def read(path):
    with open(path) as f:
        return f.read()


def with_binary_under_test(text, d):
    """The unit text with /usr/sbin/tlsterm replaced by a symlink called
    tlsterm to the binary under test, in d/sbin."""
    sbin = os.path.join(str(d), "sbin")
    os.makedirs(sbin, exist_ok=True)
    link = os.path.join(sbin, "tlsterm")
    if not os.path.lexists(link):
        os.symlink(os.path.abspath(h.BIN), link)
    return text.replace(SBIN_TLSTERM, link)


def verify(*units):
    r = h.run([ANALYZE, "verify", "--man=no", *units], timeout=h.T(60))
    err = r.stderr.decode(errors="replace")
    print(err)
    assert r.returncode == 0, "systemd-analyze verify failed:\n" + err
    ours = [l for l in err.splitlines() if "tlsterm" in l]
    assert not ours, "systemd-analyze verify warns:\n" + "\n".join(ours)


@needs_analyze
def test_instance_of_the_template_verifies(tmp_path):
    unit = tmp_path / "tlsterm@a.service"
    unit.write_text(with_binary_under_test(read(TEMPLATE), tmp_path))
    verify(str(unit))


def test_template_reads_its_instance_config_and_keeps_the_sandbox():
    s = unit_settings(read(TEMPLATE))
    one = lambda k: s[("Service", k)][-1]  # noqa: E731
    assert s[("Service", "ExecStart")] == ["/usr/sbin/tlsterm -c /etc/tlsterm/%i.yaml"]
    assert s[("Service", "ExecStartPre")] == ["/usr/sbin/tlsterm -t -c /etc/tlsterm/%i.yaml"]
    assert s[("Service", "ExecReload")] == ["/usr/sbin/tlsterm -t -c /etc/tlsterm/%i.yaml",
                                            "/bin/kill -HUP $MAINPID"]
    # systemd removes a RuntimeDirectory when its unit stops: one per instance
    assert "%i" in one("RuntimeDirectory")
    # the drain (30 s by default) plus a notice must end before SIGKILL
    stop = one("TimeoutStopSec")
    assert re.fullmatch(r"\d+s", stop) and int(stop[:-1]) > 30
    # everything else as tlsterm.service, which test_systemd.py checks
    base = unit_settings(read(SERVICE_IN).replace("@sbindir@", "/usr/sbin")
                         .replace("@sysconfdir@", "/etc"))
    differs = {k: (v, s.get(k)) for k, v in base.items()
               if k[0] == "Service" and s.get(k) != v and
               k[1] not in ("ExecStart", "ExecStartPre", "ExecReload", "RuntimeDirectory")}
    assert not differs, "tlsterm@.service differs from tlsterm.service.in: %r" % differs
    assert s[("Install", "WantedBy")] == base[("Install", "WantedBy")]


@needs_analyze
def test_rotation_timer_and_service_verify(tmp_path):
    service = tmp_path / "tlsterm-ticket-rotate.service"
    service.write_text(with_binary_under_test(read(ROTATE_SERVICE), tmp_path))
    timer = tmp_path / "tlsterm-ticket-rotate.timer"
    shutil.copy(ROTATE_TIMER, timer)
    verify(str(timer), str(service))


@needs_analyze
def test_rotation_timer_elapses_every_12_hours():
    s = unit_settings(read(ROTATE_TIMER))
    (cal,) = s[("Timer", "OnCalendar")]
    assert ("Timer", "Persistent") not in s, "a missed rotation must not run late"
    r = h.run([ANALYZE, "calendar", "--iterations=3", cal], timeout=h.T(30))
    out = r.stdout.decode(errors="replace")
    assert r.returncode == 0, out + r.stderr.decode(errors="replace")
    # systemd 252 says "Iter. #2", 257 "Iteration #2"
    stamps = re.findall(r"(?:Next elapse|Iter(?:\.|ation) #\d+): \w+ "
                        r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)", out)
    assert len(stamps) == 3, out
    t = [datetime.datetime.strptime(x, "%Y-%m-%d %H:%M:%S") for x in stamps]
    assert {b - a for a, b in zip(t, t[1:])} == {datetime.timedelta(hours=12)}, out
    # the lifetime the unit's comment recommends fits the interval
    m = re.search(r"lifetime: (\w+)\}", read(ROTATE_TIMER))
    assert m and seconds(m.group(1)) < 12 * 3600, m


def test_rotation_service_command_rotates(tmp_path):
    s = unit_settings(read(ROTATE_SERVICE))
    (cmd,) = s[("Service", "ExecStart")]
    argv = cmd.split()
    assert argv[0] == SBIN_TLSTERM and argv[1] == "-k", argv
    assert s[("Unit", "ConditionPathExists")] == [argv[2]]
    assert argv[2] in s[("Service", "ReadWritePaths")][-1].split() or \
        os.path.dirname(argv[2]) in s[("Service", "ReadWritePaths")][-1].split()
    keys = str(tmp_path / "ticket.keys")
    assert h.run([h.BIN, "-k", keys], timeout=h.T(20)).returncode == 0
    r = h.run([h.BIN] + argv[1:2] + [keys], timeout=h.T(20))
    assert r.returncode == 0 and b"rotated" in r.stdout, r.stdout + r.stderr
