"""Issue 17: any exception an action raises ends its attempt as a failure with a one-line error and
its traceback saved beside the attempt's log; the attempt row is closed, never left `running`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest

from runner.actions import registry
from runner.actions.action import Action
from runner.actions.base import ActionContext, ActionResult
from runner.actions.verify import VerifyArgs
from runner.names import AttemptStatus, Outcome, RunStatus
from runner.store import Store
from tests.support.cli import Cli
from tests.support.pipelines import write_pipeline

pytestmark = pytest.mark.docker

PIPELINE = """\
version: 1
name: raising
steps:
  - id: before
    run: echo "ran=yes" >> "$PIPE_OUTPUT"
  - id: boom
    uses: verify
    with:
      checks: [{run: "true"}]
  - id: after
    run: echo "never"
"""


def _raise(ctx: ActionContext, args: VerifyArgs) -> ActionResult:
    raise ValueError("the value is wrong\nand this second line is not shown")


def test_an_action_raising_value_error_fails_its_attempt_with_one_line(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    actions = cast(dict[str, Action[Any]], registry.ACTIONS)
    monkeypatch.setitem(actions, "verify", Action("verify", _raise, VerifyArgs))
    path = write_pipeline(tmp_path, PIPELINE)
    result = cli("run", str(path), "--state-dir", str(tmp_path / "state"))
    assert result.code == 1, result.out + result.err
    store = Store(tmp_path / "state")
    record = store.run("latest")
    assert record.status == RunStatus.FAILED
    attempts = [a for a in store.attempts(record.id) if a.step_id == "boom"]
    assert [a.status for a in attempts] == [AttemptStatus.FAILED]
    assert attempts[0].finished_at is not None
    assert all(a.status != AttemptStatus.RUNNING for a in store.attempts(record.id))
    steps = {s.step_id: s for s in store.steps(record.id)}
    assert steps["boom"].error is not None
    error = steps["boom"].error
    assert "\n" not in error
    assert error.startswith("ValueError: the value is wrong (traceback in ")
    traceback = Path(error.rsplit("(traceback in ", 1)[1].rstrip(")"))
    assert traceback.parent == Path(attempts[0].log_path or "").parent
    assert "Traceback (most recent call last)" in traceback.read_text()
    assert "and this second line is not shown" in traceback.read_text()
    assert steps["after"].outcome == Outcome.SKIPPED  # the run stopped at the failure
    shown = [line for line in (result.out + result.err).splitlines() if "ValueError" in line]
    assert shown and all("the value is wrong" in line for line in shown)
