"""Egress allow-lists enforced outside the sandbox: a step allowed `example-allowed` reaches it and
nothing else (not without the proxy variables, not by IP, not on another port, not through the
proxy, not through DNS, not the host's own services); audit mode records every request and prints
the `allow:` list the run needed; the proxy and its networks go with the run.

The test servers are `pipe-sandbox` containers running `python3 -m http.server` on a test network,
which the run's proxy joins as its outward network (PIPE_EGRESS_NETWORK)."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from runner.egress.policy import minimal_allow, parse_log, rules, squid_config
from runner.errors import UsageError
from runner.pipeline.egress import EgressPolicy
from runner.store import Store
from tests.support.cli import Cli
from tests.support.pipelines import containers_left, write_pipeline

docker_test = pytest.mark.docker

SERVE = "mkdir -p /tmp/www && echo hello > /tmp/www/ok.txt && cd /tmp/www && {servers} wait"


@dataclass
class Servers:
    network: str
    allowed: Any
    other: Any

    def ip(self, container: Any) -> str:
        container.reload()
        return str(container.attrs["NetworkSettings"]["Networks"][self.network]["IPAddress"])

    @staticmethod
    def requests(container: Any) -> str:
        return str(container.logs().decode(errors="replace"))


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    import docker

    from sandbox.docker import DockerBackend

    backend = DockerBackend()
    image = backend.ensure_image("pipe-sandbox", lambda _: None)
    backend.close()
    client = docker.from_env()
    name = f"pipe-egress-test-{uuid.uuid4().hex[:8]}"
    network = client.networks.create(name, driver="bridge", labels={"pipe.test": "egress"})
    started = []
    try:
        for host, ports in (("example-allowed", (8000, 9000)), ("example-other", (8000,))):
            command = SERVE.format(servers=" ".join(f"python3 -m http.server {p} & " for p in ports))
            container = client.containers.run(
                image, ["sh", "-c", command], name=f"{name}-{host}", detach=True, labels={"pipe.test": "egress"}
            )
            started.append(container)
            network.connect(container, aliases=[host])
        bridge = client.networks.get("bridge")
        for container in started:
            bridge.disconnect(container)  # only on the test network: reachable only through it
        _wait_serving(started)
        yield Servers(name, started[0], started[1])
    finally:
        for container in started:
            container.remove(force=True)
        network.remove()
        client.close()


def _wait_serving(containers: list[Any]) -> None:
    deadline = time.monotonic() + 30
    for container in containers:
        while b"Serving HTTP" not in container.logs() and time.monotonic() < deadline:
            time.sleep(0.1)


class Sniffer:
    """Every packet on the host's interfaces that carries `marker`, by interface name."""

    def __init__(self, marker: bytes) -> None:
        self.marker = marker
        self.seen: dict[str, int] = {}
        self._socket = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
        self._socket.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                data, address = self._socket.recvfrom(65535)
            except TimeoutError:
                continue
            if self.marker in data:
                self.seen[address[0]] = self.seen.get(address[0], 0) + 1

    def stop(self) -> dict[str, int]:
        self._stop.set()
        self._thread.join()
        self._socket.close()
        return self.seen


def _host_addresses() -> list[str]:
    lines = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True, check=True).stdout
    return [line.split()[3].split("/")[0] for line in lines.splitlines() if " lo " not in line]


def _interfaces() -> set[str]:
    return {name for _, name in socket.if_nameindex()}


class HostListener:
    """A TCP listener on every host address: a service the sandbox must not reach."""

    def __init__(self) -> None:
        self.accepted = 0
        self._socket = socket.create_server(("0.0.0.0", 0))
        self._socket.settimeout(0.2)
        self.port = self._socket.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            self.accepted += 1
            connection.close()

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        self._socket.close()
        return self.accepted


PROBES = r"""
import json, os, socket, urllib.error, urllib.request

def http(url, proxy=True):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler() if proxy else urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=4) as reply:
            return [reply.status, reply.read().decode()]
    except urllib.error.HTTPError as error:
        return [error.code, ""]
    except Exception as error:
        return [type(error).__name__, ""]

def connect(host, port, send=b""):
    try:
        with socket.create_connection((host, port), timeout=3) as sock:
            if send:
                sock.sendall(send)
                return sock.recv(64).decode(errors="replace").split("\r\n")[0]
            return "connected"
    except Exception as error:
        return type(error).__name__

def resolve(name):
    try:
        return socket.getaddrinfo(name, 80)[0][4][0]
    except Exception as error:
        return type(error).__name__

other, marker = os.environ["OTHER_IP"], os.environ["MARKER"]
proxy = os.environ["HTTP_PROXY"].rsplit("/", 1)[1].split(":")
gateway = ".".join(proxy[0].split(".")[:3] + ["1"])
result = {
    "allowed": http("http://example-allowed:8000/ok.txt"),
    "other_proxy": http("http://example-other:8000/leak-proxy"),
    "other_direct": http("http://example-other:8000/leak-direct", proxy=False),
    "other_ip_proxy": http(f"http://{other}:8000/leak-ip-proxy"),
    "other_ip_direct": http(f"http://{other}:8000/leak-ip-direct", proxy=False),
    "other_port_proxy": http("http://example-allowed:9000/leak-port-proxy"),
    "other_port_direct": http("http://example-allowed:9000/leak-port-direct", proxy=False),
    "connect_other": connect(proxy[0], int(proxy[1]), b"CONNECT example-other:8000 HTTP/1.1\r\nHost: x\r\n\r\n"),
    "connect_port": connect(proxy[0], int(proxy[1]), b"CONNECT example-allowed:9000 HTTP/1.1\r\nHost: x\r\n\r\n"),
    "dns_other": resolve(f"{marker}.example-other"),
    "dns_out": resolve(f"{marker}.example.net"),
    "dns_proxy_server": connect(proxy[0], 53),
    "host": {ip: connect(ip, int(os.environ["HOST_PORT"])) for ip in os.environ["HOST_IPS"].split() + [gateway]},
}
with open(os.environ["PIPE_OUTPUT"], "a") as out:
    out.write("result=" + json.dumps(result) + "\n")
"""


@docker_test
def test_allowed_host_only_no_bypass(
    cli: Cli, tmp_path: Path, servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIPE_EGRESS_NETWORK", servers.network)
    marker = f"zq{uuid.uuid4().hex[:12]}"
    listener = HostListener()
    before = _interfaces() - {"lo"}
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "probes.py").write_text(PROBES)
    path = write_pipeline(
        tmp_path / "p",
        f"""\
        version: 1
        name: egress-enforce
        sandbox: {{egress: none}}
        steps:
          - id: probe
            sandbox: {{egress: {{allow: [example-allowed:8000]}}}}
            env:
              OTHER_IP: "{servers.ip(servers.other)}"
              MARKER: "{marker}"
              HOST_IPS: "{" ".join(_host_addresses())}"
              HOST_PORT: "{listener.port}"
            run: python3 probes.py
        """,
    )
    sniffer = Sniffer(marker.encode())
    try:
        result = cli("run", str(path), "--state-dir", str(tmp_path / "state"), "--workspace", str(tmp_path / "ws"))
    finally:
        seen = sniffer.stop()
        accepted = listener.stop()
    assert result.code == 0, result.out + result.err
    store = Store(tmp_path / "state")
    record = store.run("latest")
    probe = json.loads({s.step_id: s for s in store.steps(record.id)}["probe"].outputs["result"])
    assert probe["allowed"] == [200, "hello\n"]
    for key in ("other_proxy", "other_ip_proxy", "other_port_proxy"):
        assert probe[key][0] == 403, (key, probe)
    for key in ("other_direct", "other_ip_direct", "other_port_direct"):
        assert probe[key][0] in ("URLError", "TimeoutError", "OSError"), (key, probe)
    assert probe["connect_other"].endswith("403 Forbidden"), probe
    assert probe["connect_port"].endswith("403 Forbidden"), probe
    assert probe["dns_other"] == "gaierror" and probe["dns_out"] == "gaierror", probe
    assert probe["dns_proxy_server"] != "connected", probe
    assert all(outcome != "connected" for outcome in probe["host"].values()), probe
    assert accepted == 0
    # The second server (and the allowed server's other port) saw nothing at all.
    assert "leak" not in Servers.requests(servers.other)
    assert "leak" not in Servers.requests(servers.allowed)
    assert "GET /ok.txt" in Servers.requests(servers.allowed)
    # The made-up name carrying data never reached an interface that existed before the run
    # (the host's own, the default bridge, the test network): it never left the run's network.
    assert seen, "the sniffer saw the query on the run's own network, so it would see it anywhere else"
    assert not (set(seen) & before), seen
    # Every request through the proxy is recorded, refused ones too.
    events = [e.data for e in store.events(record.id) if e.kind == "egress"]
    requests = [(r["host"], r["port"], r["allowed"]) for e in events for r in e["requests"]]
    assert ("example-allowed", 8000, True) in requests
    assert ("example-other", 8000, False) in requests
    assert ("example-allowed", 9000, False) in requests
    shown = cli("show", record.id, "--state-dir", str(tmp_path / "state"))
    assert "example-other:8000 refused" in shown.out, shown.out
    assert not containers_left("pipe.run", record.id)
    assert not _networks_left(record.id)
    store.close()


@docker_test
def test_audit_prints_the_allow_list_that_then_passes(
    cli: Cli, tmp_path: Path, servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIPE_EGRESS_NETWORK", servers.network)
    script = "curl -fsS -o /dev/null http://example-allowed:8000/ok.txt && curl -fsS -o /dev/null http://example-other:8000/ok.txt"
    audit = write_pipeline(
        tmp_path / "a",
        f"""\
        version: 1
        name: egress-audit
        sandbox: {{egress: {{allow: [], mode: audit}}}}
        steps:
          - id: download
            run: {script}
        """,
    )
    result = cli("run", str(audit), "--state-dir", str(tmp_path / "state"), "--workspace", str(tmp_path / "ws"))
    assert result.code == 0, result.out + result.err
    assert "allow: [example-allowed:8000, example-other:8000]" in result.out, result.out
    enforced = write_pipeline(
        tmp_path / "e",
        f"""\
        version: 1
        name: egress-enforced
        sandbox: {{egress: {{allow: [example-allowed:8000, example-other:8000]}}}}
        steps:
          - id: download
            run: {script}
        """,
    )
    result = cli("run", str(enforced), "--state-dir", str(tmp_path / "state"), "--workspace", str(tmp_path / "ws"))
    assert result.code == 0, result.out + result.err
    narrower = write_pipeline(
        tmp_path / "n",
        f"""\
        version: 1
        name: egress-narrower
        sandbox: {{egress: {{allow: [example-allowed:8000]}}}}
        steps:
          - id: download
            run: {script}
        """,
    )
    result = cli("run", str(narrower), "--state-dir", str(tmp_path / "state"), "--workspace", str(tmp_path / "ws"))
    assert result.code == 1, result.out + result.err


def _networks_left(run_id: str) -> list[str]:
    import docker

    client = docker.from_env()
    try:
        return [str(n.name) for n in client.networks.list(filters={"label": f"pipe.run={run_id}"})]
    finally:
        client.close()


# ---- the policy's pure parts ----------------------------------------------------------------


def test_presets_expand_and_bad_entries_are_refused() -> None:
    found = rules(EgressPolicy("allow", ("github", "*.example.org", "example.com:8443")))
    hosts = [(rule.host, rule.ports) for rule in found]
    assert ("api.github.com", (80, 443)) in hosts
    assert (".example.org", (80, 443)) in hosts
    assert ("example.com", (8443,)) in hosts
    with pytest.raises(UsageError, match="'exa mple' is neither a preset"):
        rules(EgressPolicy("allow", ("exa mple",)))


def test_squid_config_refuses_all_but_the_rules_per_subnet() -> None:
    enforce = EgressPolicy("allow", ("example.com:8443",))
    audit = EgressPolicy("allow", (), "audit")
    text = squid_config(
        {enforce.key: enforce, audit.key: audit}, {enforce.key: "10.1.0.0/16", audit.key: "10.2.0.0/16"}
    )
    assert text.splitlines()[-1] == "http_access deny all"
    assert "acl net0 src 10.2.0.0/16\nhttp_access allow net0\n" in text  # audit: everything, recorded
    assert "acl net1 src 10.1.0.0/16\nacl n1r0h dstdomain -n example.com\nacl n1r0p port 8443\n" in text
    assert "http_access allow net1 n1r0h n1r0p\n" in text


def test_log_lines_give_requests_and_the_minimal_allow_list() -> None:
    requests = parse_log(
        [
            "pipe 1.5 10.1.0.3 CONNECT pypi.example 443 TCP_TUNNEL/200 500 9000",
            "pipe 1.6 10.1.0.3 GET example-other 8000 TCP_DENIED/403 120 3400",
            "noise",
        ]
    )
    assert [(r.host, r.port, r.allowed, r.received) for r in requests] == [
        ("pypi.example", 443, True, 9000),
        ("example-other", 8000, False, 3400),
    ]
    assert minimal_allow([r.as_dict() for r in requests]) == ["example-other:8000", "pypi.example"]


@docker_test
def test_a_bad_entry_fails_the_run_before_its_first_step(cli: Cli, tmp_path: Path) -> None:
    path = write_pipeline(
        tmp_path,
        """\
        version: 1
        name: egress-bad
        steps:
          - id: one
            sandbox: {egress: {allow: ["example.com:99999"]}}
            run: echo never
        """,
    )
    result = cli("run", str(path), "--state-dir", str(tmp_path / "state"))
    assert result.code == 1, result.out + result.err
    assert "sandbox.egress.allow: 'example.com:99999' is neither a preset" in result.out + result.err
    store = Store(tmp_path / "state")
    record = store.run("latest")
    assert record.status == "failed" and not store.attempts(record.id)
    store.close()


def test_bad_egress_values_are_named_with_file_line_and_key(cli: Cli, tmp_path: Path) -> None:
    path = write_pipeline(
        tmp_path,
        """\
        version: 1
        name: x
        steps:
          - id: a
            sandbox: {egress: {allow: ["exa mple"]}}
            run: "true"
          - id: b
            sandbox: {egress: sometimes}
            run: "true"
        """,
    )
    result = cli("validate", str(path))
    assert result.code == 2
    assert (
        f"{path}:5:32: steps[0].sandbox.egress.allow[0]: 'exa mple' is neither a preset nor a host, *.domain or "
        "host:port" in result.out + result.err
    )
    assert (
        f"{path}:8:23: steps[1].sandbox.egress: 'sometimes' is not one of ['none', 'open']" in result.out + result.err
    )
