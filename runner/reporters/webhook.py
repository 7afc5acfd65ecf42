"""The webhook reporter: the engine's events POSTed as JSON to a URL (chat bots, dashboards), at
most once per interval, each POST carrying the events since the last one, and always a final one.

Body: {"run": RUN_ID, "events": [{"at": ..., "event": KIND, ...}, ...]}.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Mapping
from typing import Any

from runner.reporters.throttle import Throttle


class WebhookReporter:
    """POSTs batches of events to `url`; a failed POST is retried with the next batch."""

    def __init__(self, url: str, interval: float, timeout: float = 10.0) -> None:
        self.url = url
        self.timeout = timeout
        self._lock = threading.Lock()
        self._pending: list[dict[str, Any]] = []
        self._run = ""
        self._throttle = Throttle(interval, self._flush)
        self.failures = 0

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

    def close(self) -> None:
        pass

    def _flush(self) -> None:
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
            self.failures += 1
            with self._lock:
                self._pending = events + self._pending
