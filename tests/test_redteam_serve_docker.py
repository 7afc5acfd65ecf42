"""Red team (Docker): pr-feedback's promise "do not touch .github/workflows" is enforced only on the
agent step (its `protect` globs). The verify step that follows runs code the agent wrote (its tests,
its scripts) in the same workspace; verify's tidy() removes only paths that did not exist before,
so an EXISTING workflow file modified by that code survives, and git/commit (`git add -A`) and
git/push carry it to the pull request's branch. A review comment that talks the agent into adding
a "test" is enough; with a GitHub App token (pushes run workflows) that is code execution with the
repository's secrets. The test states the safe behaviour: nothing under .github/workflows reaches
the pushed branch (or the run fails)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.cli import Cli
from tests.support.pipelines import write_pipeline
from tests.support.trees import git_environment

pytestmark = pytest.mark.docker

CI = "on: push\njobs: {}\n"

FLOW = """\
version: 1
name: sneak-through-verify
sandbox: {network: none}
steps:
  - id: checkout
    uses: git/checkout
    with: {branch: fix/one}
  - id: agent
    uses: agent
    with:
      prompt: go
      command: |-
        printf 'def test_add():\\n    assert True\\n' > test_calc.py
        printf '#!/bin/sh\\necho "on: push  # changed by a test" > .github/workflows/ci.yml\\n' > check.sh
        true
  - id: verify
    uses: verify
    continue-on-error: true
    with:
      mode: continue-on-error
      checks: [{run: "sh check.sh", kind: tests}]
  - id: commit
    uses: git/commit
    with: {message: change}
  - id: push
    uses: git/push
"""


def _forge(tmp_path: Path) -> Path:
    source = tmp_path / "src"
    (source / ".github" / "workflows").mkdir(parents=True)
    (source / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    (source / ".github" / "workflows" / "ci.yml").write_text(CI)
    environment = git_environment()
    for argv in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"], ["git", "commit", "-qm", "initial"]):
        subprocess.run(argv, cwd=source, check=True, env=environment)
    forge = tmp_path / "forge"
    (forge / "issues").mkdir(parents=True)
    subprocess.run(["git", "clone", "-q", "--bare", str(source), str(forge / "repo.git")], check=True, env=environment)
    return forge


def test_code_the_agent_wrote_cannot_change_a_workflow_through_verify(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    forge = _forge(tmp_path)
    path = write_pipeline(tmp_path, FLOW)
    result = cli("run", str(path), "--forge-dir", str(forge), "--state-dir", str(tmp_path / "state"))
    shown = subprocess.run(
        ["git", f"--git-dir={forge / 'repo.git'}", "show", "fix/one:.github/workflows/ci.yml"],
        capture_output=True,
        text=True,
        env=git_environment(),
        check=False,
    )
    pushed = shown.stdout if shown.returncode == 0 else None
    assert pushed in (None, CI), f"run exit {result.code}; the pushed branch's workflow is now: {pushed!r}"
