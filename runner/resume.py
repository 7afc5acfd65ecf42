"""Preparing a run to continue (`pipe resume`): find where to restart, clean up after a process
that died, and undo the changes of every step that will run again.

Order matters: containers left by a killed runner are removed first (they might still write);
then the workspace is brought back to its manifest (writes no attempt got to record); then the
recorded changes of the steps that run again are undone, newest first, with the usual checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from runner.changes import WORKSPACE_TYPES, Recorder
from runner.errors import UsageError
from runner.model import Pipeline, Step
from runner.objects import ObjectStore
from runner.rollback import RollbackPlan, Undoer
from runner.snapshot import Workspace
from runner.store import Store
from sandbox.base import Backend


@dataclass(frozen=True)
class Preparation:
    """What resuming did: the top-level step index to restart at, orphaned containers removed,
    unrecorded paths restored, recorded changes undone."""

    restart_at: int
    reaped: int
    restored: int
    undone: int


def restart_index(pipeline: Pipeline, store: Store, run_id: str, from_step: str | None) -> int:
    """The first top-level step that must run again: `from_step`, else the first one without a
    successful (or skipped) result, else len(steps) (every step ran: resuming only finishes the
    run, reporting its end again, as when the runner died between reporting and storing it).
    Raises UsageError for an unknown step."""
    ids = [step.id for step in pipeline.steps]
    if from_step is not None:
        if from_step not in ids:
            raise UsageError(f"{pipeline.path}: no top-level step {from_step!r} (steps: {', '.join(ids)})")
        return ids.index(from_step)
    done = {s.step_id for s in store.steps(run_id) if s.iteration == 0 and s.conclusion in ("success", "skipped")}
    for index, step_id in enumerate(ids):
        if step_id not in done:
            return index
    return len(ids)


def _with_nested(steps: tuple[Step, ...]) -> set[str]:
    found: set[str] = set()
    for step in steps:
        found.add(step.id)
        if step.repeat is not None:
            found |= _with_nested(step.repeat.steps)
    return found


def prepare(
    pipeline: Pipeline, store: Store, backend: Backend, objects: ObjectStore, run_id: str, restart_at: int
) -> Preparation:
    """Make the run's workspace what it was before step `restart_at` first ran, and forget the
    results of the steps that run again. Raises RollbackConflict when a recorded state is not
    found (someone changed the workspace meanwhile)."""
    record = store.run(run_id)
    reaped = backend.reap({"pipe.run": run_id})
    store.interrupt_attempts(run_id, "the runner stopped before this attempt ended")
    workspace = Workspace(Path(record.workspace))
    undoer = Undoer(store, objects, workspace)
    restored = undoer.restore_unrecorded(Recorder(store, objects, workspace, run_id).scan())
    rerun = _with_nested(pipeline.steps[restart_at:])
    # Only the workspace goes back: forge writes are idempotent and the steps update them again.
    chosen = [
        change
        for change in store.changes(run_id, pending_only=True)
        if change.step_id in rerun and change.type in WORKSPACE_TYPES
    ]
    plan = RollbackPlan(run_id, "resume", "the steps that run again", sorted(chosen, key=lambda c: c.id, reverse=True))
    undone = undoer.apply(plan)
    positions = [index for index, step in enumerate(pipeline.all_steps()) if step.id in rerun]
    if positions:
        store.delete_steps(run_id, min(positions))
    return Preparation(restart_at, reaped, restored, undone)
