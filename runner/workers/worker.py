"""Starting a Celery worker (`pipe worker`) and listing live workers (`pipe workers`).

A worker is named `pipe.PID@HOST` (Celery's node name: the host and the worker's process id),
the name each run it executes records. Its pool is Celery's prefork pool with `concurrency`
processes, each executing one run at a time and then the next (a run leaves nothing behind: its
lease thread, sandboxes and reporters are closed, its SIGTERM handler put back). The heavy modules
(the engine, the pipeline loader, Docker's client) are imported before the pool forks, so a run
starts without importing them: replacing the process after each run (`max_tasks_per_child` 1)
cost about 2 s before its first step on this 2-core machine.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any

from runner.workers.app import DEFAULT_QUEUE, enqueue, make_app
from runner.workers.tasks import WorkerOptions, register


def node_name() -> str:
    """This process's worker name, `pipe.PID@HOST`."""
    return f"pipe.{os.getpid()}@{socket.gethostname()}"


def start_worker(broker: str, options: WorkerOptions, *, concurrency: int, queues: list[str], loglevel: str) -> int:
    """Run a Celery worker on `broker` consuming `queues` (default `pipe`) with `concurrency` pool
    processes until it is stopped (SIGTERM: warm shutdown, the runs under way finish first; a
    second SIGTERM or SIGQUIT: cold). Once ready, it also looks for the runs of dead workers and
    enqueues them on the queue each was submitted to (runner/workers/orphans.py). Returns its exit code."""
    from runner.workers.execute import preload

    preload()
    app = make_app(broker)
    register(app, options)
    watch_orphans(app, options, (queues or [DEFAULT_QUEUE])[0])
    argv = [
        "worker",
        f"--hostname={node_name()}",
        f"--concurrency={concurrency}",
        f"--queues={','.join(queues or [DEFAULT_QUEUE])}",
        f"--loglevel={loglevel}",
        "--without-gossip",
        "--without-mingle",
    ]
    try:
        app.worker_main(argv=argv)
    except SystemExit as done:
        return int(done.code or 0)
    return 0


def watch_orphans(app: Any, options: WorkerOptions, queue: str) -> None:
    """Start an OrphanWatch when the worker is ready (Celery's `worker_ready` signal, in the main
    process, after the pool has forked) and stop it at `worker_shutdown`; a run found is enqueued
    on the queue it was submitted to, else on `queue` (this worker's first). Raises UsageError for a
    bad PIPE_ORPHAN_CHECK_INTERVAL or PIPE_STALE_PENDING."""
    from celery import signals

    from runner.workers.orphans import OrphanWatch, check_interval, stale_pending

    def send(run_id: str, submitted_to: str | None) -> None:  # None: a run of a store before revision 0012
        enqueue(app, run_id, submitted_to or queue)

    watch = OrphanWatch(options.state_dir, send, check_interval(), stale_pending())

    def ready(**_: Any) -> None:
        watch.start()

    def shutdown(**_: Any) -> None:
        watch.stop()

    signals.worker_ready.connect(ready, weak=False)
    signals.worker_shutdown.connect(shutdown, weak=False)


@dataclass(frozen=True)
class LiveWorker:
    """A worker that answered: its name, pool size, and the run ids it executes now."""

    name: str
    concurrency: int
    runs: list[str]


def live_workers(broker: str, timeout: float = 1.0) -> list[LiveWorker]:
    """The workers that answer a Celery inspect broadcast within `timeout` seconds, by name, with
    the runs each executes (its active `execute_run` tasks' arguments)."""
    app = make_app(broker)
    inspect = app.control.inspect(timeout=timeout)
    stats: dict[str, Any] = inspect.stats() or {}
    active: dict[str, list[dict[str, Any]]] = inspect.active() or {}
    found: list[LiveWorker] = []
    for name in sorted(set(stats) | set(active)):
        pool = (stats.get(name) or {}).get("pool") or {}
        runs = [str((task.get("args") or [""])[0]) for task in active.get(name) or []]
        found.append(LiveWorker(name, int(pool.get("max-concurrency") or 0), runs))
    return found
