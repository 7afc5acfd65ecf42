"""The key proxy alone, with real Docker: the run's Squid (sandbox/network.py) with a key route
(runner/egress/keyproxy.py) to the fake model server in its own container. A client on an agent
network, holding only the placeholder key, gets the model's answer and the model sees the real
key; a client on another of the run's networks, a forward request to the key port, or a key port
reached any other way gets nothing; the key is in no `docker inspect` of the proxy."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from runner.egress.keyproxy import CA_FILE, key_ports_config
from runner.egress.keys import PLACEHOLDER, key_routes, sandbox_variables
from runner.egress.policy import squid_config
from runner.pipeline.egress import EgressPolicy
from sandbox.network import EgressProxy
from tests.support.model_server import ModelServer, certificates, model_server

pytestmark = pytest.mark.docker

KEY = "sk-ant-keyproxy-" + uuid.uuid4().hex
AGENT = EgressPolicy("allow", (), "enforce", ("anthropic",))
OTHER = EgressPolicy("allow", ("example.invalid",), "enforce")
CALL = """
import json, os, sys, urllib.request
url = sys.argv[1]
request = urllib.request.Request(url + "/v1/messages", data=json.dumps({"model": "m", "max_tokens": 5,
    "messages": [{"role": "user", "content": "hello"}]}).encode(), method="POST",
    headers={"x-api-key": os.environ.get("ANTHROPIC_API_KEY", ""), "content-type": "application/json",
             "Authorization": "Bearer " + os.environ.get("ANTHROPIC_API_KEY", "")})
try:
    with urllib.request.urlopen(request, timeout=20) as answer:
        print("STATUS", answer.status, answer.read().decode()[:300])
except urllib.error.HTTPError as error:
    print("STATUS", error.code)
except Exception as error:
    print("FAILED", type(error).__name__, error)
"""


@pytest.fixture(scope="module")
def image() -> str:
    from sandbox.docker import DockerBackend

    backend = DockerBackend()
    try:
        return backend.ensure_image("pipe-sandbox", lambda _: None)
    finally:
        backend.close()


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes, bytes]:
    return certificates(tmp_path_factory.mktemp("tls"), "fake-model")


@pytest.fixture(scope="module")
def server(image: str, authority: tuple[bytes, bytes, bytes]) -> Iterator[ModelServer]:
    with model_server(image, authority[1:]) as running:
        yield running


@pytest.fixture(scope="module")
def proxy(server: ModelServer) -> Iterator[EgressProxy]:
    import docker

    client = docker.from_env()
    routes = key_routes({"ANTHROPIC_API_KEY": KEY}, {"ANTHROPIC_BASE_URL": server.url})
    policies = {AGENT.key: AGENT, OTHER.key: OTHER}
    running = EgressProxy(client, {"pipe.test": "keyproxy"}, outward=server.network)

    def config(subnets: Any) -> str:
        return squid_config(policies, subnets, key_ports_config(routes, {"anthropic": [subnets[AGENT.key]]}, None))

    running.start(sorted(policies), config, lambda _: None)
    try:
        yield running
    finally:
        running.close()
        client.close()


def call(image: str, proxy: EgressProxy, policy: EgressPolicy, url: str, env: dict[str, str] | None = None) -> str:
    import docker

    client = docker.from_env()
    attachment = proxy.attachment(policy.key)
    container = client.containers.create(
        image, ["python3", "-c", CALL, url], network=attachment.network, environment=env or {},
        labels={"pipe.test": "keyproxy"},
    )  # fmt: skip
    try:
        container.start()
        container.wait(timeout=60)
        return str(container.logs().decode(errors="replace"))
    finally:
        container.remove(force=True)
        client.close()


def test_an_agent_network_gets_the_answer_with_the_real_key_added(
    image: str, proxy: EgressProxy, server: ModelServer
) -> None:
    routes = key_routes({"ANTHROPIC_API_KEY": KEY}, {"ANTHROPIC_BASE_URL": server.url})
    variables = sandbox_variables(routes, proxy.attachment(AGENT.key).proxy)
    assert variables["ANTHROPIC_API_KEY"] == PLACEHOLDER
    before = len(server.requests())
    shown = call(image, proxy, AGENT, variables["ANTHROPIC_BASE_URL"], variables)
    assert "STATUS 200" in shown and '"type": "message"' in shown, shown
    (seen,) = server.requests()[before:]
    assert seen["path"] == "/v1/messages"
    assert seen["key_sha256"] == hashlib.sha256(KEY.encode()).hexdigest()  # not the placeholder's


def test_other_networks_and_forward_requests_never_get_the_key(
    image: str, proxy: EgressProxy, server: ModelServer
) -> None:
    agent_url = f"http://{proxy.attachment(AGENT.key).proxy}:3200"
    before = len(server.requests())
    # a sandbox of another policy, straight to the key port
    shown = call(image, proxy, OTHER, f"http://{proxy.attachment(OTHER.key).proxy}:3200")
    assert "STATUS 403" in shown, shown
    # a forward request through the proxy's own port, to its key port, from either network
    forward = {"http_proxy": proxy.attachment(OTHER.key).proxy_url}
    assert "STATUS 403" in call(image, proxy, OTHER, f"http://{proxy.attachment(OTHER.key).proxy}:3200", forward)
    forward = {"http_proxy": proxy.attachment(AGENT.key).proxy_url}
    assert "STATUS 403" in call(image, proxy, AGENT, agent_url, forward)
    assert server.requests()[before:] == []


def test_the_key_is_in_no_inspect_of_the_proxy(proxy: EgressProxy) -> None:
    import docker

    client = docker.from_env()
    try:
        found = client.containers.list(filters={"label": ["pipe.test=keyproxy", "pipe.egress=1"]})
        assert found
        for container in found:
            assert KEY not in json.dumps(client.api.inspect_container(str(container.id)))
            assert "PIPE_SQUID_CONF" not in json.dumps(container.attrs["Config"]["Env"])
            output = container.exec_run(["stat", "-c", "%a %U", "/etc/squid/pipe.conf"]).output
            mode = output.decode().strip() if isinstance(output, bytes) else ""
            assert mode == "600 proxy"
    finally:
        client.close()


@pytest.mark.parametrize("trusted", [True, False])
def test_a_tls_upstream_is_verified_with_the_persons_ca(
    image: str, server: ModelServer, authority: tuple[bytes, bytes, bytes], trusted: bool
) -> None:
    """Squid (GnuTLS build) speaks TLS to the model API and checks its certificate against the CA
    bundle it was given: with the test CA the call goes through, without it nothing reaches the model."""
    import docker

    client = docker.from_env()
    routes = key_routes({"ANTHROPIC_API_KEY": KEY}, {"ANTHROPIC_BASE_URL": server.tls_url})
    assert routes[0].upstream.tls
    running = EgressProxy(client, {"pipe.test": "keyproxy"}, outward=server.network)

    def config(subnets: Any) -> str:
        return squid_config(
            {AGENT.key: AGENT}, subnets, key_ports_config(routes, {"anthropic": [subnets[AGENT.key]]}, CA_FILE)
        )

    files = {"pipe-ca.pem": authority[0] if trusted else b""}
    running.start([AGENT.key], config, lambda _: None, files)
    try:
        variables = sandbox_variables(routes, running.attachment(AGENT.key).proxy)
        before = len(server.requests())
        shown = call(image, running, AGENT, variables["ANTHROPIC_BASE_URL"], variables)
        if trusted:
            assert "STATUS 200" in shown, shown
            (seen,) = server.requests()[before:]
            assert seen["key_sha256"] == hashlib.sha256(KEY.encode()).hexdigest()
        else:
            assert "STATUS 50" in shown, shown  # 502/503: the upstream's certificate was not trusted
            assert server.requests()[before:] == []
    finally:
        running.close()
        client.close()
