"""pipelines/milestone.yml end to end on a local forge: issues in dependency order, each through
issue-to-pr with a review, and the summary table on the tracking issue."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.resources import data_path
from runner.store import Store
from tests.support.agents import agent_image
from tests.support.cli import Cli
from tests.support.records import children_by_key, present
from tests.support.trees import bare_origin

pytestmark = pytest.mark.docker


def issue(number: int, blocked_by: list[int], name: str) -> str:
    patch = f"--- /dev/null\n+++ b/{name}.py\n@@ -0,0 +1 @@\n+VALUE = {number}\n"
    return (
        f"---\nid: {number}\ntitle: Add {name}\nmilestone: m1\nblocked_by: {blocked_by}\n---\n"
        f"Add {name}.py.\n\n```diff\n{patch}```\n"
    )


def test_milestone_runs_each_issue_through_issue_to_pr_and_posts_a_summary(cli: Cli, tmp_path: Path) -> None:
    work, forge = tmp_path / "src", tmp_path / "forge"
    (work / "tests").mkdir(parents=True)
    (work / "pyproject.toml").write_text(
        "[project]\nname = 'm'\nversion = '0'\n[tool.pytest.ini_options]\npythonpath = ['.']\n"
    )
    (work / "tests" / "test_ok.py").write_text("def test_ok():\n    assert True\n")
    bare_origin(work, forge / "repo.git")
    (forge / "issues").mkdir()
    for number, blockers, name in ((1, [], "alpha"), (2, [1], "beta"), (3, [], "gamma")):
        (forge / "issues" / f"{number}.md").write_text(issue(number, blockers, name))
    (forge / "issues" / "4.md").write_text("---\nid: 4\ntitle: Tracking m1\n---\nThe milestone's summary goes here.\n")
    verdict = {"status": "pass", "summary": "Looks right.", "issues": []}
    review = f"RESULT\n```json\n{json.dumps(verdict)}\n```"
    state = tmp_path / "state"
    result = cli(
        "run",
        str(data_path("pipelines") / "milestone.yml"),
        "-i",
        "milestone=m1",
        "-i",
        "tracking-issue=4",
        "-i",
        "review-agent=fake-agent",
        "-i",
        f"review-instructions={review}",
        "--forge-dir",
        str(forge),
        "--sandbox-image",
        agent_image(),
        "--state-dir",
        str(state),
    )
    assert result.code == 0, result.out + result.err
    store = Store(state)
    parent = next(run for run in store.runs() if run.parent_id is None)
    children = children_by_key(store, parent.id)
    assert sorted(children) == ["1", "2", "3"] and all(run.status == "succeeded" for run in children.values())
    assert present(children["2"].started_at) >= present(children["1"].finished_at)
    records = json.loads(next((state / "forges").glob("*/records.json")).read_text())
    assert sorted(pull["head"] for pull in records["pulls"].values()) == ["fix/issue-1", "fix/issue-2", "fix/issue-3"]
    (summary,) = [c["body"] for c in records["comments"] if c["issue"] == 4]
    assert summary.startswith("## Milestone m1\n\n| item | status | pull request | verification | review |")
    for number in (1, 2, 3):
        assert f"| {number} | succeeded | file://" in summary
    assert summary.count("✅ Tests: 1 passed, 0 failed | pass |") == 3
    assert "3 succeeded, 0 failed, 0 skipped." in summary
