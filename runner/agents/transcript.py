"""Agent transcripts: the CLI's own session log (Claude's and Codex's session JSONL, aider's chat
history) kept per attempt, masked, beside the attempt's log as `<log name>.transcript`, and shown
by `pipe logs RUN STEP --transcript`.

Files are found by walking the workspace without following symlinks and read with
Workspace.read (no symlink anywhere on the path), so an agent cannot make pipe copy a host file.
Only what was added since the previous round is appended (a resumed session grows its file).
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from runner.changes.snapshot import Workspace
from runner.store import Store
from runner.terminal import printable

MAX_TRANSCRIPT = 32 * 1024 * 1024


def _matches(workspace: Path, globs: Sequence[str]) -> list[str]:
    """Workspace-relative paths of regular files matching `globs` (fnmatch on the whole path)."""
    found: list[str] = []
    roots = {glob.split("/", 1)[0] for glob in globs if "*" not in glob.split("/", 1)[0]}
    for root in sorted(roots) or ["."]:
        start = workspace / root
        if start.is_symlink() or not start.exists():
            continue
        if start.is_file():
            found.append(root)
            continue
        for directory, names, files in os.walk(start, followlinks=False):
            names.sort()
            for name in sorted(files):
                relative = os.path.relpath(os.path.join(directory, name), workspace)
                if any(fnmatch.fnmatch(relative, glob) for glob in globs):
                    found.append(relative)
    return found


def collect(
    workspace: Path, globs: Sequence[str], offsets: dict[str, int], mask: Callable[[str], str], heading: str
) -> str:
    """The new part of each transcript file since `offsets` (updated), masked, under `heading`
    and each file's path; "" when nothing new."""
    parts: list[str] = []
    for relative in _matches(workspace, globs):
        try:
            data, _ = Workspace(workspace).read(relative)
        except OSError:
            continue
        start = offsets.get(relative, 0)
        if len(data) <= start:
            continue
        offsets[relative] = len(data)
        parts.append(f"--- {relative}\n{mask(data[start:].decode('utf-8', errors='replace'))}")
    return f"=== {heading}\n" + "\n".join(parts) + "\n" if parts else ""


def append(log_path: Path, text: str) -> None:
    """Add `text` to the transcript kept beside the attempt log `log_path` (bounded in size)."""
    target = transcript_path(log_path)
    size = target.stat().st_size if target.exists() else 0
    if size >= MAX_TRANSCRIPT or not text:
        return
    with open(target, "a", encoding="utf-8") as handle:
        handle.write(text[: MAX_TRANSCRIPT - size])


def transcript_path(log_path: Path) -> Path:
    """`<step>.<n>.log` -> `<step>.<n>.transcript`."""
    return log_path.with_suffix(".transcript")


def show_transcripts(store: Store, run_id: str, step: str, out: TextIO) -> int:
    """Print the transcripts of `step`'s attempts in order; returns 0 (1 when there is none)."""
    run = store.run(run_id)
    shown = 0
    for attempt in store.attempts(run.id):
        if attempt.step_id != step or not attempt.log_path:
            continue
        path = transcript_path(Path(attempt.log_path))
        if not path.is_file():
            continue
        shown += 1
        out.write(f"# {step} attempt {attempt.number}\n")
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            out.write(printable(line) + "\n")
    if not shown:
        out.write(f"run {run.id}: step {step!r} kept no agent transcript (only named agents with one do)\n")
        return 1
    return 0
