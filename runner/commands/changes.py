"""`pipe show RUN --changes`: the changes each step recorded, with diffs of text files
(runner/changes/diffs.py)."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from runner.changes.diffs import diff_lines
from runner.changes.objects import ObjectStore
from runner.changes.rollback import describe_effect
from runner.statedir import StateDir
from runner.store import Store


def show_changes(store: Store, state_dir: Path, run_id: str, out: TextIO) -> int:
    record = store.run(run_id)
    objects = ObjectStore(StateDir(state_dir).objects)
    changes = store.changes(record.id)
    out.write(f"run {record.id}: {len(changes)} change(s)\n")
    current: tuple[str, int, int] | None = None
    for change in changes:
        key = (change.step_id, change.iteration, change.attempt)
        if key != current:
            current = key
            label = change.step_id + (f" #{change.iteration}" if change.iteration else "")
            out.write(f"\n{label} (attempt {change.attempt}):\n")
        undone = "  [undone]" if change.undone_at else ""
        out.write(f"  {describe_effect(change)}{undone}\n")
        if change.target.startswith(".git/"):
            continue  # git's own files: the ref changes say what happened
        for line in diff_lines(objects, change):
            out.write(f"      {line}\n")
    return 0
