"""Child runs and decisions you can trust (the shipped milestone.yml and spec.yml on a local forge):
a parent whose child failed fails, listing every child; `pipe resume PARENT` after fixing an issue
re-reads it and finishes only what is left; a dependency cycle exits 2 with nothing started; an
approval applies exactly what was shown while waiting, nothing before the wait point running again."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from runner.forges.local import LocalForge
from runner.resources import data_path
from runner.store import Store
from tests.support.agents import agent_image
from tests.support.cli import Cli, CliResult
from tests.support.records import children_by_key
from tests.support.trees import bare_origin

pytestmark = pytest.mark.docker


def issue(number: int, blocked_by: list[int], name: str, *, applies: bool = True) -> str:
    """A local-forge issue proposing a patch pipe-patch-agent applies (or, `applies=False`, one
    whose context is not in the repository, so the patch does not apply)."""
    if applies:
        patch = f"--- /dev/null\n+++ b/{name}.py\n@@ -0,0 +1 @@\n+VALUE = {number}\n"
    else:
        patch = f"--- a/{name}.py\n+++ b/{name}.py\n@@ -1 +1 @@\n-VALUE = 0\n+VALUE = {number}\n"
    return (
        f"---\nid: {number}\ntitle: Add {name}\nmilestone: m1\nblocked_by: {blocked_by}\n---\n"
        f"Add {name}.py.\n\n```diff\n{patch}```\n"
    )


def make_forge(root: Path, issues: dict[int, str]) -> Path:
    work, forge = root / "src", root / "forge"
    (work / "tests").mkdir(parents=True)
    (work / "pyproject.toml").write_text(
        "[project]\nname = 'm'\nversion = '0'\n[tool.pytest.ini_options]\npythonpath = ['.']\n"
    )
    (work / "tests" / "test_ok.py").write_text("def test_ok():\n    assert True\n")
    bare_origin(work, forge / "repo.git")
    (forge / "issues").mkdir()
    for number, text in issues.items():
        (forge / "issues" / f"{number}.md").write_text(text)
    return forge


def milestone(cli: Cli, forge: Path, state: Path) -> CliResult:
    return cli(
        "run",
        str(data_path("pipelines") / "milestone.yml"),
        "-i",
        "milestone=m1",
        "-i",
        "tracking-issue=9",
        "--forge-dir",
        str(forge),
        "--sandbox-image",
        agent_image(),
        "--state-dir",
        str(state),
    )


def pulls(state: Path) -> list[str]:
    records = json.loads(next((state / "forges").glob("*/records.json")).read_text())
    return sorted(pull["head"] for pull in records["pulls"].values())


def summary(state: Path) -> str:
    records = json.loads(next((state / "forges").glob("*/records.json")).read_text())
    (body,) = [c["body"] for c in records["comments"] if c["issue"] == 9]
    return str(body)


def test_a_failed_child_fails_the_parent_and_resume_rereads_the_fixed_issue(cli: Cli, tmp_path: Path) -> None:
    forge = make_forge(
        tmp_path,
        {
            1: issue(1, [], "alpha"),
            2: issue(2, [1], "beta"),
            3: issue(3, [], "gamma", applies=False),
            4: issue(4, [3], "delta"),
            9: "---\nid: 9\ntitle: Tracking m1\n---\nThe summary goes here.\n",
        },
    )
    state = tmp_path / "state"
    first = milestone(cli, forge, state)
    assert first.code == 1, "a parent whose child failed must fail\n" + first.out + first.err
    store = Store(state)
    parent = next(run for run in store.runs() if run.parent_id is None)
    assert parent.status == "failed"
    table = summary(state)
    assert "| 1 | succeeded | file://" in table and "| 2 | succeeded | file://" in table
    assert "| 3 | failed |" in table and "| 4 | skipped (blocked by 3, which failed) |" in table
    assert "2 succeeded, 1 failed, 1 skipped." in table
    assert pulls(state) == ["fix/issue-1", "fix/issue-2"]
    before = children_by_key(store, parent.id)
    assert sorted(before) == ["1", "2", "3"]
    implemented = {
        key: len([a for a in store.attempts(run.id) if a.step_id == "implement"]) for key, run in before.items()
    }

    (forge / "issues" / "3.md").write_text(issue(3, [], "gamma"))
    resumed = cli("resume", parent.id, "--state-dir", str(state))
    assert resumed.code == 0, resumed.out + resumed.err
    assert store.run(parent.id).status == "succeeded"
    after = children_by_key(store, parent.id)
    assert sorted(after) == ["1", "2", "3", "4"] and all(run.status == "succeeded" for run in after.values())
    assert pulls(state) == ["fix/issue-1", "fix/issue-2", "fix/issue-3", "fix/issue-4"]
    for key in ("1", "2"):
        assert after[key].id == before[key].id
        assert len([a for a in store.attempts(after[key].id) if a.step_id == "implement"]) == implemented[key], key
    assert after["3"].id == before["3"].id, "the failed child was resumed, not replaced"
    changed = [e.data for e in store.events(after["3"].id) if e.kind == "inputs_changed"]
    assert changed and changed[-1]["steps"] == {"issue": ["body"]}, "the resumed child says its issue changed"
    table = summary(state)
    assert "| 3 | succeeded (resumed; read again: issue (body)) | file://" in table, table
    assert "4 succeeded, 0 failed, 0 skipped." in table


def test_a_dependency_cycle_exits_2_with_no_child_started(cli: Cli, tmp_path: Path) -> None:
    forge = make_forge(tmp_path, {1: issue(1, [2], "alpha"), 2: issue(2, [1], "beta"), 3: issue(3, [], "gamma")})
    state = tmp_path / "state"
    result = milestone(cli, forge, state)
    assert result.code == 2, result.out + result.err
    assert "pipeline: dependency cycle: 1 -> 2 -> 1; no child was started" in result.err
    store = Store(state)
    parent = next(run for run in store.runs() if run.parent_id is None)
    assert parent.status == "failed" and store.children(parent.id) == []
    assert not (state / "forges").exists() or pulls(state) == []


REQUIREMENTS = {
    "summary": "Export notes",
    "stories": [
        {
            "id": "s1",
            "story": "As a writer, I want to export my notes, so that I keep them",
            "acceptance": ["WHEN the writer exports THE SYSTEM SHALL write one file per note"],
        }
    ],
}
DESIGN = {"summary": "A data model and an exporter", "components": [{"name": "export", "responsibility": "write"}]}
TASKS = {
    "tasks": [
        {"id": "t1", "title": "Data model for export @NONCE", "description": "The model."},
        {"id": "t2", "title": "Exporter @NONCE", "description": "Write files.", "blocked_by": ["t1"]},
    ]
}
# An agent that never answers twice the same: NONCE becomes a fresh random number in every prompt.
FICKLE = 'sh -c \'sed "s/NONCE/$(od -An -N6 -tu8 /dev/urandom | tr -dc 0-9)/g" "$0" | fake-agent\''


def phase(name: str, result: dict[str, Any]) -> str:
    return f"WRITE {name}.md\n```\n# {name}\n```\nRESULT\n```json\n{json.dumps(result)}\n```"


def test_an_approval_applies_what_was_shown_and_runs_nothing_before_the_wait_point_again(
    cli: Cli, tmp_path: Path
) -> None:
    work, forge = tmp_path / "src", tmp_path / "forge"
    work.mkdir()
    (work / "README.md").write_text("# notes\n")
    bare_origin(work, forge / "repo.git")
    state = ["--state-dir", str(tmp_path / "state")]
    first = cli(
        "run",
        str(data_path("pipelines") / "spec.yml"),
        "-i",
        "idea=Export my notes",
        "-i",
        "slug=export",
        "-i",
        f"agent={FICKLE}",
        "-i",
        f"requirements-instructions={phase('requirements', REQUIREMENTS)}",
        "-i",
        f"design-instructions={phase('design', DESIGN)}",
        "-i",
        f"tasks-instructions={phase('tasks', TASKS)}",
        "--forge-dir",
        str(forge),
        "--sandbox-image",
        agent_image(),
        *state,
    )
    assert first.code == 3, first.out + first.err
    store = Store(tmp_path / "state")
    run = store.run("latest")
    (tasks,) = [s for s in store.steps(run.id) if s.step_id == "tasks"]
    shown = [task["title"] for task in json.loads(tasks.outputs["tasks"])]
    assert len(shown) == 2 and "NONCE" not in shown[0] and shown[0].startswith("Data model for export @")
    waiting = cli("show", run.id, *state).out
    assert all(title in waiting for title in shown), "pipe show shows the tasks while waiting"
    (prompt,) = (tmp_path / "state" / "runs" / run.id / "logs").glob("approval.1.*.log")
    assert all(title in prompt.read_text() for title in shown), "the wait point's prompt lists the tasks"

    approved = cli("approve", run.id, *state)
    assert approved.code == 0, approved.out + approved.err
    created = sorted(issue.title for issue in LocalForge(forge, tmp_path / "state").issues())
    assert created == sorted(shown), "the issues are the tasks that were approved"
    attempts = [a.step_id for a in store.attempts(run.id)]
    for step in ("checkout", "requirements", "design", "tasks", "commit", "push"):
        assert attempts.count(step) == 1, f"{step} ran {attempts.count(step)} times"
