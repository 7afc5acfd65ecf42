"""Preparing a run to continue (`pipe resume`): find where to restart, clean up after a process
that died, and undo the changes of every step that will run again.

Where to restart: a run stopped at a wait point continues from it, inside its repeat group when it
has one, with the state shown to the person (nothing before it runs again, nothing is re-read);
otherwise from the first top-level step that did not succeed, or `--from`, and earlier when a forge
read (READS: inputs, not effects) answers differently now: the run restarts at that read.

Order matters: containers left by a killed runner are removed first (they might still write);
then the workspace is brought back to its manifest (writes no attempt got to record); then the
recorded changes of the steps that run again are undone, newest first, with the usual checks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.changes.objects import ObjectStore
from runner.changes.recording import WORKSPACE_TYPES, PendingChange, Recorder
from runner.changes.rollback import RollbackPlan, Undoer
from runner.changes.snapshot import Workspace
from runner.errors import UsageError
from runner.pipeline.expressions import Expressions
from runner.pipeline.model import Pipeline, Step
from runner.store import Store
from sandbox.base import Backend


class ResumeRefused(UsageError):
    """Resuming would destroy work that is not the run's (exit 2)."""


@dataclass(frozen=True)
class Preparation:
    """What resuming did: the top-level step index to restart at, orphaned containers removed,
    unrecorded paths restored, recorded changes undone."""

    restart_at: int
    reaped: int
    restored: int
    undone: int
    paths: tuple[str, ...] = ()  # every workspace path put back, unrecorded writes first


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


READS = ("github/issue", "github/issues", "github/pr-diff")

# read(step, rendered args) -> (outputs, error): a forge read run again (runner/actions/registry.py
# `forge_reader`; the changes layer does not import the actions).
ForgeRead = Callable[[Step, dict[str, Any]], tuple[dict[str, str], str | None]]


def plan_restart(
    pipeline: Pipeline, store: Store, run_id: str, from_step: str | None, read: ForgeRead, mask: Callable[[Any], Any]
) -> tuple[int, tuple[str, int] | None, dict[str, list[str]]]:
    """(top-level index to restart at, where inside its repeat group or None, the forge reads
    whose answers changed: {step id: output names}): the wait point the run stopped at (unless
    `from_step`), else restart_index moved back to the first changed read (see reread_inputs).
    Raises UsageError for an unknown `from_step`."""
    if from_step is None and (found := wait_point(pipeline, store, run_id)) is not None:
        return found[0], found[1], {}
    restart = restart_index(pipeline, store, run_id, from_step)
    restart, changed = reread_inputs(pipeline, store, run_id, read, restart, mask)
    return restart, None, changed


def wait_point(pipeline: Pipeline, store: Store, run_id: str) -> tuple[int, tuple[str, int] | None] | None:
    """Where a run that stopped at a wait point continues: (its top-level index, None), or for a
    wait point inside a repeat group (the group's index, (wait step id, iteration)). None when
    the run's newest attempt is not an unfinished wait point with a requested approval."""
    attempts = store.attempts(run_id)
    if not attempts:
        return None
    last = max(attempts, key=lambda a: a.id)
    waits = {step.id for step in pipeline.all_steps() if step.uses == "wait/approval"}
    recorded = {(s.step_id, s.iteration) for s in store.steps(run_id)}
    key = (last.step_id, last.iteration)
    if last.step_id not in waits or key in recorded or store.approval(run_id, *key) is None:
        return None
    for index, step in enumerate(pipeline.steps):
        if step.id == last.step_id:
            return index, None
        if step.repeat is not None and last.step_id in {s.id for s in step.repeat.steps}:
            return index, key
    return None  # deeper than one repeat group: the caller restarts the top-level step


def reread_inputs(
    pipeline: Pipeline, store: Store, run_id: str, read: ForgeRead, restart_at: int, mask: Callable[[Any], Any]
) -> tuple[int, dict[str, list[str]]]:
    """Read the forge again for each top-level forge read (READS) that succeeded before
    `restart_at`. Returns (the first such read whose outputs changed, else `restart_at`; {step id:
    the names of the outputs that changed}). A read that cannot be repeated here (its arguments
    need more than inputs and earlier outputs, or the forge fails) counts as changed, so it runs
    again in the run. `mask` masks values as the run stores them."""
    record = store.run(run_id)
    stored = {s.step_id: s for s in store.steps(run_id) if s.iteration == 0}
    context: dict[str, Any] = {"inputs": dict(record.inputs), "env": {}, "run": {"id": run_id}, "steps": {}}
    changed: dict[str, list[str]] = {}
    first = restart_at
    for index, step in enumerate(pipeline.steps[:restart_at]):
        previous = stored.get(step.id)
        if previous is not None:
            context["steps"][step.id] = {
                "outputs": previous.outputs,
                "outcome": previous.outcome,
                "conclusion": previous.conclusion,
            }
        if step.uses not in READS or previous is None or previous.conclusion != "success":
            continue
        try:
            outputs, error = read(step, Expressions(context).render_value(dict(step.with_)))
            now: dict[str, str] = mask(outputs) if error is None else {}
        except Exception as problem:  # any failure to read again: the read runs again in the run
            changed[step.id] = [f"(not re-read: {mask(str(problem).splitlines()[0] if str(problem) else problem)})"]
        else:
            names = sorted(set(now) | set(previous.outputs))
            names = [name for name in names if now.get(name) != previous.outputs.get(name)]
            if error is not None:
                names = [f"(not re-read: {mask(error)})"]
            if names:
                changed[step.id] = names
        if step.id in changed:
            first = min(first, index)
    return first, changed


def _with_nested(steps: tuple[Step, ...]) -> set[str]:
    found: set[str] = set()
    for step in steps:
        found.add(step.id)
        if step.repeat is not None:
            found |= _with_nested(step.repeat.steps)
    return found


def _rerun(pipeline: Pipeline, restart_at: int, inner: tuple[str, int] | None) -> set[str]:
    """The ids of the steps that run again: from top-level step `restart_at` on, or with `inner`
    (see wait_point) from that step of the group on, then the steps after the group."""
    if inner is None:
        return _with_nested(pipeline.steps[restart_at:])
    group = pipeline.steps[restart_at]
    assert group.repeat is not None
    ids = [step.id for step in group.repeat.steps]
    return _with_nested(group.repeat.steps[ids.index(inner[0]) :]) | _with_nested(pipeline.steps[restart_at + 1 :])


FOREIGN_NAMED = 20  # paths a refusal names before "and N more"


def refuse_foreign_files(found: list[PendingChange], force: bool) -> None:
    """Refuse (ResumeRefused, exit 2) to delete files that no recorded change of the run created
    and that are not in its manifest (a person added them to the workspace meanwhile), unless `force`.
    `prepare` forces it when an attempt was interrupted (its runner died mid-step: its writes were
    never recorded, so unrecorded files are taken to be that attempt's)."""
    foreign = [change.path for change in found if change.before is None and change.after is not None]
    if foreign and not force:
        named = ", ".join(foreign[:FOREIGN_NAMED]) + (
            f" and {len(foreign) - FOREIGN_NAMED} more" if len(foreign) > FOREIGN_NAMED else ""
        )
        raise ResumeRefused(
            f"resume would delete {len(foreign)} path(s) the run did not create: {named}; "
            "move them out of the workspace, or resume with --force to delete them"
        )


def prepare(
    pipeline: Pipeline,
    store: Store,
    backend: Backend,
    objects: ObjectStore,
    run_id: str,
    restart_at: int,
    inner: tuple[str, int] | None = None,
    force: bool = False,
) -> Preparation:
    """Make the run's workspace what it was before step `restart_at` first ran (with `inner`,
    before that step of the repeat group), and forget the results of the steps that run again.
    Raises RollbackConflict when a recorded state is not found (someone changed the workspace
    meanwhile)."""
    record = store.run(run_id)
    reaped = backend.reap({"pipe.run": run_id})
    interrupted = store.interrupt_attempts(run_id, "the runner stopped before this attempt ended")
    workspace = Workspace(Path(record.workspace))
    undoer = Undoer(store, objects, workspace)
    unrecorded: list[PendingChange] = []
    if store.has_manifest(run_id) or store.attempts(run_id):
        unrecorded = Recorder(store, objects, workspace, run_id).scan()
    # else the runner died before its baseline (no step had started): the workspace is as the run
    # found it, and the resumed run takes its baseline from it
    refuse_foreign_files(unrecorded, force or interrupted > 0)
    restored = undoer.restore_unrecorded(unrecorded)
    rerun = _rerun(pipeline, restart_at, inner)
    # Only the workspace goes back: forge writes are idempotent and the steps update them again.
    chosen = [
        change
        for change in store.changes(run_id, pending_only=True)
        if change.step_id in rerun and change.type in WORKSPACE_TYPES
    ]
    plan = RollbackPlan(run_id, "resume", "the steps that run again", sorted(chosen, key=lambda c: c.id, reverse=True))
    undone = undoer.apply(plan)
    positions = [index for index, step in enumerate(pipeline.all_steps()) if step.id in rerun]
    stale = [
        s
        for s in store.steps(run_id)
        if s.step_id in rerun and (inner is None or s.iteration == 0 or s.iteration >= inner[1])
    ]
    if positions and (inner is None or stale):  # at a wait point the group's earlier rounds stay listed
        store.delete_steps(run_id, min(positions))
    reverted = [*(c.path for c in reversed(unrecorded)), *(str(c.data["path"]) for c in plan.changes)]
    paths = tuple(dict.fromkeys(reverted))
    return Preparation(restart_at, reaped, restored, undone, paths)
