"""Issue 16, item 8: the pull request's Changes section comes from the branch's diff against its base,
enriched by the agent's descriptions; a second run where the agent listed nothing new keeps them."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from runner.actions import ActionContext, RunState, SandboxRun
from runner.actions.github import pull_request
from runner.forges.base import PullRequest
from runner.forges.local import LocalForge
from tests.support.trees import bare_origin, git_environment

# What an action recorded through `ctx.record`: (type, target, data).
Recorded = tuple[str, str, dict[str, Any]]


def no_sandbox(*args: object, **kwargs: object) -> SandboxRun:
    """`ctx.run_in_sandbox` for actions that must not run one."""
    raise AssertionError("the action ran a sandbox")


BODY = "Fixes #1\n\n## Summary\n\nFixed it.\n\n## Changes\n\n{changes}\n## Verification\n\nall passed\n"


def _forge(tmp_path: Path) -> LocalForge:
    work = tmp_path / "work"
    work.mkdir()
    (work / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    (work / "README.md").write_text("# demo\n")
    forge_dir = tmp_path / "forge"
    forge_dir.mkdir()
    (forge_dir / "issues").mkdir()
    bare_origin(work, forge_dir / "repo.git")
    environment = git_environment()
    (work / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    (work / "test_calc.py").write_text("from calc import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n")
    for argv in (["git", "checkout", "-qb", "fix/issue-1"], ["git", "add", "-A"], ["git", "commit", "-qm", "fix"],
                 ["git", "push", "-q", str(forge_dir / "repo.git"), "fix/issue-1"]):  # fmt: skip
        subprocess.run(argv, cwd=work, check=True, env=environment)
    return LocalForge(forge_dir, tmp_path / "state")


def _open(
    forge: LocalForge, tmp_path: Path, changes: str, run_id: str = "r1", records: list[Recorded] | None = None
) -> PullRequest:
    records = [] if records is None else records
    context = ActionContext(
        run_id=run_id,
        pipeline="issue-to-pr",
        step_id="pr",
        args={"title": "Fix #1", "body": BODY.format(changes=changes), "draft": True},
        inputs={},
        workspace=tmp_path,
        state=RunState(branch="fix/issue-1", base="main"),
        publish=True,
        forge=forge,
        log=lambda text: None,
        run_in_sandbox=no_sandbox,
        record=lambda kind, target, data: records.append((kind, target, dict(data))),
    )
    result = pull_request(context)
    assert result.error is None
    return forge.pull_request(int(result.outputs["number"]))


def test_changes_list_the_diff_with_the_agents_descriptions(tmp_path: Path) -> None:
    forge = _forge(tmp_path)
    pull = _open(forge, tmp_path, "- `calc.py`: add adds instead of subtracting\n")
    assert "- `calc.py`: add adds instead of subtracting (modified, +1 -1)" in pull.body
    assert "- `test_calc.py`: modified, +5 -0" in pull.body  # the agent did not mention it: the diff does
    assert "## Verification\n\nall passed" in pull.body


def test_a_second_run_with_nothing_new_keeps_the_changes(tmp_path: Path) -> None:
    forge = _forge(tmp_path)
    _open(forge, tmp_path, "- `calc.py`: add adds instead of subtracting\n")
    pull = _open(forge, tmp_path, "- (the agent listed none)\n")
    assert "(the agent listed none)" not in pull.body
    assert "- `calc.py`: add adds instead of subtracting (modified, +1 -1)" in pull.body
    assert "- `test_calc.py`: modified, +5 -0" in pull.body
