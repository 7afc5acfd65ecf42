"""Issue 16, item 6: rolling back an older run checks each external effect against the forge's
current state, and stops instead of undoing what a later run of the same issue rewrote."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.actions import ActionContext, RunState
from runner.actions.github import comment
from runner.changes.rollback import RollbackConflict
from runner.forges.local import LocalForge
from runner.store import ChangeRecord
from tests.test_pr_changes import Recorded, _forge, _open, no_sandbox

AT = 1_800_000_000.0  # when the store says the later run wrote


def _change(record: Recorded) -> ChangeRecord:
    kind, target, data = record
    return ChangeRecord(1, "pr", 0, 1, kind, target, data, AT - 60, None)


def _comment(forge: LocalForge, tmp_path: Path, run_id: str, body: str, records: list[Recorded]) -> None:
    context = ActionContext(
        run_id=run_id,
        pipeline="issue-to-pr",
        step_id="announce",
        args={"issue": 1, "body": body},
        inputs={},
        workspace=tmp_path,
        state=RunState(),
        publish=True,
        forge=forge,
        log=lambda text: None,
        run_in_sandbox=no_sandbox,
        record=lambda kind, target, data: records.append((kind, target, dict(data))),
    )
    assert comment(context).error is None


def _issue(forge: LocalForge) -> None:
    (forge.directory / "issues" / "1.md").write_text("---\ntitle: add subtracts\n---\nadd(1, 2) is -1\n")


def test_rollback_of_an_older_run_stops_at_the_pr_a_later_run_rewrote(tmp_path: Path) -> None:
    from runner.actions.undo import Origin, undo_pr_create

    forge = _forge(tmp_path)
    first: list[Recorded] = []
    pull = _open(forge, tmp_path, "- `calc.py`: first try\n", run_id="R1", records=first)
    _open(forge, tmp_path, "- `calc.py`: second try\n", run_id="R2")
    origin = Origin("R1", lambda run, target: AT if (run, target) == ("R2", f"#{pull.number}") else None)
    with pytest.raises(RollbackConflict) as stopped:
        undo_pr_create(_change(first[0]), forge, origin)
    assert str(stopped.value).startswith(f"rollback stopped at #{pull.number}: the PR body was changed by run R2 at ")
    assert forge.pull_request(pull.number).state == "open"


def test_rollback_of_an_older_run_keeps_the_comment_a_later_run_rewrote(tmp_path: Path) -> None:
    from runner.actions.undo import Origin, undo_comment_create

    forge = _forge(tmp_path)
    _issue(forge)
    first: list[Recorded] = []
    _comment(forge, tmp_path, "R1", "Opened the pull request.", first)
    _comment(forge, tmp_path, "R2", "Updated the pull request.", [])
    (created,) = first
    with pytest.raises(RollbackConflict, match=r"the comment \d+ was changed by run R2"):
        undo_comment_create(_change(created), forge, Origin("R1"))
    assert [c.id for c in forge.comments(1)] == [created[2]["comment_id"]]


def test_rollback_of_the_latest_run_still_undoes_its_own_work(tmp_path: Path) -> None:
    from runner.actions.undo import Origin, undo_comment_create, undo_pr_create

    forge = _forge(tmp_path)
    _issue(forge)
    made: list[Recorded] = []
    pull = _open(forge, tmp_path, "- `calc.py`: fix\n", run_id="R1", records=made)
    _comment(forge, tmp_path, "R1", "Opened it.", made)
    undo_comment_create(_change(made[1]), forge, Origin("R1"))
    undo_pr_create(_change(made[0]), forge, Origin("R1"))
    assert forge.comments(1) == []
    assert forge.pull_request(pull.number).state == "closed"
