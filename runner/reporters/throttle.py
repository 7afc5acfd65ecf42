"""At most one flush per interval, the last one never lost: the rate limit shared by the reporters
that write to the network (issue comment, webhook)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Throttle:
    """Calls `flush` when `poke()` is called, but at most once every `interval` seconds: a poke in
    between schedules one flush for when the interval has passed. `finish()` flushes now (the final
    state) and stops the timer. Flushes never overlap."""

    def __init__(self, interval: float, flush: Callable[[], None]) -> None:
        self.interval = interval
        self._flush = flush
        self._lock = threading.Lock()
        self._last = 0.0
        self._timer: threading.Timer | None = None
        self._finished = False

    def poke(self) -> None:
        with self._lock:
            if self._finished or self._timer is not None:
                return
            wait = self._last + self.interval - time.monotonic()
            if wait > 0:
                self._timer = threading.Timer(wait, self._from_timer)
                self._timer.daemon = True
                self._timer.start()
                return
            self._run()

    def _from_timer(self) -> None:
        with self._lock:
            self._timer = None
            if not self._finished:
                self._run()

    def _run(self) -> None:
        self._last = time.monotonic()
        self._flush()

    def finish(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._finished = True
            self._run()
