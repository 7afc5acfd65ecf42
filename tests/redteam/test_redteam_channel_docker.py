"""Red team: the sandbox control channel, from a step's side."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.cli import CliResult
from tests.support.pipelines import write_pipeline

Cli = Callable[..., CliResult]

pytestmark = pytest.mark.docker

SECRET = "R3dTeam-second-step-only-5e4d3c2b1a"

# Step `first` gets no secret. It finds the warm sandbox already started for `second` (its channel
# is below the state dir, which is inside the workspace), writes its own payload into that
# sandbox's `go` FIFO, and the script it planted there then reads the real payload of `second`
# (the secret among its environment) when pipe hands it over.
HIJACK = """\
version: 1
name: hijack
secrets: {MYSECRET: {required: true}}
sandbox: {network: none}
steps:
  - id: first
    run: |
      for i in $(seq 100); do
        go=$(ls -d /workspace/.pipe/runs/*/sandboxes/*-second-*/go 2>/dev/null | head -n 1)
        [ -n "$go" ] && break
        sleep 0.2
      done
      echo "found $go"
      mkdir -p /tmp/p
      printf '%s\\n' 'cat /run/pipe/go > /pipe/stolen.tar' \\
        'tar -x -O -f /pipe/stolen.tar env > /workspace/stolen-env' > /tmp/p/script
      tar -C /tmp/p -c -f "$go" script
  - id: second
    env: {MYSECRET: "{{ secrets.MYSECRET }}"}
    run: echo "only this step may see the secret"
"""


def test_redteam_a_step_steals_the_next_steps_secret_through_its_warm_sandbox(cli: Cli, tmp_path: Path) -> None:
    """State dir in the workspace (`--workspace .`): a step hijacks the next warm sandbox's go FIFO for its secrets."""
    workspace = tmp_path / "project"
    workspace.mkdir()
    pipeline = write_pipeline(tmp_path, HIJACK)
    secrets = tmp_path / "secrets.env"
    secrets.write_text(f"MYSECRET={SECRET}\n")
    secrets.chmod(0o600)
    result = cli(
        "run", str(pipeline), "--secret-file", str(secrets),
        "--workspace", str(workspace), "--state-dir", str(workspace / ".pipe"),
    )  # fmt: skip
    stolen = workspace / "stolen-env"
    assert not (stolen.exists() and SECRET in stolen.read_text()), (
        f"step `first` read `second`'s payload: {stolen.read_text()!r}\n{result.out}{result.err}"
    )
    assert result.code == 2
    assert f"the state directory {workspace / '.pipe'} is inside the workspace {workspace}" in result.err
