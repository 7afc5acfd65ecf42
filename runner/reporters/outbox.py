"""The outbox: network writes of reporters (issue comment, webhook) made by a background thread, so
a slow or dead API never sits on a step's critical path.

Jobs are "bring the destination up to date" functions, keyed: a job submitted while one with the
same key is pending replaces it (the newest state wins), and at most `capacity` keys wait, the
oldest dropped beyond that. Writes are at least `spacing` seconds apart (from the end of one to
the start of the next: the destination's rate), except once the outbox is closing. A job that
raises is retried with backoff while the outbox's retry budget (seconds spent on failures, in
total) lasts; once it is spent, pending and later jobs are dropped. `close()` waits at most
`grace` seconds for what is pending, then gives up, and reports what was lost in one warning.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

Job = Callable[[], None]


def _warn_on_stderr(message: str) -> None:
    print(f"pipe: warning: {message}", file=sys.stderr)


class Outbox:
    """A bounded queue of keyed jobs run in order by one daemon thread.

    `what` names the destination in the warning (e.g. "progress comment on issue #3"); `budget`
    and `grace` are seconds; `warn(message)` is called at most once, by `close()`.
    """

    def __init__(
        self,
        what: str,
        *,
        capacity: int = 16,
        budget: float = 10.0,
        grace: float = 3.0,
        spacing: float = 0.0,
        warn: Callable[[str], None] = _warn_on_stderr,
    ) -> None:
        self.what = what
        self.capacity = capacity
        self.budget = budget
        self.grace = grace
        self.spacing = spacing
        self._last_end = float("-inf")
        self._warn = warn
        self._pending: OrderedDict[str, Job] = OrderedDict()
        self._condition = threading.Condition()
        self._busy = False
        self._closed = False
        self._hurry = False
        self._spent = 0.0
        self.failures = 0
        self.dropped = 0
        self.last_error: str | None = None
        self._thread = threading.Thread(target=self._work, name=f"pipe-outbox {what}", daemon=True)
        self._thread.start()

    @property
    def exhausted(self) -> bool:
        """Whether the retry budget is spent (later jobs are dropped)."""
        return self._spent >= self.budget

    def submit(self, key: str, job: Job) -> None:
        """Queue `job` under `key` (replacing a pending one); never blocks on the network."""
        with self._condition:
            if self._closed or self.exhausted:
                self.dropped += 1
                return
            if key in self._pending:
                self._pending[key] = job
            else:
                if len(self._pending) >= self.capacity:
                    self._pending.popitem(last=False)
                    self.dropped += 1
                self._pending[key] = job
            self._condition.notify_all()

    def _work(self) -> None:
        delay = 0.25
        while True:
            with self._condition:
                while not self._pending and not self._closed:
                    self._condition.wait()
                if not self._pending:
                    return
                while (
                    not (self._closed or self._hurry)
                    and (early := self._last_end + self.spacing - time.monotonic()) > 0
                ):
                    self._condition.wait(early)
                if not self._pending:
                    continue
                key, job = self._pending.popitem(last=False)
                self._busy = True
            started = time.monotonic()
            try:
                job()
            except Exception as error:  # any failure of a report is counted, never raised into the run
                failed_for = time.monotonic() - started
                with self._condition:
                    self.failures += 1
                    self.last_error = f"{type(error).__name__}: {error}"
                    wait = min(delay, max(self.budget - self._spent - failed_for, 0.0))
                    self._spent += failed_for + wait
                    if self.exhausted:
                        self.dropped += 1 + len(self._pending)
                        self._pending.clear()
                    elif key not in self._pending:
                        self._pending[key] = job
                        self._pending.move_to_end(key, last=False)
                    self._last_end = time.monotonic()
                    self._busy = False
                    self._condition.notify_all()
                    if wait > 0 and not self.exhausted:
                        self._condition.wait(wait)
                delay = min(delay * 2, 4.0)
                continue
            delay = 0.25
            with self._condition:
                self._last_end = time.monotonic()
                self._busy = False
                self._condition.notify_all()

    def _drain(self) -> None:
        """With the condition held: wake the worker and wait until nothing is pending or being
        written, at most `grace` seconds (less when the retry budget is nearly spent)."""
        deadline = time.monotonic() + min(self.grace, max(self.budget - self._spent, 0.0))
        self._condition.notify_all()
        while (self._pending or self._busy) and not self.exhausted:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._condition.wait(left)

    def settle(self) -> None:
        """Write what is pending now, without the spacing, waiting up to `grace` seconds (less when
        the retry budget is nearly spent); the outbox stays open. Used before a run's end is stored,
        so its final report is not lost to a runner killed right after."""
        with self._condition:
            self._hurry = True
            self._drain()
            self._hurry = False

    def close(self) -> None:
        """Wait up to `grace` seconds (less when the retry budget is nearly spent) for pending jobs,
        then stop; warn once about anything not written."""
        with self._condition:
            self._closed = True
            self._drain()
            unwritten = len(self._pending) + (1 if self._busy else 0)
            self._pending.clear()
        lost = self.dropped + unwritten
        if lost:
            reason = self.last_error or f"no answer within {self.grace:g}s"
            self._warn(f"{lost} update(s) of the {self.what} were not written ({reason})")
