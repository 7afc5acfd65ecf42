"""An agent step never holds the GitHub token unless it says so (DESIGN.md principle 12): the
pipeline's `credentials: [github]` does not reach it by inheritance, and `pipe validate` says so."""

from __future__ import annotations

from pathlib import Path

from tests.support.cli import Cli
from tests.support.pipelines import write_pipeline

PIPELINE = """\
version: 1
name: agents
credentials: [github]
steps:
  - id: inherits
    uses: agent
    with: {command: claude, prompt: "fix it"}
  - id: asks
    uses: agent
    credentials: [github]
    with: {command: claude, prompt: "fix it"}
  - id: knowingly
    uses: agent
    credentials: [github]
    with: {command: claude, prompt: "fix it", unsafe-github-token: true}
  - id: without
    uses: agent
    credentials: []
    with: {command: claude, prompt: "fix it"}
  - id: group
    repeat:
      max: 2
      steps:
        - id: nested
          uses: agent
          with: {command: claude, prompt: "again"}
"""


def test_agent_steps_that_would_hold_the_token_are_refused(cli: Cli, tmp_path: Path) -> None:
    path = write_pipeline(tmp_path, PIPELINE)
    result = cli("validate", str(path))
    assert result.code == 2
    message = (
        "an agent step does not get the GitHub token: give it `credentials: []` "
        "(or, knowing the risk, `with: {unsafe-github-token: true}`)"
    )
    assert result.err.splitlines() == [
        f"{path}:6:11: steps[0].uses: {message}",
        f"{path}:10:18: steps[1].credentials: {message}",
        f"{path}:25:17: steps[4].repeat.steps[0].uses: {message}",
    ]
