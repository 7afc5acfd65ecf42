"""Unified diffs of recorded file changes, for people: `pipe show RUN --changes` and the run page of
`pipe ui` both show them.

Diffs are made from the kept contents, where a secret is already `***` (runner/changes/recording.py);
files over MAX_DIFF_BYTES get a note instead of a diff, so showing a change never loads a huge file.
"""

from __future__ import annotations

import difflib

from runner.changes.objects import UNKEPT, ObjectStore
from runner.store import ChangeRecord

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
