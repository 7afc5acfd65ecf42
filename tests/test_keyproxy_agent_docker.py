"""Issue 14, item 3: a named agent run whose model key never enters the sandbox. The real Claude
Code CLI (from the real-agent test image, without the wrapper that starts a model inside the
sandbox) runs an `agent` step with `egress: none`; the fake model server runs in its own container
on a test network, reachable only by the run's proxy. The key, given to pipe as the pipeline's
secret ANTHROPIC_API_KEY with ANTHROPIC_BASE_URL naming the fake server, lives only in the key
proxy's configuration file: the model sees the real key, while `docker inspect` of the sandbox and
of the proxy, every `/proc/*/environ` inside the sandbox, the workspace and the store (database,
objects, logs) hold no byte of it."""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from runner.egress.keys import PLACEHOLDER
from runner.store import Store
from tests.support.agents import real_agent_image
from tests.support.cli import Cli
from tests.support.model_server import ModelServer, model_server
from tests.support.pipelines import write_pipeline

pytestmark = pytest.mark.docker

SCRIPT = {
    "file": "calc.py",
    "old": "    return a - b",
    "new": "    return a + b",
    "summary": "add() now adds.",
    "bash": "cat /proc/[0-9]*/environ > environ.dump 2>/dev/null; env > env.dump; true",
}
PIPELINE = """\
version: 1
name: keys-stay-outside
secrets:
  ANTHROPIC_API_KEY: {required: true, description: The model key; only the key proxy holds it.}
steps:
  - id: implement
    uses: agent
    credentials: []
    sandbox: {egress: none}
    with:
      command: claude
      prompt: |
        add(2, 3) gives -1 in calc.py; make it give 5.
        FAKE-MODEL %s
"""


@cache
def direct_claude_image() -> str:
    """The real-agent test image with `claude` being the real CLI (no wrapper starting a model
    inside the sandbox), so it calls the base URL pipe gives it."""
    import io

    import docker

    from runner.agents import image

    base = real_agent_image()
    text = f"FROM {base}\nUSER root\nRUN ln -sf /opt/agents/bin/claude /usr/local/bin/claude\nUSER pipe\n"
    tag = "pipe-test-direct-claude:" + hashlib.sha256(text.encode()).hexdigest()[:12]
    client = docker.from_env()
    try:
        try:
            client.images.get(tag)
        except docker.errors.ImageNotFound:
            context = io.BytesIO(image.context(text, b""))
            client.images.build(fileobj=context, custom_context=True, tag=tag, rm=True)
    finally:
        client.close()
    return tag


class Inspections:
    """`docker inspect` of every pipe container that exists while the run goes, polled."""

    def __init__(self) -> None:
        import docker

        self.seen: dict[str, dict[str, Any]] = {}
        self._client = docker.from_env()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        import docker

        while not self._stop.is_set():
            try:
                for container in self._client.containers.list(filters={"label": "pipe.managed=1"}):
                    self.seen[str(container.id)] = self._client.api.inspect_container(str(container.id))
            except docker.errors.APIError:
                pass  # a container went away between the list and the inspect
            self._stop.wait(0.1)

    def stop(self) -> dict[str, dict[str, Any]]:
        self._stop.set()
        self._thread.join()
        self._client.close()
        return self.seen


@pytest.fixture(scope="module")
def server() -> Iterator[ModelServer]:
    from sandbox.docker import DockerBackend

    backend = DockerBackend()
    try:
        image = backend.ensure_image("pipe-sandbox", lambda _: None)
    finally:
        backend.close()
    with model_server(image) as running:
        yield running


def test_a_named_agent_works_with_its_key_only_in_the_key_proxy(
    cli: Cli, tmp_path: Path, server: ModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "sk-ant-outside-" + uuid.uuid4().hex
    monkeypatch.setenv("ANTHROPIC_API_KEY", key)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
    monkeypatch.setenv("PIPE_EGRESS_NETWORK", server.network)
    workspace, state = tmp_path / "ws", tmp_path / "state"
    workspace.mkdir()
    (workspace / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    path = write_pipeline(tmp_path / "p", PIPELINE % json.dumps(SCRIPT))
    image = direct_claude_image()
    watching = Inspections()
    try:
        result = cli(
            "run", str(path), "--state-dir", str(state), "--workspace", str(workspace), "--sandbox-image", image
        )  # fmt: skip
    finally:
        inspected = watching.stop()
    assert result.code == 0, result.out + result.err
    assert (workspace / "calc.py").read_text() == "def add(a, b):\n    return a + b\n"

    # the model was called, always with the real key (added by the proxy), never the placeholder
    asked = [entry for entry in server.requests() if "FAKE-MODEL" in entry.get("text", "")]
    assert asked, server.requests()
    assert {entry["key_sha256"] for entry in asked} == {hashlib.sha256(key.encode()).hexdigest()}

    # inside the sandbox: the placeholder and the proxy's address, in every process's environment
    environ = (workspace / "environ.dump").read_bytes()
    assert PLACEHOLDER.encode() in environ and b"ANTHROPIC_BASE_URL=http://" in environ
    assert key.encode() not in environ and key.encode() not in (workspace / "env.dump").read_bytes()

    # docker inspect of the run's containers: the sandbox(es) and the proxy
    record = Store(state).run("latest")
    ours = {cid: data for cid, data in inspected.items() if data["Config"]["Labels"].get("pipe.run") == record.id}
    kinds = {"proxy" if data["Config"]["Labels"].get("pipe.egress") == "1" else "sandbox" for data in ours.values()}
    assert kinds == {"proxy", "sandbox"}, inspected.keys()
    for data in ours.values():
        assert key not in json.dumps(data)

    # the workspace and the store: no file holds the key
    for root in (workspace, state):
        for found in root.rglob("*"):
            if found.is_file() and not found.is_symlink():
                assert key.encode() not in found.read_bytes(), found
    shown = cli("show", record.id, "--state-dir", str(state))
    assert key not in shown.out + shown.err + result.out + result.err
