"""Progress on the issue: one comment per pipeline and issue, edited in place as the run goes: the
steps as a checklist with status and duration, the failing step with the masked tail of its log,
the pull request at the end. At most one edit per interval, and always a final one. A later run for
the same issue edits the same comment (found by its hidden marker)."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from runner.errors import PipeError
from runner.forges.base import has_marker, with_marker
from runner.reporters.throttle import Throttle
from runner.units import format_duration

TAIL_LINES = 20
ICONS = {"running": "⏳", "success": "✅", "failure": "❌", "skipped": "⏭️", "cancelled": "⛔"}


class IssueCommentReporter:
    """Keeps the progress comment of `pipeline` on `issue` up to date on `forge`.

    `record(comment_id)` is told when the comment is created (so a rollback can delete it);
    `pull_request()` gives the run's pull request URL, if any, for the last edit.
    """

    def __init__(
        self,
        forge: Any,
        issue: int,
        pipeline: str,
        interval: float,
        record: Callable[[int], None],
        pull_request: Callable[[], str | None],
    ) -> None:
        self.forge = forge
        self.issue = issue
        self.key = f"progress/{pipeline}/{issue}"
        self.pipeline = pipeline
        self._record = record
        self._pull_request = pull_request
        self._lock = threading.Lock()
        self._steps: dict[str, dict[str, Any]] = {}
        self._tails: dict[str, deque[str]] = {}
        self._run_id = ""
        self._status = "running"
        self._failed: str | None = None
        self._comment_id: int | None = None
        self._throttle = Throttle(interval, self._flush)
        self.failures = 0

    def event(self, kind: str, data: Mapping[str, Any]) -> None:
        step = data.get("step")
        with self._lock:
            if kind in ("run_started", "run_resumed"):
                self._run_id = str(data.get("run", ""))
            elif kind == "step_started" and step:
                self._steps[step] = {"status": "running", "duration": None}
            elif kind == "step_skipped" and step:
                self._steps[step] = {"status": "skipped", "duration": None}
            elif kind in ("step_finished", "step_recalled") and step:
                self._steps[step] = {
                    "status": data["conclusion"] if data["outcome"] != "skipped" else "skipped",
                    "duration": data["duration"],
                    "error": data.get("error"),
                }
                if data["outcome"] == "failure" and self._failed is None:
                    self._failed = step
            elif kind == "run_finished":
                self._status = str(data["status"])
        if kind in ("run_started", "run_resumed"):
            self._throttle.poke()  # the first edit is immediate: the comment exists from the start
        elif kind == "run_finished":
            self._throttle.finish()
        elif kind in ("step_started", "step_finished", "step_skipped"):
            self._throttle.poke()

    def output(self, step: str, text: str) -> None:
        with self._lock:
            tail = self._tails.setdefault(step, deque(maxlen=TAIL_LINES))
            tail.extend(text.splitlines())

    def close(self) -> None:
        pass

    def render(self) -> str:
        with self._lock:
            lines = [f"### pipe: {self.pipeline} ({self._status})", "", f"Run `{self._run_id}`", ""]
            for step, state in self._steps.items():
                mark = "x" if state["status"] in ("success", "skipped") else " "
                took = f" ({format_duration(state['duration'])})" if state.get("duration") is not None else ""
                lines.append(f"- [{mark}] {ICONS.get(state['status'], '')} `{step}` {state['status']}{took}")
            if self._failed is not None:
                error = self._steps[self._failed].get("error") or "failed"
                lines += ["", f"**`{self._failed}` failed:** {error}"]
                tail = list(self._tails.get(self._failed, ()))
                if tail:
                    lines += ["", "```", *tail, "```"]
        url = self._pull_request()
        if url:
            lines += ["", f"Pull request: {url}"]
        return with_marker("\n".join(lines), "progress", self.key)

    def _flush(self) -> None:
        """Write the comment; a forge error is counted, never raised (progress must not fail a run)."""
        try:
            self._write(self.render())
        except PipeError:
            self.failures += 1

    def _write(self, body: str) -> None:
        if self._comment_id is None:
            found = next((c for c in self.forge.comments(self.issue) if has_marker(c.body, "progress", self.key)), None)
            if found is None:
                created = self.forge.create_comment(self.issue, body)
                self._comment_id = created.id
                self._record(created.id)
                return
            self._comment_id = found.id
        self.forge.update_comment(self.issue, self._comment_id, body)
