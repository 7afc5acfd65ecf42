"""Reporting inside a GitHub Actions job (when GITHUB_ACTIONS=true), in the runner's formats
("Workflow commands for GitHub Actions"): every secret registered with `::add-mask::` first (the
runner hides those command lines and masks the values in its log), a log group per step, an
`::error::` annotation for a failed step, a markdown summary appended to $GITHUB_STEP_SUMMARY and
the run's results in $GITHUB_OUTPUT (`run-id`, `status`, `pull-request`)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TextIO

from runner.masking import variants
from runner.units import format_duration


def escape_data(value: str) -> str:
    """A workflow command's data, escaped as the runner expects (%, CR, LF)."""
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(value: str) -> str:
    return escape_data(value).replace(":", "%3A").replace(",", "%2C")


class GitHubActionsReporter:
    """Writes workflow commands to `stream`; `pull_request()` gives the run's pull request URL."""

    def __init__(
        self, stream: TextIO, environ: Mapping[str, str], secrets: Iterable[str], pull_request: Callable[[], str | None]
    ) -> None:
        self.stream = stream
        self.summary_path = environ.get("GITHUB_STEP_SUMMARY")
        self.output_path = environ.get("GITHUB_OUTPUT")
        self._pull_request = pull_request
        self._open_group = False
        masks: set[str] = set()
        for secret in secrets:
            masks |= variants(secret)
        for value in sorted(masks):
            self.stream.write(f"::add-mask::{escape_data(value)}\n")
        self.stream.flush()

    def event(self, kind: str, data: Mapping[str, Any]) -> None:
        step = data.get("step")
        if kind == "step_started" and step:
            self._close_group()
            self.stream.write(f"::group::{escape_data(str(step))}: {escape_data(str(data.get('name', step)))}\n")
            self._open_group = True
        elif kind == "step_finished" and step:
            self._close_group()
            if data.get("outcome") == "failure":
                title = escape_property(f"pipe: step {step} failed")
                message = escape_data(str(data.get("error") or "the step failed"))
                level = "warning" if data.get("conclusion") == "success" else "error"
                self.stream.write(f"::{level} title={title}::{message}\n")
        elif kind == "run_finished":
            self._close_group()
            self._write_summary(data)
            self._write_outputs(data)
        self.stream.flush()

    def output(self, step: str, text: str) -> None:
        pass  # the console reporter prints the lines, inside the group opened here

    def close(self) -> None:
        self._close_group()

    def _close_group(self) -> None:
        if self._open_group:
            self.stream.write("::endgroup::\n")
            self._open_group = False

    def _write_summary(self, data: Mapping[str, Any]) -> None:
        if not self.summary_path:
            return
        icons = {"success": "✅", "failure": "❌", "skipped": "⏭️", "cancelled": "⛔"}
        lines = [
            f"### pipe run `{data.get('run')}`: {data.get('status')}",
            "",
            "| step | outcome | conclusion | attempts | duration |",
            "| --- | --- | --- | --- | --- |",
        ]
        for step in data.get("steps", []):
            lines.append(
                f"| `{step['step']}` | {icons.get(step['outcome'], '')} {step['outcome']} | {step['conclusion']} "
                f"| {step['attempts']} | {format_duration(step['duration'])} |"
            )
        url = self._pull_request()
        if url:
            lines += ["", f"Pull request: {url}"]
        if data.get("error"):
            lines += ["", f"Error: {data['error']}"]
        with open(self.summary_path, "a", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")

    def _write_outputs(self, data: Mapping[str, Any]) -> None:
        if not self.output_path:
            return
        values = {
            "run-id": str(data.get("run", "")),
            "status": str(data.get("status", "")),
            "pull-request": self._pull_request() or "",
        }
        with open(self.output_path, "a", encoding="utf-8") as handle:
            for key, value in values.items():
                handle.write(f"{key}={value}\n")


def in_github_actions(environ: Mapping[str, str] | None = None) -> bool:
    return (environ if environ is not None else os.environ).get("GITHUB_ACTIONS") == "true"
