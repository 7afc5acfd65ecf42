"""Progress on the issue: one comment per pipeline and issue, edited in place as the run goes: the
steps as a checklist with status and duration, the failing step with the masked tail of its log,
the pull request at the end. At most one edit per interval, and always a final one. A later run for
the same issue edits the same comment (found by its hidden marker). Writes go through an Outbox:
a dead API never delays a step, and costs at most its grace period at the end of the run."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from runner.forges.base import has_marker, with_marker
from runner.forges.stamp import stamp
from runner.reporters.outbox import Outbox
from runner.reporters.throttle import Throttle
from runner.units import format_duration

TAIL_LINES = 20
ICONS = {"running": "⏳", "success": "✅", "failure": "❌", "skipped": "⏭️", "cancelled": "⛔"}


class IssueCommentReporter:
    """Keeps the progress comment of `pipeline` on `issue` up to date on `forge`.

    `record(comment_id)` is told when the comment is created (so a rollback can delete it);
    `pull_request()` gives the run's pull request URL, if any, for the last edit. Writes are made
    by `outbox` (default: one of its own); `close()` waits for the last one within its grace.
    """

    def __init__(
        self,
        forge: Any,
        issue: int,
        pipeline: str,
        interval: float,
        record: Callable[[int], None],
        pull_request: Callable[[], str | None],
        outbox: Outbox | None = None,
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
        self._outbox = outbox or Outbox(f"progress comment on issue #{issue}", spacing=interval)
        self._throttle = Throttle(interval, self._flush)

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

    @property
    def failures(self) -> int:
        """How many writes of the comment failed so far."""
        return self._outbox.failures

    def settle(self) -> None:
        """Deliver the pending edit now (the run's end is about to be stored)."""
        self._outbox.settle()

    def close(self) -> None:
        self._outbox.close()

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
        return stamp(with_marker("\n".join(lines), "progress", self.key), self._run_id or "unknown")

    def _flush(self) -> None:
        """Queue a write of the comment as it is when the write is made (never blocks; a forge
        error is retried by the outbox, never raised: progress must not fail a run)."""
        self._outbox.submit(self.key, lambda: self._write(self.render()))

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
