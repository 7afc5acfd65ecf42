"""`pipe rollback RUN`: undo recorded changes of a run (see runner/changes/rollback.py for the modes)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TextIO

from runner.actions.registry import EXTERNAL_UNDO
from runner.changes.objects import ObjectStore
from runner.changes.rollback import Undoer, describe_change, format_plan, plan_rollback
from runner.changes.snapshot import Workspace
from runner.engine.lease import Lease
from runner.errors import RunBusy, UsageError
from runner.forges import open_forge
from runner.statedir import StateDir
from runner.store import Store


def choose_mode(steps: int | None, to: str | None, soft: bool, hard: bool) -> str:
    """The one rollback mode the options name; raises UsageError for none or several."""
    chosen = [
        name for name, given in (("steps", steps is not None), ("to", to), ("soft", soft), ("hard", hard)) if given
    ]
    if len(chosen) != 1:
        raise UsageError("choose exactly one of --steps N, --to STEP, --soft or --hard")
    return chosen[0]


def rollback_run(
    store: Store,
    state_dir: Path,
    run_id: str,
    mode: str,
    *,
    steps: int | None,
    to: str | None,
    dry_run: bool,
    out: TextIO,
    token_file: Path | None = None,
) -> int:
    """Print the plan; unless `dry_run`, apply it while holding the run's lease. Exit 0 when all
    was undone; RollbackConflict (exit 1) stops at an unexpected state."""
    record = store.run(run_id)
    plan = plan_rollback(store, record.id, mode, steps=steps, to=to)
    print(format_plan(plan), file=out)
    children = list(reversed(store.children(record.id))) if mode == "hard" else []
    for child in children:
        print(f"  and child {child.child_key} (run {child.id}): everything it did", file=out)
    if dry_run or not (plan.changes or children):
        return 0
    lease = Lease(state_dir, record.id)
    holder = lease.acquire()
    if holder is not None:
        raise RunBusy(f"run {record.id} is in use by {holder}; wait for it to finish or stop that process")
    try:
        _reap_containers(record.id)
        for child in children:  # with --hard the children (uses: pipeline) go back too, newest first
            child_plan = plan_rollback(store, child.id, "hard")
            if child_plan.changes:
                child_undoer = Undoer(
                    store,
                    ObjectStore(StateDir(state_dir).objects),
                    Workspace(Path(child.workspace)),
                    _forge_opener(state_dir, token_file),
                    EXTERNAL_UNDO,
                )
                undone = child_undoer.apply(child_plan)
                print(f"rolled back {undone} change(s) of child {child.child_key} (run {child.id})", file=out)
        undoer = Undoer(
            store,
            ObjectStore(StateDir(state_dir).objects),
            Workspace(Path(record.workspace)),
            _forge_opener(state_dir, token_file),
            EXTERNAL_UNDO,
        )
        undone = undoer.apply(plan, on_undone=lambda change: print(f"undone {describe_change(change)}", file=out))
    finally:
        lease.release()
    print(f"rolled back {undone} change(s) of run {record.id}", file=out)
    return 0


def _forge_opener(state_dir: Path, token_file: Path | None) -> Callable[[Mapping[str, str]], object]:
    """Opens (once each) the forges external changes were made on."""
    forges: dict[str, object] = {}

    def forge_for(settings: Mapping[str, str]) -> object:
        key = json.dumps(dict(settings), sort_keys=True)
        if key not in forges:
            forges[key] = open_forge(settings, state_dir=state_dir, token_file=token_file)
        return forges[key]

    return forge_for


def _reap_containers(run_id: str) -> None:
    """Remove containers a dead runner left (they could still write); skipped without an engine."""
    from runner.backend import open_backend

    engine = open_backend("docker")
    with contextlib.suppress(Exception):
        engine.check()
        engine.reap({"pipe.run": run_id})
    engine.close()
