"""What the workers are doing, for `pipe ui`'s workers page (runner/ui/, given `fleet_status` by
runner/commands/ui.py): the live workers (Celery inspect: runner/workers/worker.py) with the runs
each executes and each run's last heartbeat (its lease renewal in the store, every 5 s while its
worker lives), the number of tasks waiting in each queue, and the runs whose worker died and that
wait to be taken over (runner/workers/orphans.py)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from runner.store import Store
from runner.workers.app import DEFAULT_QUEUE, make_app
from runner.workers.worker import live_workers


def queue_depths(broker: str, queues: Iterable[str]) -> dict[str, int]:
    """{queue: tasks waiting in it} (a passive queue declaration, which Redis and RabbitMQ both
    answer with the message count; 0 for a queue that does not exist yet). Raises kombu's
    OperationalError when the broker does not answer."""
    app = make_app(broker)
    found: dict[str, int] = {}
    with app.connection_for_read() as connection:
        channel = connection.default_channel
        for queue in queues:
            try:
                found[queue] = int(channel.queue_declare(queue=queue, passive=True).message_count)
            except connection.channel_errors:  # not declared yet: nobody sent to it
                found[queue] = 0
    return found


def fleet_status(
    broker: str, state_dir: Path, queues: Iterable[str] | None = None, timeout: float = 1.0
) -> dict[str, Any]:
    """The workers page's data, JSON-shaped:
    {"workers": [{"name", "concurrency", "runs": [{"id", "pipeline", "step", "heartbeat_age"}]}],
     "queues": {queue: waiting tasks}, "orphans": [run ids], "error": None | str};
    `heartbeat_age` in seconds (None: never renewed); `queues` None: the default queue and every
    queue a run of the store was submitted to. A broker that does not answer gives empty lists
    and `error` saying so, never an exception."""
    if queues is None:
        store = Store(state_dir)
        try:
            queues = sorted({DEFAULT_QUEUE, *store.submitted_queues()})
        finally:
            store.close()
    try:
        workers = live_workers(broker, timeout)
        depths = queue_depths(broker, queues)
    except Exception as problem:  # the page says the broker does not answer
        return {"workers": [], "queues": {}, "orphans": [], "error": f"the broker does not answer: {problem}"}
    store = Store(state_dir)
    try:
        now = time.time()
        listed = []
        for worker in workers:
            runs: list[dict[str, Any]] = []
            for run_id in worker.runs:
                try:
                    record = store.run(run_id)
                except Exception:  # a run of another state directory
                    runs.append({"id": run_id, "pipeline": "", "step": "", "heartbeat_age": None})
                    continue
                beat = store.lease(record.id).heartbeat_at
                age = round(now - beat, 1) if beat else None
                runs.append(
                    {
                        "id": record.id,
                        "pipeline": record.pipeline_name,
                        "step": record.current_step or "",
                        "heartbeat_age": age,
                    }
                )
            listed.append({"name": worker.name, "concurrency": worker.concurrency, "runs": runs})
        orphans = store.orphaned_runs(now)
    finally:
        store.close()
    return {"workers": listed, "queues": depths, "orphans": orphans, "error": None}
