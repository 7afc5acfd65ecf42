"""The console: live progress with rich on a terminal (spinner, step, attempt n/m, elapsed), plain
lines otherwise, and a summary table of every step at the end. Every line passes through
`runner.terminal.printable`, so step output and forge text cannot drive the terminal."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TextIO

from runner.terminal import printable
from runner.units import format_duration

SYMBOLS = {"success": "✓", "failure": "✗", "skipped": "–", "cancelled": "⊘"}


def summary_rows(steps: list[Mapping[str, Any]]) -> list[tuple[str, ...]]:
    """(step, outcome, conclusion, attempts, duration) per step, for the final table (printable)."""
    rows: list[tuple[str, ...]] = []
    for step in steps:
        name = step["step"] + (f" #{step['iteration']}" if step.get("iteration") else "")
        outcome = step["outcome"] + (f" ({step['status']})" if step.get("status") in ("timeout", "oom") else "")
        cells = (name, outcome, step["conclusion"], str(step["attempts"]), format_duration(step["duration"]))
        rows.append(tuple(printable(str(cell)) for cell in cells))
    return rows


def _describe(kind: str, data: Mapping[str, Any]) -> str | None:
    """The plain line for an event (None: nothing to say)."""
    step = data.get("step", "")
    if kind == "run_started":
        return f"run {data['run']}: {data['pipeline']} ({data['steps']} steps)"
    if kind == "inputs_changed":
        changed = "; ".join(f"{s} ({', '.join(names)})" for s, names in data["steps"].items())
        return f"resume: the forge answers differently now, reading again from the first: {changed}"
    if kind == "concurrency_wait":
        return f"waiting: concurrency group {data['group']!r} is busy with run {data['holder']}"
    if kind == "image":
        return f"  image | {data['message']}"
    if kind == "step_started":
        return f"▶ {step}" + (f" (iteration {data['iteration']})" if data.get("iteration") else "")
    if kind == "step_skipped":
        return f"{SYMBOLS['skipped']} {step}: skipped ({data['reason']})"
    if kind == "step_error":
        return f"  {step}: {data['error']}"
    if kind == "attempt_started" and data["of"] > 1:
        return f"  {step}: attempt {data['attempt']}/{data['of']}"
    if kind == "retrying":
        return f"  {step}: retrying in {data['delay']:.1f}s (attempt {data['attempt']}/{data['of']})"
    if kind == "attempt_finished" and data.get("error"):
        return f"  {step}: attempt {data['attempt']} {data['status']}: {data['error']}"
    if kind == "step_finished":
        if data["outcome"] == "skipped":
            return None
        symbol = SYMBOLS.get(data["conclusion"], "?")
        note = " (continue-on-error)" if data["outcome"] != data["conclusion"] else ""
        return f"{symbol} {step}: {data['outcome']}{note} in {format_duration(data['duration'])}"
    if kind == "run_adopted":
        return f"run {data['run']}: continued on this worker (before: {data['worker'] or 'another worker'})"
    if kind == "resume_prepared" and data.get("paths"):
        return "\n".join(["resume: putting back what the steps that run again changed:"]
                         + [f"  reverted {path}" for path in data["paths"]])  # fmt: skip
    if kind == "egress_audit":  # ready to paste under `sandbox: {egress: ...}`
        return "egress audit: the run needed\n  allow: [" + ", ".join(printable(h) for h in data["allow"]) + "]"
    if kind == "run_finished":
        error = f": {data['error']}" if data.get("error") else ""
        agents = ""
        if "agent_cost_usd" in data:
            agents = f" (agents: ${data['agent_cost_usd']:.4f}, {data.get('agent_turns', 0)} turns)"
        return f"run {data['run']} {data['status']}{agents}{error}"
    return None


def next_commands(data: Mapping[str, Any]) -> list[str]:
    """After a run that failed or was cancelled, the commands to try next (empty otherwise)."""
    if data.get("status") not in ("failed", "cancelled"):
        return []
    run = data["run"]
    failed = next((s["step"] for s in data.get("steps", []) if s.get("outcome") in ("failure", "cancelled")), None)
    logs = f"pipe logs {run} {failed}" if failed else f"pipe logs {run}"
    return [
        "What to do next:",
        f"  {logs:<40} the full (masked) log" + (f" of {failed}" if failed else ""),
        f"  {'pipe show ' + run + ' --changes':<40} what each step changed",
        f"  {'pipe resume ' + run:<40} run again from the step that failed",
        f"  {'pipe rollback ' + run + ' --dry-run':<40} what undoing the run would do",
    ]


class PlainReporter:
    """Line-oriented output for logs and pipes: events as lines, output as `step | line`."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def event(self, kind: str, data: Mapping[str, Any]) -> None:
        line = _describe(kind, data)
        if line is not None:
            self.stream.write(printable(line) + "\n")
        if kind == "run_finished":
            self._summary(data["steps"])
            for hint in next_commands(data):
                self.stream.write(printable(hint) + "\n")
        self.stream.flush()

    def output(self, step: str, text: str) -> None:
        for line in text.splitlines():
            self.stream.write(printable(f"  {step} | {line}") + "\n")
        self.stream.flush()

    def _summary(self, steps: list[Mapping[str, Any]]) -> None:
        rows = [("step", "outcome", "conclusion", "attempts", "duration"), *summary_rows(steps)]
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        for row in rows:
            cells = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            self.stream.write("  " + cells.rstrip() + "\n")

    def close(self) -> None:
        self.stream.flush()


class RichReporter:
    """Live progress on a terminal with rich: one spinner line per running step with its attempt
    and elapsed time; output and finished steps are printed above it."""

    def __init__(self, stream: TextIO) -> None:
        from rich.console import Console
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.console = Console(file=stream, highlight=False)
        self.progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=self.console, transient=True
        )
        self.progress.start()
        self.tasks: dict[str, Any] = {}

    def event(self, kind: str, data: Mapping[str, Any]) -> None:
        step = data.get("step")
        if kind == "step_started" and step:
            self.tasks[step] = self.progress.add_task(printable(step), total=None)
        elif kind == "attempt_started" and step in self.tasks:
            attempt = f" attempt {data['attempt']}/{data['of']}" if data["of"] > 1 else ""
            self.progress.update(self.tasks[step], description=printable(f"{step}{attempt}"))
        elif kind == "step_finished" and step in self.tasks:
            self.progress.remove_task(self.tasks.pop(step))
        line = _describe(kind, data)
        if line is not None and kind != "attempt_started":
            self.console.print(printable(line), markup=False)
        if kind == "run_finished":
            self._summary(data["steps"])
            for hint in next_commands(data):
                self.console.print(printable(hint), markup=False)

    def output(self, step: str, text: str) -> None:
        for line in text.splitlines():
            self.console.print(printable(f"  {step} | {line}"), markup=False)

    def _summary(self, steps: list[Mapping[str, Any]]) -> None:
        from rich.table import Table

        table = Table("step", "outcome", "conclusion", "attempts", "duration", box=None)
        for row in summary_rows(steps):
            table.add_row(*row)
        self.console.print(table)

    def close(self) -> None:
        self.progress.stop()


def console_reporter(stream: TextIO) -> PlainReporter | RichReporter:
    """Rich live progress when `stream` is a terminal, plain lines otherwise."""
    return RichReporter(stream) if stream.isatty() else PlainReporter(stream)
