"""`pipe threads [--state S]` and `pipe show THREAD`: reading threads, their specs, runs and
transitions from the store (runner/threads/ keeps them).

What is printed for a person passes through `runner.terminal.printable`; `--json` writes one JSON
object a line.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from typing import TextIO

from runner.store import Store
from runner.terminal import printable
from runner.threads import find_thread
from runner.threads.details import thread_details


def _when(stamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp)) if stamp else "-"


def _table(rows: list[tuple[str, ...]], out: TextIO) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        out.write(printable(line) + "\n")


def list_threads(store: Store, out: TextIO, *, json_lines: bool, state: str | None) -> int:
    """A table of the threads, most recently changed first (only those in `state` when given), or
    one JSON object a line (a ThreadRecord's fields). Returns the exit code (0)."""
    threads = store.threads(state=state)
    if json_lines:
        for thread in threads:
            out.write(json.dumps(asdict(thread)) + "\n")
        return 0
    rows: list[tuple[str, ...]] = [("thread", "issue", "state", "branch", "pull request", "specs", "updated")]
    for thread in threads:
        specs = store.specs(thread.id)
        pull = f"#{thread.pull_request}" if thread.pull_request else "-"
        issue = f"{thread.repo}#{thread.issue}"
        rows.append(
            (thread.id, issue, thread.state, thread.branch or "-", pull, str(len(specs)), _when(thread.updated_at))
        )
    _table(rows, out)
    return 0


def show_thread(store: Store, reference: str, out: TextIO, *, json_lines: bool) -> int:
    """Show the thread `reference` names (its id, a unique prefix, or OWNER/NAME#ISSUE): state,
    branch and pull request, specs, runs and transitions. Raises UsageError when none matches."""
    thread = find_thread(store, reference)
    details = thread_details(store, thread)
    if json_lines:
        out.write(json.dumps(details) + "\n")
        return 0
    lines = [
        f"thread {thread.id}  {thread.repo}#{thread.issue}",
        f"  state: {thread.state}   branch: {thread.branch or '-'}   pull request: "
        + (f"#{thread.pull_request}" if thread.pull_request else "-"),
        f"  created: {_when(thread.created_at)}   updated: {_when(thread.updated_at)}",
        "",
        "specs:",
    ]
    for spec in details["specs"]:
        target = f" -> {spec['target_branch']}" if spec["target_branch"] else ""
        run = f"run {spec['run_id']} ({spec['run_status']})" if spec["run_id"] else "no run"
        lines.append(f"  {spec['version']}. {spec['kind']}{target}  {run}  {_when(spec['created_at'])}")
        for text in (spec["instructions"] or "").strip().splitlines()[:20]:
            lines.append(f"       {text}")
    lines += ["", "transitions:"]
    for move in details["transitions"]:
        by = f"  (run {move['run_id']})" if move["run_id"] else ""
        start = move["from_state"] or "(created)"
        lines.append(f"  {_when(move['at'])}  {start} -> {move['to_state']}: {move['reason']}{by}")
    out.write(printable("\n".join(lines)) + "\n")
    return 0
