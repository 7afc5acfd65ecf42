"""Finding the runs of dead workers and enqueueing them again, from every `pipe worker`.

A run a worker executes holds a lease the worker renews every few seconds (runner/engine/lease.py).
When the worker dies (SIGKILL, a lost machine), Celery would deliver its task again only after the
broker's visibility timeout (hours: runner/workers/app.py). So each worker's main process looks,
every PIPE_ORPHAN_CHECK_INTERVAL seconds (default 30), for runs still `running` on some worker
whose lease nobody holds (Store.orphaned_runs), and sends `execute_run` for each to its first
queue; the worker that takes the task takes the run over (runner/workers/tasks.py). This is
Airflow's orphaned-task adoption (`[scheduler] orphaned_tasks_check_interval`, Airflow 2.x) in
pipe's terms: the store's lease, not a scheduler, decides who continues a run, so every worker may
look and enqueue; extra deliveries find the lease taken and do nothing. One worker enqueues a run
again at most once per `REENQUEUE_AFTER` seconds.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from runner.errors import UsageError
from runner.store import Store

log = logging.getLogger("pipe.worker")

DEFAULT_INTERVAL = 30.0  # seconds between two looks
REENQUEUE_AFTER = 600.0  # seconds before this worker enqueues the same run again


def check_interval(environ: Mapping[str, str] | None = None) -> float:
    """PIPE_ORPHAN_CHECK_INTERVAL in seconds (default 30; 0 turns the looking off). Raises
    UsageError for a value that is not a number of seconds."""
    raw = (environ if environ is not None else os.environ).get("PIPE_ORPHAN_CHECK_INTERVAL", "")
    if not raw:
        return DEFAULT_INTERVAL
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not math.isfinite(value) or value < 0:
        raise UsageError(f"PIPE_ORPHAN_CHECK_INTERVAL: {raw!r} is not a number of seconds")
    return value


class OrphanWatch:
    """Every `interval` seconds, enqueue again (`send(run_id)`) the runs of `state_dir`'s store
    that lost their worker; a daemon thread, started by `start`, stopped by `stop`."""

    def __init__(self, state_dir: Path, send: Callable[[str], None], interval: float) -> None:
        self.state_dir = state_dir
        self.send = send
        self.interval = interval
        self.sent: dict[str, float] = {}  # run id -> when this worker last enqueued it (monotonic)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def look(self, now: float | None = None) -> list[str]:
        """Enqueue the orphaned runs not enqueued by this worker in the last REENQUEUE_AFTER
        seconds; returns their ids."""
        moment = time.monotonic() if now is None else now
        store = Store(self.state_dir)
        try:
            orphans = store.orphaned_runs()
        finally:
            store.close()
        due = [run for run in orphans if moment - self.sent.get(run, -REENQUEUE_AFTER) >= REENQUEUE_AFTER]
        for run in due:
            self.send(run)
            self.sent[run] = moment
            log.info("run %s: its worker stopped renewing its lease; enqueued to be taken over", run)
        self.sent = {run: when for run, when in self.sent.items() if moment - when < REENQUEUE_AFTER}
        return due

    def start(self) -> None:
        """Look every `interval` seconds from a daemon thread (not at all for 0)."""
        if self.interval <= 0:
            return
        self._thread = threading.Thread(target=self._loop, name="pipe-orphans", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.look()
            except Exception as problem:  # a store or broker hiccup: look again next time
                log.warning("looking for runs of stopped workers failed: %s", problem)

    def stop(self) -> None:
        """Stop looking (waits for a look under way)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
