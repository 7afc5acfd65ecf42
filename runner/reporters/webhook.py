"""The webhook reporter: the engine's events POSTed as JSON to a URL (chat bots, dashboards), at
most once per interval, each POST carrying the events since the last one, and always a final one.

Body: {"run": RUN_ID, "events": [{"at": ..., "event": KIND, ...}, ...]}. POSTs go through an Outbox,
off the step's critical path.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Mapping
from typing import Any

from runner.reporters.outbox import Outbox
from runner.reporters.throttle import Throttle


class WebhookReporter:
    """POSTs batches of events to `url`; a failed POST is retried with the next batch."""

    def __init__(self, url: str, interval: float, timeout: float = 10.0, outbox: Outbox | None = None) -> None:
        self.url = url
        self.timeout = timeout
        self._lock = threading.Lock()
        self._pending: list[dict[str, Any]] = []
        self._run = ""
        self._outbox = outbox or Outbox("webhook progress reports", spacing=interval)
        self._throttle = Throttle(interval, self._flush)

    def event(self, kind: str, data: Mapping[str, Any]) -> None:
        with self._lock:
            self._run = str(data.get("run", self._run))
            self._pending.append({"at": round(time.time(), 3), "event": kind, **data})
        if kind == "run_finished":
            self._throttle.finish()
        else:
            self._throttle.poke()

    def output(self, step: str, text: str) -> None:
        pass

    @property
    def failures(self) -> int:
        """How many POSTs failed so far."""
        return self._outbox.failures

    def settle(self) -> None:
        """Deliver the pending reports now (the run's end is about to be stored)."""
        self._outbox.settle()

    def close(self) -> None:
        self._outbox.close()

    def _flush(self) -> None:
        self._outbox.submit("events", self._send)

    def _send(self) -> None:
        """POST the events since the last POST; on failure they are kept for the next one and the
        error is raised (the outbox retries)."""
        with self._lock:
            events, self._pending = self._pending, []
        if not events:
            return
        body = json.dumps({"run": self._run, "events": events}, default=str).encode()
        request = urllib.request.Request(
            self.url, data=body, method="POST", headers={"Content-Type": "application/json", "User-Agent": "pipe"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read()
        except OSError:
            with self._lock:
                self._pending = events + self._pending
            raise
