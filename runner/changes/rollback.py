"""Rollback: undoing recorded changes, newest first, each checked against what was recorded.

Modes (`pipe rollback`): `hard` undoes everything the run did; `steps` (N) the last N steps that
succeeded and everything after them; `to` STEP everything after STEP; `soft` only the failed (or
interrupted) step's changes to the workspace, keeping branches, commits and PRs of earlier steps.

Each undo first looks at the current state: when it equals the recorded "after", it is restored to
"before"; when it already equals "before" (a rollback interrupted by kill -9 and started again),
it is only marked undone; anything else stops the rollback with RollbackConflict, saying what was
found, and nothing more is changed. Every undo is stored in its own transaction.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from runner.changes.entries import entry_from_data, manifest_row
from runner.changes.external import ExternalUndo, Origin, RollbackConflict
from runner.changes.objects import BLOCK, ObjectStore, hash_blocks, is_masked, is_unkept, nonzero_blocks, unkept_digest
from runner.changes.recording import WORKSPACE_TYPES, PendingChange
from runner.changes.snapshot import Entry, Workspace
from runner.errors import PipeError, UsageError
from runner.masking import MASK
from runner.store import ChangeRecord, StepRecord, Store

MODES = ("hard", "steps", "to", "soft")

__all__ = ["MODES", "RollbackConflict", "RollbackPlan", "Undoer", "failed_step", "format_plan", "plan_rollback"]


@dataclass(frozen=True)
class RollbackPlan:
    """What a rollback will undo: `changes` newest first, and a one-line `summary` of the scope."""

    run_id: str
    mode: str
    summary: str
    changes: list[ChangeRecord]


def _steps_in_order(store: Store, run_id: str) -> list[StepRecord]:
    return sorted(store.steps(run_id), key=lambda s: (s.start_mark, s.started_at or 0.0, s.position, s.iteration))


def failed_step(store: Store, run_id: str) -> tuple[str, int] | None:
    """(step id, iteration) of the step that failed the run, or of an interrupted attempt."""
    for step in _steps_in_order(store, run_id):
        if step.conclusion == "failure":
            return step.step_id, step.iteration
    finished = {(s.step_id, s.iteration) for s in store.steps(run_id)}
    for attempt in reversed(store.attempts(run_id)):
        if (attempt.step_id, attempt.iteration) not in finished:
            return attempt.step_id, attempt.iteration
    return None


def plan_rollback(
    store: Store, run_id: str, mode: str, *, steps: int | None = None, to: str | None = None
) -> RollbackPlan:
    """Select the changes a rollback undoes. Raises UsageError for a mode that does not fit the run."""
    pending = store.changes(run_id, pending_only=True)
    ordered = _steps_in_order(store, run_id)
    if mode == "hard":
        chosen, summary = pending, "everything the run did"
    elif mode == "steps":
        if not steps or steps < 1:
            raise UsageError("--steps needs a number of steps, 1 or more")
        succeeded = [s for s in ordered if s.outcome == "success" and s.step_id]
        if not succeeded:
            raise UsageError(f"run {run_id} has no completed step to roll back")
        target = succeeded[-min(steps, len(succeeded))]
        chosen = [c for c in pending if c.id > target.start_mark]
        names = ", ".join(s.step_id for s in succeeded[-steps:])
        summary = f"the last {min(steps, len(succeeded))} completed step(s) ({names}) and everything after them"
    elif mode == "to":
        matches = [s for s in ordered if s.step_id == to]
        if not matches:
            raise UsageError(f"run {run_id} has no finished step {to!r}")
        mark = matches[-1].end_mark
        chosen = [c for c in pending if c.id > mark]
        summary = f"everything after step {to!r}"
    elif mode == "soft":
        failed = failed_step(store, run_id)
        if failed is None:
            raise UsageError(f"run {run_id} has no failed or interrupted step")
        chosen = [c for c in pending if (c.step_id, c.iteration) == failed and c.type in WORKSPACE_TYPES]
        summary = f"the workspace changes of the failed step {failed[0]!r}"
    else:
        raise UsageError(f"unknown rollback mode {mode!r}")
    return RollbackPlan(run_id, mode, summary, sorted(chosen, key=lambda c: c.id, reverse=True))


def _entry_text(entry: dict[str, Any] | None) -> str:
    if entry is None:
        return "nothing"
    if entry["kind"] == "symlink":
        return f"symlink -> {entry.get('target')}"
    if entry["kind"] == "dir":
        return f"directory {int(entry['mode']):o}"
    masked = " (secret masked)" if entry.get("masked") else ""
    return f"{entry['kind']} {int(entry['mode']):o}, {entry.get('size', 0)} bytes{masked}"


def describe_effect(change: ChangeRecord) -> str:
    """What the change did, for `pipe show --changes`: `type target: what`."""
    data = change.data
    if change.type in ("branch_create", "branch_delete", "ref_update", "commit"):
        what = f"{data.get('from') or 'none'} -> {data.get('to') or 'deleted'}"
    elif change.type in WORKSPACE_TYPES:
        before, after = data.get("before"), data.get("after")
        if before is None:
            what = f"created {_entry_text(after)}"
        elif after is None:
            what = f"deleted {_entry_text(before)}"
        elif before.get("sha256") == after.get("sha256") and before.get("target") == after.get("target"):
            what = f"mode {int(before['mode']):o} -> {int(after['mode']):o}"
        else:
            what = f"{_entry_text(before)} -> {_entry_text(after)}"
    else:
        what = ", ".join(f"{key}={value}" for key, value in data.items() if key != "undo")
    return f"{change.type} {change.target}: {what}"


def describe_change(change: ChangeRecord) -> str:
    """One line for a rollback plan: `step: type target (what undoing it does)`."""
    data = change.data
    before = data.get("before")
    if change.type in ("branch_create", "branch_delete", "ref_update", "commit"):
        action = f"{data.get('ref')}: {data.get('to') or 'none'} -> {data.get('from') or 'deleted'}"
    elif change.type in WORKSPACE_TYPES:
        if before is None:
            action = "remove"
        elif before["kind"] == "symlink":
            action = f"restore symlink -> {before.get('target')}"
        elif before["kind"] == "dir":
            action = f"restore directory {int(before['mode']):o}"
        else:
            action = f"restore {int(before['mode']):o}, {before.get('size', 0)} bytes"
    else:
        action = "undo"
    label = change.step_id + (f"#{change.iteration}" if change.iteration else "")
    return f"{label}: {change.type} {change.target} ({action})"


def format_plan(plan: RollbackPlan) -> str:
    lines = [f"rollback of run {plan.run_id} ({plan.mode}): {plan.summary}; {len(plan.changes)} change(s)"]
    lines += [f"  {describe_change(change)}" for change in plan.changes]
    return "\n".join(lines)


class Undoer:
    """Applies a RollbackPlan to the run's workspace and, through the undo functions `external`
    (change type -> undo, from the action registry: runner/changes/external.py), the outside world."""

    def __init__(
        self,
        store: Store,
        objects: ObjectStore,
        workspace: Workspace,
        forge_for: Callable[[Mapping[str, str]], Any] | None = None,
        external: Mapping[str, ExternalUndo] | None = None,
    ) -> None:
        """`forge_for(settings)` opens the forge an external change was made on (settings as
        `Forge.describe()` gave them when it was recorded); `external` undoes external changes
        (none given: an external change stops the rollback with RollbackConflict)."""
        self.store = store
        self.objects = objects
        self.workspace = workspace
        self.forge_for = forge_for
        self.external: Mapping[str, ExternalUndo] = external or {}

    def apply(self, plan: RollbackPlan, on_undone: Callable[[ChangeRecord], None] | None = None) -> int:
        """Undo every change of `plan` in order; returns how many were undone.
        Raises RollbackConflict at the first unexpected state."""
        done = 0
        for change in plan.changes:
            try:
                if change.type in WORKSPACE_TYPES:
                    upsert, delete = self._undo_workspace(change)
                else:
                    self._undo_external(change, plan.run_id)
                    upsert, delete = None, None
            except RollbackConflict as conflict:
                raise RollbackConflict(f"{conflict} ({done} change(s) were undone before it)") from None
            self.store.mark_undone(change.id, upsert, delete, plan.run_id)
            done += 1
            if on_undone is not None:
                on_undone(change)
        return done

    def restore_unrecorded(self, found: list[PendingChange]) -> int:
        """Put back the manifest's state for differences no attempt recorded (`found`, from
        `Recorder.scan()`: the writes of a process killed before it could record them).
        Returns how many paths were restored."""
        for change in reversed(found):
            self._restore(change.path, self._current(change.path), change.before)
        return len(found)

    def _current(self, path: str, expected: tuple[Entry | None, ...] = ()) -> Entry | None:
        """The entry at `path` with its digest (or target). A file whose metadata equals an
        `unkept-` digest among `expected` (runner/changes/recording.py) is not read."""
        try:
            entry = self.workspace.lstat(path)
        except OSError as error:
            raise RollbackConflict(f"rollback stopped: cannot look at {path}: {error.strerror}") from None
        if entry is None:
            return None
        if entry.kind == "file":
            try:
                with self.workspace.open_file(path) as (descriptor, entry):
                    st = os.fstat(descriptor)
                    digest = unkept_digest(st)
                    if not any(e is not None and e.digest == digest for e in expected):
                        digest = hash_blocks(nonzero_blocks(descriptor, st.st_size), st.st_size)
            except OSError as error:
                raise RollbackConflict(f"rollback stopped: cannot read {path}: {error.strerror or error}") from None
            return Entry(entry.kind, entry.mode, entry.uid, entry.gid, entry.size, digest, None, entry.stamp)
        if entry.kind == "symlink":
            return Entry(
                entry.kind, entry.mode, entry.uid, entry.gid, 0, None, self.workspace.readlink(path), entry.stamp
            )
        return entry

    def _undo_workspace(self, change: ChangeRecord) -> tuple[tuple[Any, ...] | None, str | None]:
        path = change.data["path"]
        before = entry_from_data(change.data.get("before"))
        after = entry_from_data(change.data.get("after"))
        current = self._current(path, (before, after))
        if not self._matches(path, current, before):
            if not self._matches(path, current, after):
                raise RollbackConflict(
                    f"rollback stopped at {change.type} {path} (step {change.step_id!r}):"
                    f" expected {_show(after)}, found {_show(current)}"
                )
            self._restore(path, current, before)
        if before is None:
            return None, path
        fresh = self.workspace.lstat(path)
        assert fresh is not None
        restored = Entry(
            before.kind,
            before.mode,
            before.uid,
            before.gid,
            before.size,
            before.digest,
            before.target,
            fresh.stamp,
            fresh.links,
        )
        return manifest_row(path, restored), None

    def _restore(self, path: str, current: Entry | None, before: Entry | None) -> None:
        workspace = self.workspace
        try:
            if current is not None and (before is None or before.kind != current.kind):
                workspace.remove(path, current.kind)
            if before is None:
                return
            if before.kind == "file":
                assert before.digest is not None
                if is_masked(before.digest):
                    raise RollbackConflict(
                        f"rollback stopped: cannot restore {path}: its recorded content held a secret, so only"
                        " a masked copy was kept; put it back by hand"
                    )
                if is_unkept(before.digest):
                    raise RollbackConflict(
                        f"rollback stopped: cannot restore {path}: it held more data than pipe records"
                        f" ({before.size} bytes), so only its metadata was kept; put it back by hand"
                    )
                size, blocks = self.objects.blocks(before.digest)
                workspace.write_blocks(path, size, blocks, before.mode, before.uid, before.gid)
            elif before.kind == "symlink":
                workspace.write_symlink(path, before.target or "", before.uid, before.gid)
            elif before.kind == "dir":
                workspace.make_directory(path, before.mode, before.uid, before.gid)
        except OSError as error:
            raise RollbackConflict(f"rollback stopped: cannot restore {path}: {error.strerror or error}") from None

    def _written_at(self, run_id: str, target: str) -> float | None:
        """When run `run_id` last recorded writing `target` (else when it started; None: unknown here)."""
        try:
            times = [c.recorded_at for c in self.store.changes(run_id) if c.target == target]
            return max(times) if times else self.store.run(run_id).started_at
        except PipeError:
            return None

    def _undo_external(self, change: ChangeRecord, run_id: str) -> None:
        handler = self.external.get(change.type)
        if handler is None:
            raise RollbackConflict(f"rollback stopped: no way to undo {change.type} {change.target}")
        if self.forge_for is None:
            raise RollbackConflict(f"rollback stopped at {change.type} {change.target}: no forge to undo it on")
        try:
            handler(change, self.forge_for(change.data["forge"]), Origin(run_id, self._written_at))
        except RollbackConflict:
            raise
        except PipeError as error:
            raise RollbackConflict(f"rollback stopped at {change.type} {change.target}: {error}") from None

    def _matches(self, path: str, current: Entry | None, expected: Entry | None) -> bool:
        """Whether `current` is the recorded `expected`. A masked file matches when its kind,
        mode and size agree and its bytes are the masked copy with each `***` standing for any
        non-empty bytes (a file larger than MAX_FILE_BYTES: kind, mode and size only)."""
        if expected is None or current is None:
            return current is None and expected is None
        if current.kind != "file" or not is_masked(expected.digest):
            return expected.same_state(current)
        assert expected.digest is not None
        if (current.kind, current.mode, current.size) != (expected.kind, expected.mode, expected.size):
            return False
        try:
            data, _ = self.workspace.read(path)
        except OSError as error:
            if error.errno == errno.EFBIG:
                return True
            raise RollbackConflict(f"rollback stopped: cannot read {path}: {error.strerror or error}") from None
        data = b"".join(  # the masked copy was made of the blocks that are not all zeros (runner/changes/objects.py)
            piece for piece in (data[at : at + BLOCK] for at in range(0, len(data), BLOCK)) if piece.strip(b"\0")
        )
        try:
            template = self.objects.get(expected.digest)
        except FileNotFoundError:
            return False
        return fits_masked(data, template)


def fits_masked(data: bytes, masked: bytes) -> bool:
    """Whether `masked` could be the masked copy of `data`: equal, but that each `***` in it
    stands for one or more bytes. Greedy, left to right (linear in the sizes)."""
    pieces = masked.split(MASK.encode())
    if len(pieces) == 1:
        return data == masked
    first, *middle, last = pieces
    if not (data.startswith(first) and data.endswith(last)):
        return False
    position = len(first)
    for piece in middle:
        found = data.find(piece, position + 1)
        if found < 0:
            return False
        position = found + len(piece)
    return len(data) - len(last) >= position + 1


def _show(entry: Entry | None) -> str:
    if entry is None:
        return "nothing"
    if entry.kind == "file":
        return f"a file ({entry.mode:o}, sha256 {str(entry.digest)[:12]})"
    if entry.kind == "symlink":
        return f"a symlink to {entry.target}"
    return f"a {entry.kind}"
