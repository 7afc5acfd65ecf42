"""`pipe show RUN --changes`: the changes each step recorded, with diffs of text files.

Diffs are made from the kept contents, where a secret is already `***` (runner/changes.py); files
over MAX_DIFF_BYTES get a note instead of a diff, so showing a change never loads a huge file."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import TextIO

from runner.changes.objects import UNKEPT, ObjectStore
from runner.changes.rollback import describe_effect
from runner.store import ChangeRecord, Store

MAX_DIFF_LINES = 200
MAX_DIFF_BYTES = 4 * 1024 * 1024


def _text(objects: ObjectStore, entry: dict[str, object] | None) -> list[str] | None:
    """The lines of a recorded file, [] for none, None when binary or unavailable."""
    if entry is None or entry.get("kind") != "file":
        return [] if entry is None else None
    try:
        data = objects.get(str(entry["sha256"]))
    except (FileNotFoundError, KeyError):
        return None
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8").splitlines(keepends=True)
    except UnicodeDecodeError:
        return None


def diff_lines(objects: ObjectStore, change: ChangeRecord) -> list[str]:
    """A unified diff of a file change, or a note that it is binary; [] for other changes."""
    if not change.type.startswith("file_"):
        return []
    before, after = change.data.get("before"), change.data.get("after")
    if (before or after or {}).get("kind") != "file" and (after or {}).get("kind") != "file":
        return []
    if any(str((e or {}).get("sha256", "")).startswith(UNKEPT) for e in (before, after)):
        return ["(content not kept: more data than pipe records, PIPE_MAX_RECORD)"]
    large = [int(e.get("size", 0)) for e in (before, after) if e and int(e.get("size", 0)) > MAX_DIFF_BYTES]
    if large:
        return [f"(large content, {max(large)} bytes: no diff)"]
    old, new = _text(objects, before), _text(objects, after)
    if old is None or new is None:
        return ["(binary content)"]
    path = change.target
    lines = [line.rstrip("\n") for line in difflib.unified_diff(old, new, f"a/{path}", f"b/{path}", n=2)]
    if len(lines) > MAX_DIFF_LINES:
        lines = [*lines[:MAX_DIFF_LINES], f"... {len(lines) - MAX_DIFF_LINES} more lines"]
    return lines


def show_changes(store: Store, state_dir: Path, run_id: str, out: TextIO) -> int:
    record = store.run(run_id)
    objects = ObjectStore(state_dir / "objects")
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
