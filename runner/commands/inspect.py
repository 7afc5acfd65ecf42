"""`pipe runs`, `pipe show RUN` and `pipe logs RUN [STEP]`: reading the store.

Stored text stays faithful; what is printed for a person passes through `runner.terminal.printable`
(JSON output escapes control characters itself).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, TextIO

from runner.errors import UsageError
from runner.names import FINISHED, EventKind
from runner.store import AttemptRecord, RunRecord, StepRecord, Store
from runner.terminal import printable
from runner.units import format_duration


def _when(stamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp)) if stamp else "-"


def _took(run: RunRecord) -> str:
    if run.started_at is None:
        return "-"
    return format_duration((run.finished_at or time.time()) - run.started_at)


def list_runs(store: Store, out: TextIO, *, json_lines: bool, limit: int, status: str | None) -> int:
    """A table of the newest runs (or one JSON object per line)."""
    runs = store.runs(limit=limit, status=status)
    if json_lines:
        for run in runs:
            out.write(json.dumps(asdict(run)) + "\n")
        return 0
    rows = [("run", "pipeline", "status", "started", "duration", "step")]
    rows += [(r.id, r.pipeline_name, r.status, _when(r.started_at), _took(r), r.current_step or "") for r in runs]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        out.write(printable(line) + "\n")
    return 0


def show_run(store: Store, run_id: str, out: TextIO, *, json_lines: bool) -> int:
    """A run's steps, attempts (exit codes, durations, log paths), outputs and errors."""
    run = store.run(run_id)
    steps = store.steps(run.id)
    attempts = store.attempts(run.id)
    if json_lines:
        record = {
            "run": asdict(run),
            "steps": [asdict(s) for s in steps],
            "attempts": [asdict(a) for a in attempts],
            "egress": [
                {"step": step, "iteration": iteration, "attempt": number, "requests": requests}
                for (step, iteration, number), requests in _egress(store, run.id)[0].items()
            ],
        }
        out.write(json.dumps(record) + "\n")
        return 0
    _show_text(store, run, steps, attempts, _Printable(out))
    return 0


class _Printable:
    """A writer that makes text printable (see runner.terminal) before writing it to `out`."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def write(self, text: str) -> None:
        self.out.write(printable(text))


def _show_text(
    store: Store, run: RunRecord, steps: list[StepRecord], attempts: list[AttemptRecord], out: _Printable
) -> None:
    out.write(f"run {run.id}  {run.pipeline_name} ({run.pipeline_path})\n")
    out.write(f"  status: {run.status}   started: {_when(run.started_at)}   duration: {_took(run)}\n")
    out.write(f"  inputs: {json.dumps(run.inputs)}\n  workspace: {run.workspace}\n")
    if run.error:
        out.write(f"  error: {run.error}\n")
    if run.parent_id:
        out.write(f"  parent: {run.parent_id} (child {run.child_key})\n")
    for child in store.children(run.id):
        out.write(f"  child {child.child_key}: {child.id} {child.status}\n")
    from runner.agents.usage import run_usage

    usage = run_usage(store, run.id)
    if usage.steps:
        out.write(f"  agents: {usage.describe()}\n")
    egress, audit = _egress(store, run.id)
    if audit is not None:
        out.write(f"  egress audit: the run needed  allow: [{', '.join(audit)}]\n")
    for step in steps:
        label = step.step_id + (f" #{step.iteration}" if step.iteration else "")
        out.write(f"\n{label}: outcome {step.outcome}, conclusion {step.conclusion}, {step.attempts} attempt(s)\n")
        if step.error:
            out.write(f"  error: {step.error}\n")
        for attempt in attempts:
            if attempt.step_id != step.step_id or attempt.iteration != step.iteration:
                continue
            took = format_duration((attempt.finished_at or time.time()) - attempt.started_at)
            code = "-" if attempt.exit_code is None else str(attempt.exit_code)
            started = _when(attempt.started_at)
            on = f", runtime {attempt.runtime}" if attempt.runtime else ""
            out.write(f"  attempt {attempt.number}: {attempt.status}, exit code {code}, started {started}, {took}")
            out.write(f"{on}\n")
            if attempt.error:
                out.write(f"    error: {attempt.error}\n")
            for line in _egress_lines(egress.get((attempt.step_id, attempt.iteration, attempt.number), [])):
                out.write(f"    egress: {line}\n")
        for name, value in step.outputs.items():
            shown = value if "\n" not in value else value.replace("\n", "\n" + " " * (6 + len(name)))
            out.write(f"  output {name}: {shown}\n")


def _egress(store: Store, run_id: str) -> tuple[dict[tuple[str, int, int], list[dict[str, Any]]], list[str] | None]:
    """The run's egress records by (step, iteration, attempt), and its audit's `allow:` list (None
    when no step was audited)."""
    found: dict[tuple[str, int, int], list[dict[str, Any]]] = {}
    audit: list[str] | None = None
    for event in store.events(run_id):
        data = event.data
        if event.kind == EventKind.EGRESS and event.step_id:
            key = (event.step_id, int(data.get("iteration", 0)), int(data.get("attempt", 0)))
            found.setdefault(key, []).extend(data.get("requests", []))
        elif event.kind == EventKind.EGRESS_AUDIT:
            audit = [str(entry) for entry in data.get("allow", [])]
    return found, audit


def _egress_lines(requests: list[dict[str, Any]]) -> list[str]:
    """One line per destination: `host:port allowed|refused (N requests, B bytes out, B bytes in)`."""
    totals: dict[tuple[str, int, bool], list[int]] = {}
    for request in requests:
        key = (str(request["host"]), int(request["port"]), bool(request["allowed"]))
        total = totals.setdefault(key, [0, 0, 0])
        total[0] += 1
        total[1] += int(request.get("bytes_sent", 0))
        total[2] += int(request.get("bytes_received", 0))
    return [
        f"{host}:{port} {'allowed' if allowed else 'refused'} ({n} request(s), {out} B out, {back} B in)"
        for (host, port, allowed), (n, out, back) in sorted(totals.items())
    ]


def show_logs(store: Store, run_id: str, step: str | None, out: TextIO, *, follow: bool, poll: float = 0.25) -> int:
    """Print the log files of a run's attempts (of one step), in order; `follow` keeps printing
    new output until the run has finished."""
    run = store.run(run_id)
    if step is not None and not any(a.step_id == step for a in store.attempts(run.id)) and run.status in FINISHED:
        raise UsageError(f"run {run.id} has no step {step!r} with attempts")
    offsets: dict[str, int] = {}
    while True:
        for attempt in store.attempts(run.id):
            if (step is not None and attempt.step_id != step) or not attempt.log_path:
                continue
            path = Path(attempt.log_path)
            if not path.exists():
                continue
            with open(path, encoding="utf-8", errors="replace") as handle:
                handle.seek(offsets.get(attempt.log_path, 0))
                text = handle.read()
                offsets[attempt.log_path] = handle.tell()
            prefix = f"{attempt.step_id}#{attempt.number}" if step is None else ""
            for line in text.splitlines():
                out.write(printable(f"{prefix} | {line}" if prefix else line) + "\n")
        out.flush()
        if not follow or store.run(run.id).status in FINISHED:
            return 0
        time.sleep(poll)
