"""Reporters: where a run's progress goes. Each receives the engine's events (`event`) and the
masked output of steps (`output`); `Fanout` sends to several. The command builds a run's whole
reporter with `run_reporter` (the console plus the pipeline's `report:` destinations) and passes
it to the engine, which only calls the Reporter protocol.

Event kinds and their payloads: runner/names.py (`EventKind`). Reporters ignore kinds they do
not know.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from runner.pipeline.model import Pipeline


class Reporter(Protocol):
    def event(self, kind: str, data: Mapping[str, Any]) -> None:
        """One engine event; data is JSON-serialisable and already masked."""
        ...

    def output(self, step: str, text: str) -> None:
        """Masked output of a step: whole lines (the last may lack its newline at the end)."""
        ...

    def close(self) -> None:
        """The run is over; release the terminal."""
        ...


class Fanout:
    """Sends everything to each of `reporters` in order."""

    def __init__(self, *reporters: Reporter) -> None:
        self.reporters = reporters

    def event(self, kind: str, data: Mapping[str, Any]) -> None:
        for reporter in self.reporters:
            reporter.event(kind, data)

    def output(self, step: str, text: str) -> None:
        for reporter in self.reporters:
            reporter.output(step, text)

    def settle(self) -> None:
        settle(*self.reporters)

    def close(self) -> None:
        for reporter in self.reporters:
            reporter.close()


def settle(*reporters: Reporter) -> None:
    """Let each reporter that writes in the background (it has a `settle()`) deliver what is
    pending, within its own grace: called before a run's end is stored."""
    for reporter in reporters:
        method = getattr(reporter, "settle", None)
        if callable(method):
            method()


RecordExternal = Callable[[str, str, str, Mapping[str, Any]], None]
"""Records an effect of a reporter outside the workspace (a progress comment) so a rollback can
undo it: (run id, change type, target, data)."""


class PipelineReporters:
    """The console (after `first`, so a GitHub Actions log group opens before the console prints
    a step's lines), joined when the run starts (`run_started` or `run_resumed`) by the reporters
    `later(run_id)` builds: the pipeline's destinations whose templates may name the run."""

    def __init__(self, first: list[Reporter], console: Reporter, later: Callable[[str], list[Reporter]]) -> None:
        self._lock = threading.Lock()
        self._reporters: tuple[Reporter, ...] = (*first, console)
        self._later: Callable[[str], list[Reporter]] | None = later

    def event(self, kind: str, data: Mapping[str, Any]) -> None:
        if kind in ("run_started", "run_resumed"):
            with self._lock:
                later, self._later = self._later, None
            if later is not None:
                self._reporters = (*self._reporters, *later(str(data.get("run", ""))))
        for reporter in self._reporters:
            reporter.event(kind, data)

    def output(self, step: str, text: str) -> None:
        for reporter in self._reporters:
            reporter.output(step, text)

    def settle(self) -> None:
        settle(*self._reporters)

    def close(self) -> None:
        for reporter in self._reporters:
            reporter.close()


def run_reporter(
    console: Reporter,
    pipeline: Pipeline,
    inputs: Mapping[str, Any],
    *,
    forge: Any,
    publish: bool,
    environ: Mapping[str, str],
    secrets: Iterable[str],
    pull_request: Callable[[], str | None],
    record: RecordExternal,
) -> Reporter:
    """A run's whole reporter: `console`, the GitHub Actions workflow commands when running
    there (`environ`; every value in `secrets` masked in the log first), and the pipeline's
    `report:` destinations: a progress comment on an issue (with a `forge`, unless `publish` is
    False; its creation recorded through `record`) and a webhook. Their templates render with
    `inputs`, the pipeline's `env` and the run id once the run starts (TemplateError, ValueError
    for an issue that is not a number). `pull_request()` gives the run's pull request URL."""
    from runner.pipeline.expressions import Expressions
    from runner.reporters.github_actions import GitHubActionsReporter, in_github_actions
    from runner.reporters.issue_comment import IssueCommentReporter
    from runner.reporters.webhook import WebhookReporter

    report = pipeline.report
    first: list[Reporter] = []
    if in_github_actions(environ):
        first.append(GitHubActionsReporter(sys.stdout, environ, list(secrets), pull_request))

    def later(run_id: str) -> list[Reporter]:
        expressions = Expressions({"inputs": dict(inputs), "run": {"id": run_id}, "env": dict(pipeline.env)})
        built: list[Reporter] = []
        if report.issue_comment is not None and forge is not None and publish:
            issue = int(expressions.render(str(report.issue_comment.issue)))

            def record_comment(comment_id: int) -> None:
                data = {"issue": issue, "comment_id": comment_id, "forge": forge.describe()}
                record(run_id, "comment_create", f"#{issue}", data)

            interval = report.issue_comment.interval
            built.append(IssueCommentReporter(forge, issue, pipeline.name, interval, record_comment, pull_request))
        if report.webhook is not None:
            built.append(WebhookReporter(expressions.render(report.webhook.url), report.webhook.interval))
        return built

    if report.issue_comment is None and report.webhook is None and not first:
        return console
    return PipelineReporters(first, console, later)
