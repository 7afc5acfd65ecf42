"""Rollback planning (runner.changes.rollback.plan_rollback): which recorded changes a `hard`,
`steps` N, `to` STEP or `soft` rollback undoes, newest first. Runs are written straight into a
temporary store (steps, their change marks and changes as the engine records them); nothing runs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runner.changes.rollback import describe_change, failed_step, format_plan, plan_rollback
from runner.errors import UsageError
from runner.names import Outcome
from runner.store import StepRecord, Store

pytestmark = pytest.mark.usefixtures("store_backend")  # each test on SQLite, then PostgreSQL

Change = tuple[str, str, dict[str, Any]]  # (type, target, data)


def _file(path: str, before_size: int | None = None) -> Change:
    """A workspace file change: created when `before_size` is None, else modified."""
    after = {"kind": "file", "mode": 0o644, "size": 3, "sha256": "a" * 64}
    if before_size is None:
        return ("file_create", path, {"path": path, "before": None, "after": after})
    before = {"kind": "file", "mode": 0o644, "size": before_size, "sha256": "b" * 64}
    return ("file_modify", path, {"path": path, "before": before, "after": after})


def _ref(ref: str, old: str | None, new: str) -> Change:
    return ("ref_update", ref, {"path": f".git/{ref}", "ref": ref, "from": old, "to": new})


def _push(branch: str) -> Change:
    return ("push", branch, {"branch": branch, "forge": {"kind": "local"}})


class RunWriter:
    """Writes one run's steps and changes into a store, with the marks the engine keeps: a step's
    `start_mark` is the last change id before it, its `end_mark` the last one when it finished."""

    def __init__(self, store: Store) -> None:
        self.store = store
        pipeline = store.add_pipeline("t", "t.yml", "digest", "version: 1")
        self.run_id = store.create_run(pipeline, {})
        self.position = 0

    def step(
        self,
        step_id: str,
        *changes: Change,
        outcome: Outcome = Outcome.SUCCESS,
        conclusion: Outcome | None = None,
        iteration: int = 0,
    ) -> StepRecord:
        """A finished step that recorded `changes`; `conclusion` defaults to `outcome`."""
        start = self.store.last_change_id(self.run_id)
        self._save(step_id, iteration, changes)
        now = time.time()
        record = StepRecord(
            step_id,
            iteration,
            self.position,
            outcome,
            conclusion or outcome,
            1,
            now,
            now,
            {},
            None,
            start,
            self.store.last_change_id(self.run_id),
        )
        self.store.record_step(self.run_id, record)
        self.position += 1
        return record

    def interrupted(self, step_id: str, *changes: Change, iteration: int = 0) -> None:
        """An attempt that started and recorded `changes` but never finished (the runner died)."""
        self.store.start_attempt(self.run_id, step_id, iteration, 1, Path("/nonexistent.log"), time.time())
        self._save(step_id, iteration, changes)

    def _save(self, step_id: str, iteration: int, changes: tuple[Change, ...]) -> None:
        rows = [(step_id, iteration, 1, kind, target, data) for kind, target, data in changes]
        self.store.save_changes(self.run_id, rows, [], [])

    def ids(self, *targets: str) -> list[int]:
        """The ids of the pending changes to `targets`, in the order the targets are given."""
        by_target = {c.target: c.id for c in self.store.changes(self.run_id, pending_only=True)}
        return [by_target[target] for target in targets]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(tmp_path / "state")
    yield opened
    opened.close()


@pytest.fixture
def run(store: Store) -> RunWriter:
    """setup (a.txt), build (b.txt, a ref), publish (a push), then test failed (c.txt, d.txt)."""
    writer = RunWriter(store)
    writer.step("setup", _file("a.txt"))
    writer.step("build", _file("b.txt"), _ref("refs/heads/fix", None, "1" * 40))
    writer.step("publish", _push("fix"))
    writer.step("test", _file("c.txt"), _file("d.txt", before_size=9), outcome=Outcome.FAILURE)
    return writer


def _targets(store: Store, run_id: str, mode: str, **options: Any) -> list[str]:
    return [change.target for change in plan_rollback(store, run_id, mode, **options).changes]


def test_hard_undoes_every_pending_change_newest_first(store: Store, run: RunWriter) -> None:
    plan = plan_rollback(store, run.run_id, "hard")
    assert [c.target for c in plan.changes] == ["d.txt", "c.txt", "fix", "refs/heads/fix", "b.txt", "a.txt"]
    assert [c.id for c in plan.changes] == sorted((c.id for c in plan.changes), reverse=True)
    assert (plan.run_id, plan.mode, plan.summary) == (run.run_id, "hard", "everything the run did")


def test_changes_already_undone_are_not_planned_again(store: Store, run: RunWriter) -> None:
    (undone,) = run.ids("d.txt")
    store.mark_undone(undone, None, None, run.run_id)
    assert _targets(store, run.run_id, "hard") == ["c.txt", "fix", "refs/heads/fix", "b.txt", "a.txt"]


def test_steps_undoes_the_last_n_completed_steps_and_everything_after(store: Store, run: RunWriter) -> None:
    plan = plan_rollback(store, run.run_id, "steps", steps=1)
    assert [c.target for c in plan.changes] == ["d.txt", "c.txt", "fix"]
    assert plan.summary == "the last 1 completed step(s) (publish) and everything after them"
    assert _targets(store, run.run_id, "steps", steps=2) == ["d.txt", "c.txt", "fix", "refs/heads/fix", "b.txt"]


def test_steps_beyond_the_completed_ones_undoes_them_all(store: Store, run: RunWriter) -> None:
    plan = plan_rollback(store, run.run_id, "steps", steps=10)
    assert [c.target for c in plan.changes] == ["d.txt", "c.txt", "fix", "refs/heads/fix", "b.txt", "a.txt"]
    assert plan.summary == "the last 3 completed step(s) (setup, build, publish) and everything after them"


def test_steps_counts_only_steps_that_succeeded(store: Store) -> None:
    writer = RunWriter(store)
    writer.step("one", _file("1.txt"))
    writer.step("maybe", outcome=Outcome.SKIPPED)
    writer.step("two", _file("2.txt"))
    writer.step("broken", _file("3.txt"), outcome=Outcome.FAILURE, conclusion=Outcome.SUCCESS)  # continue-on-error
    assert _targets(store, writer.run_id, "steps", steps=2) == ["3.txt", "2.txt", "1.txt"]


@pytest.mark.parametrize("count", [None, 0, -1])
def test_steps_needs_a_positive_number(store: Store, run: RunWriter, count: int | None) -> None:
    with pytest.raises(UsageError, match="--steps needs a number of steps, 1 or more"):
        plan_rollback(store, run.run_id, "steps", steps=count)


def test_steps_on_a_run_without_a_completed_step_is_a_usage_error(store: Store) -> None:
    writer = RunWriter(store)
    writer.step("first", _file("x"), outcome=Outcome.FAILURE)
    with pytest.raises(UsageError, match=f"run {writer.run_id} has no completed step to roll back"):
        plan_rollback(store, writer.run_id, "steps", steps=1)


def test_to_undoes_everything_after_the_named_step(store: Store, run: RunWriter) -> None:
    plan = plan_rollback(store, run.run_id, "to", to="build")
    assert [c.target for c in plan.changes] == ["d.txt", "c.txt", "fix"]
    assert plan.summary == "everything after step 'build'"
    assert _targets(store, run.run_id, "to", to="test") == []


def test_to_a_repeated_step_keeps_its_last_iteration(store: Store) -> None:
    writer = RunWriter(store)
    for iteration in range(3):
        writer.step("loop", _file(f"loop-{iteration}"), iteration=iteration)
    writer.step("after", _file("after.txt"))
    assert _targets(store, writer.run_id, "to", to="loop") == ["after.txt"]


def test_to_an_unknown_step_is_a_usage_error(store: Store, run: RunWriter) -> None:
    with pytest.raises(UsageError, match=f"run {run.run_id} has no finished step 'deploy'"):
        plan_rollback(store, run.run_id, "to", to="deploy")


def test_soft_undoes_only_the_failed_steps_workspace_changes(store: Store) -> None:
    writer = RunWriter(store)
    writer.step("setup", _file("a.txt"))
    writer.step("ship", _file("b.txt"), _ref("refs/heads/x", None, "2" * 40), _push("x"), outcome=Outcome.FAILURE)
    writer.step("cleanup", _file("z.txt"), outcome=Outcome.SUCCESS)  # an `if: failure()` step after it
    plan = plan_rollback(store, writer.run_id, "soft")
    assert [c.target for c in plan.changes] == ["refs/heads/x", "b.txt"]  # not the push, not other steps
    assert plan.summary == "the workspace changes of the failed step 'ship'"


def test_soft_picks_the_failed_iteration_of_a_repeated_step(store: Store) -> None:
    writer = RunWriter(store)
    writer.step("loop", _file("i0"), iteration=0)
    writer.step("loop", _file("i1"), iteration=1, outcome=Outcome.FAILURE)
    assert failed_step(store, writer.run_id) == ("loop", 1)
    assert _targets(store, writer.run_id, "soft") == ["i1"]


def test_soft_after_a_crash_undoes_the_interrupted_attempts_changes(store: Store) -> None:
    writer = RunWriter(store)
    writer.step("setup", _file("a.txt"))
    writer.interrupted("edit", _file("half.txt"), _file("a.txt", before_size=3))
    assert failed_step(store, writer.run_id) == ("edit", 0)
    assert _targets(store, writer.run_id, "soft") == ["a.txt", "half.txt"]


def test_a_failure_let_through_by_continue_on_error_is_not_the_failed_step(store: Store) -> None:
    writer = RunWriter(store)
    writer.step("lint", _file("lint.out"), outcome=Outcome.FAILURE, conclusion=Outcome.SUCCESS)
    writer.step("tests", _file("junit.xml"), outcome=Outcome.FAILURE)
    assert failed_step(store, writer.run_id) == ("tests", 0)


def test_soft_on_a_run_that_did_not_fail_is_a_usage_error(store: Store) -> None:
    writer = RunWriter(store)
    writer.step("only", _file("a.txt"))
    assert failed_step(store, writer.run_id) is None
    with pytest.raises(UsageError, match=f"run {writer.run_id} has no failed or interrupted step"):
        plan_rollback(store, writer.run_id, "soft")


def test_an_unknown_mode_is_a_usage_error(store: Store, run: RunWriter) -> None:
    with pytest.raises(UsageError, match="unknown rollback mode 'medium'"):
        plan_rollback(store, run.run_id, "medium")


def test_a_plan_is_shown_one_line_per_change_with_what_undoing_does(store: Store, run: RunWriter) -> None:
    shown = format_plan(plan_rollback(store, run.run_id, "to", to="setup")).splitlines()
    assert shown == [
        f"rollback of run {run.run_id} (to): everything after step 'setup'; 5 change(s)",
        "  test: file_modify d.txt (restore 644, 9 bytes)",
        "  test: file_create c.txt (remove)",
        "  publish: push fix (undo)",
        f"  build: ref_update refs/heads/fix (refs/heads/fix: {'1' * 40} -> deleted)",
        "  build: file_create b.txt (remove)",
    ]


def test_a_repeated_steps_changes_are_labelled_with_the_iteration(store: Store) -> None:
    writer = RunWriter(store)
    writer.step("loop", _file("i0"), iteration=0)
    writer.step("loop", _file("i2"), iteration=2)
    described = [describe_change(c) for c in plan_rollback(store, writer.run_id, "hard").changes]
    assert described == ["loop#2: file_create i2 (remove)", "loop: file_create i0 (remove)"]
