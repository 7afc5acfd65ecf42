"""Child runs in dependency order: a milestone of local-forge issues, parallelism, a failing child
and a resumed parent, and a cycle refused before anything runs."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from runner.store import RunRecord, Store
from tests.support.cli import Cli, CliResult
from tests.support.pipelines import write_pipeline
from tests.support.records import children_by_key, present
from tests.support.trees import bare_origin, git_environment

pytestmark = pytest.mark.docker

# issue -> the issues it is blocked by: two chains (1 -> 2, 3 -> 4) and a diamond (5 -> 6, 7 -> 8)
GRAPH = {1: [], 2: [1], 3: [], 4: [3], 5: [], 6: [5], 7: [5], 8: [6, 7]}

CHILD = """\
version: 1
name: fix-one
inputs: {issue: {type: integer, required: true}}
secrets: {FIX: {required: false}}
sandbox: {network: none}
steps:
  - id: issue
    uses: github/issue
    with: {number: "{{ inputs.issue }}"}
  - id: checkout
    uses: git/checkout
    with: {branch: "fix/issue-{{ inputs.issue }}"}
  - id: work
    env: {FIX: "{{ secrets.get('FIX', '') }}"}
    run: |
      sleep 1
      [ {{ inputs.issue }} != BROKEN ] || test -n "$FIX"
      echo "fixed {{ inputs.issue }}" > issue-{{ inputs.issue }}.txt
  - id: commit
    uses: git/commit
    with: {message: "Fix #{{ inputs.issue }}"}
  - id: push
    uses: git/push
  - id: pr
    uses: github/pull-request
    with: {title: "Fix #{{ inputs.issue }}", body: "Fixes #{{ inputs.issue }}"}
"""

PARENT = """\
version: 1
name: milestone-test
steps:
  - id: issues
    uses: github/issues
    with: {milestone: m1}
  - id: children
    uses: pipeline
    with:
      pipeline: child.yml
      for-each: "{{ steps.issues.outputs.children }}"
      parallelism: 2
"""


def make_forge(root: Path, graph: dict[int, list[int]]) -> Path:

    forge = root / "forge"
    (forge / "issues").mkdir(parents=True)
    work = root / "src"
    work.mkdir()
    (work / "README.md").write_text("# milestone\n")
    bare_origin(work, forge / "repo.git")
    for number, blockers in graph.items():
        (forge / "issues" / f"{number}.md").write_text(
            f"---\nid: {number}\ntitle: Issue {number}\nmilestone: m1\nblocked_by: {blockers}\n---\nDo {number}.\n"
        )
    return forge


def run_parent(
    cli: Cli, tmp_path: Path, broken: int | None = None, fail_fast: bool = True
) -> tuple[CliResult, Store, RunRecord, Path]:
    forge = make_forge(tmp_path, GRAPH)
    write_pipeline(tmp_path, CHILD.replace("BROKEN", str(broken or 0)), "child.yml")
    text = PARENT if fail_fast else PARENT + "      fail-fast: false\n"
    parent = write_pipeline(tmp_path, text, "parent.yml")
    result = cli("run", str(parent), "--forge-dir", str(forge), "--state-dir", str(tmp_path / "state"))
    store = Store(tmp_path / "state")
    return result, store, store.run(next(r.id for r in store.runs() if r.parent_id is None)), forge


def overlap(runs: list[RunRecord]) -> int:
    """The most runs whose [started, finished] intervals overlap at one moment."""
    events = sorted(
        itertools.chain.from_iterable(((r.started_at, 1), (r.finished_at, -1)) for r in runs),
        key=lambda e: (e[0], e[1]),
    )
    current = peak = 0
    for _, change in events:
        current += change
        peak = max(peak, current)
    return peak


def test_a_milestone_runs_in_dependency_order_two_at_a_time(cli: Cli, tmp_path: Path) -> None:
    result, store, parent, _ = run_parent(cli, tmp_path)
    assert result.code == 0, result.out + result.err
    children = {int(run.child_key or 0): run for run in store.children(parent.id)}
    assert sorted(children) == list(GRAPH) and all(run.status == "succeeded" for run in children.values())
    for number, blockers in GRAPH.items():
        for blocker in blockers:
            assert present(children[number].started_at) >= present(children[blocker].finished_at), (number, blocker)
    assert overlap(list(children.values())) <= 2
    assert overlap(list(children.values())) == 2, "independent issues did run side by side"
    records = next((tmp_path / "state" / "forges").glob("*/records.json")).read_text()
    for number in GRAPH:
        assert f'"head": "fix/issue-{number}"' in records
    step = next(s for s in store.steps(parent.id) if s.step_id == "children")
    assert step.outputs["succeeded"] == "8" and "| 8 | succeeded | file://" in step.outputs["markdown"]


def test_a_failed_child_skips_its_dependents_and_resume_runs_only_the_rest(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FIX", raising=False)
    result, store, parent, _ = run_parent(cli, tmp_path, broken=3, fail_fast=False)
    assert result.code == 1
    rows = {
        row["key"]: row
        for row in __import__("json").loads(
            next(s for s in store.steps(parent.id) if s.step_id == "children").outputs["children"]
        )
    }
    assert rows["3"]["status"] == "failed"
    assert (rows["4"]["status"], rows["4"]["reason"]) == ("skipped", "blocked by 3, which failed")
    assert all(rows[str(n)]["status"] == "succeeded" for n in (1, 2, 5, 6, 7, 8))
    first = {key: run.id for key, run in children_by_key(store, parent.id).items()}
    assert sorted(first, key=int) == ["1", "2", "3", "5", "6", "7", "8"]

    monkeypatch.setenv("FIX", "yes")
    resumed = cli("resume", parent.id, "--state-dir", str(tmp_path / "state"))
    assert resumed.code == 0, resumed.out + resumed.err
    after = {run.child_key: run for run in store.children(parent.id)}
    assert after["3"].id == first["3"] and after["3"].status == "succeeded", "the failed child was resumed"
    assert after["4"].status == "succeeded" and "4" not in first
    for key in ("1", "2", "5", "6", "7", "8"):
        assert len([a for a in store.attempts(first[key]) if a.step_id == "work"]) == 1, f"{key} ran again"


def test_by_default_no_child_starts_after_one_failed(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FIX", raising=False)
    result, store, parent, _ = run_parent(cli, tmp_path, broken=3)
    assert result.code == 1
    rows = {
        row["key"]: row
        for row in __import__("json").loads(
            next(s for s in store.steps(parent.id) if s.step_id == "children").outputs["children"]
        )
    }
    assert rows["3"]["status"] == "failed" and len(rows) == len(GRAPH), "every child is listed"
    assert rows["8"]["status"] == "skipped"
    assert any(row["reason"].startswith("not started: ") for row in rows.values()), rows
    assert len(store.children(parent.id)) < len(GRAPH)


def test_a_cycle_is_reported_before_any_child_runs(cli: Cli, tmp_path: Path) -> None:
    forge = make_forge(tmp_path, {1: [2], 2: [3], 3: [1], 4: []})
    write_pipeline(tmp_path, CHILD.replace("BROKEN", "0"), "child.yml")
    parent = write_pipeline(tmp_path, PARENT, "parent.yml")
    result = cli("run", str(parent), "--forge-dir", str(forge), "--state-dir", str(tmp_path / "state"))
    assert result.code == 2  # issue 23: a cycle is an invalid input, refused with exit 2
    assert result.err.strip() == "pipeline: dependency cycle: 1 -> 2 -> 3 -> 1; no child was started"
    store = Store(tmp_path / "state")
    run = store.run("latest")
    step = next(s for s in store.steps(run.id) if s.step_id == "children")
    assert step.error == "pipeline: dependency cycle: 1 -> 2 -> 3 -> 1; no child was started"
    assert store.children(run.id) == []


def test_show_lists_the_children_and_a_hard_rollback_of_the_parent_undoes_them(cli: Cli, tmp_path: Path) -> None:
    import json
    import subprocess

    result, _, parent, forge = run_parent(cli, tmp_path)
    assert result.code == 0, result.out + result.err
    shown = cli("show", parent.id, "--state-dir", str(tmp_path / "state")).out
    assert sum(1 for line in shown.splitlines() if line.startswith("  child ")) == 8
    rollback = cli("rollback", parent.id, "--hard", "--state-dir", str(tmp_path / "state"))
    assert rollback.code == 0, rollback.out + rollback.err
    branches = subprocess.run(
        ["git", f"--git-dir={forge / 'repo.git'}", "branch", "--format=%(refname:short)"],
        capture_output=True,
        text=True,
        check=True,
        env=git_environment(),
    ).stdout.split()
    assert branches == ["main"]
    records = json.loads(next((tmp_path / "state" / "forges").glob("*/records.json")).read_text())
    assert {pull["state"] for pull in records["pulls"].values()} == {"closed"} and len(records["pulls"]) == 8
