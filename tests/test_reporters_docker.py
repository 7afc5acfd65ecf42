"""Issue 16, item 4: a forge API that accepts connections and never answers costs a run at most a few
seconds after its last step (progress writes go through the outbox, off the step's path)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.store import Store
from tests.support.github import TOKEN
from tests.support.pipelines import write_pipeline

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def blackhole() -> Iterator[str]:
    """An HTTP address that accepts every connection and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    server.close()


@pytest.mark.docker
def test_a_blackholed_forge_api_costs_seconds_not_minutes_after_the_last_step(tmp_path: Path, blackhole: str) -> None:
    pipeline = write_pipeline(
        tmp_path,
        """
        version: 1
        name: progress
        inputs:
          issue: {type: integer, required: true}
        sandbox: {network: none, timeout: 1m}
        report:
          issue-comment: {issue: "{{ inputs.issue }}", interval: 1s}
        steps:
          - id: first
            run: echo one
          - id: second
            run: sleep 2; echo two
        """,
    )
    state = tmp_path / "state"
    environment = {**os.environ, "GITHUB_TOKEN": TOKEN, "PYTHONPATH": str(REPO)}
    environment.pop("GITHUB_ACTIONS", None)
    process = subprocess.run(
        [sys.executable, "-m", "runner", "run", str(pipeline), "-i", "issue=3", "--forge", "github",
         "--repo", "o/r", "--api-url", blackhole, "--state-dir", str(state)],
        capture_output=True, text=True, check=False, env=environment, timeout=600,
    )  # fmt: skip
    exited = time.time()
    assert process.returncode == 0, process.stdout + process.stderr
    store = Store(state)
    try:
        run = store.runs()[0]
        last_step_end = max(s.finished_at or 0.0 for s in store.steps(run.id))
    finally:
        store.close()
    assert run.status == "succeeded"
    after_last_step = exited - last_step_end
    assert after_last_step < 10.0, f"exited {after_last_step:.1f}s after its last step"  # expected: about 3 s
    warnings = [line for line in process.stderr.splitlines() if line.startswith("pipe: warning:")]
    assert len(warnings) == 1, process.stderr
    assert "progress comment on issue #3" in warnings[0]
    print(f"exited {after_last_step:.2f}s after the last step")
