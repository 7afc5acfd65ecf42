"""Finding the runs that lost their worker or their task, and enqueueing them again, from every
`pipe worker`.

A run a worker executes holds a lease the worker renews every few seconds (runner/engine/lease.py).
When the worker dies (SIGKILL, a lost machine), Celery would deliver its task again only after the
broker's visibility timeout (hours: runner/workers/app.py). So each worker's main process looks,
every PIPE_ORPHAN_CHECK_INTERVAL seconds (default 30), for

- runs still `running` on some worker whose lease nobody holds (Store.orphaned_runs), and
- runs `pending` for more than PIPE_STALE_PENDING seconds (default 600) with nobody holding their lease
  (Store.stale_pending_runs): the submitter died between creating the run and enqueueing it, or
  the broker lost its queue (a Redis without persistence that restarted);

and sends `execute_run` for each to the queue it was submitted to (`runs.queue`), whichever
queues the looking worker consumes; the worker that takes the task takes the run
(runner/workers/tasks.py). This is Airflow's orphaned-task adoption (`[scheduler]
orphaned_tasks_check_interval`, Airflow 2.x) in pipe's terms. Before sending, a worker claims the
run in the store (Store.claim_requeue, one conditional UPDATE), so across all workers a run is
enqueued again at most once per REENQUEUE_AFTER seconds, until someone takes its lease. A
duplicate delivery (a run that was only waiting in a long queue) finds the run taken and does
nothing.
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
REENQUEUE_AFTER = 600.0  # seconds before any worker enqueues the same run again
STALE_PENDING = 600.0  # seconds a run may stay pending before its task is taken for lost


def check_interval(environ: Mapping[str, str] | None = None) -> float:
    """PIPE_ORPHAN_CHECK_INTERVAL in seconds (default 30; 0 turns the looking off). Raises
    UsageError for a value that is not a number of seconds."""
    return _seconds("PIPE_ORPHAN_CHECK_INTERVAL", DEFAULT_INTERVAL, environ)


def stale_pending(environ: Mapping[str, str] | None = None) -> float:
    """PIPE_STALE_PENDING in seconds (default 600): how long a run may stay pending before its
    task is taken for lost. Raises UsageError for a value that is not a number of seconds."""
    return _seconds("PIPE_STALE_PENDING", STALE_PENDING, environ)


def _seconds(name: str, default: float, environ: Mapping[str, str] | None) -> float:
    raw = (environ if environ is not None else os.environ).get(name, "")
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not math.isfinite(value) or value < 0:
        raise UsageError(f"{name}: {raw!r} is not a number of seconds")
    return value


class OrphanWatch:
    """Every `interval` seconds, enqueue again (`send(run_id, queue)`: the queue the run was
    submitted to, None when the store does not know it) the runs of `state_dir`'s store
    that lost their worker or their task (pending for more than `pending_after` seconds); a
    daemon thread, started by `start`, stopped by `stop`."""

    def __init__(
        self,
        state_dir: Path,
        send: Callable[[str, str | None], None],
        interval: float,
        pending_after: float = STALE_PENDING,
    ) -> None:
        self.state_dir = state_dir
        self.send = send
        self.interval = interval
        self.pending_after = pending_after
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def look(self, now: float | None = None) -> list[str]:
        """Enqueue the runs of dead workers and the stale pending runs that this worker claims
        (no worker enqueued them in the last REENQUEUE_AFTER seconds); returns their ids."""
        moment = time.time() if now is None else now
        store = Store(self.state_dir)
        try:
            found = store.orphaned_runs(moment) + store.stale_pending_runs(self.pending_after, moment)
            due = [(run, store.run(run).queue) for run in found if store.claim_requeue(run, REENQUEUE_AFTER, moment)]
        finally:
            store.close()
        for run, queue in due:
            self.send(run, queue)
            log.info("run %s lost its worker or its task; enqueued again", run)
        return [run for run, _ in due]

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
