"""The Celery app of pipe's workers, configured for long tasks as Airflow's CeleryExecutor is
(airflow/providers/celery/executors/default_celery.py: `task_acks_late`, a Redis visibility
timeout of 21600 s, `worker_prefetch_multiplier` 1; and Celery's "Long running tasks" advice,
`task_reject_on_worker_lost`):

- `task_acks_late`: a task is acknowledged when it ends, not when a worker takes it, so a task of
  a worker that died is delivered again (the store's lease then decides who runs the run);
- `task_reject_on_worker_lost`: a task whose worker process was killed goes back to the queue;
- `worker_prefetch_multiplier = 1`: a worker reserves only the task it is about to run, so a run
  waits for the first free worker, not behind a busy one;
- `visibility_timeout` (Redis and SQS transports): how long an unacknowledged task stays invisible
  before it is delivered again; it must exceed the longest run (PIPE_VISIBILITY_TIMEOUT seconds,
  default 21600 = 6 h, above the default 30 min step timeout many times over); a run still leased
  when its task comes back is not run again;
- JSON only (`task_serializer`, `accept_content`): a task carries a run id, never a pickle;
- no result backend: the run's outcome is in the store.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

TASK = "pipe.execute_run"
DEFAULT_QUEUE = "pipe"
DEFAULT_VISIBILITY_TIMEOUT = 21600  # seconds, Airflow's CeleryExecutor default


def broker_url(environ: Mapping[str, str] | None = None) -> str | None:
    """PIPE_BROKER_URL (`redis://HOST:PORT/DB`, `amqp://USER:PASSWORD@HOST//`), None when unset or
    empty: runs then execute in-process, as without Celery."""
    value = (environ if environ is not None else os.environ).get("PIPE_BROKER_URL", "")
    return value or None


def visibility_timeout(environ: Mapping[str, str] | None = None) -> int:
    """PIPE_VISIBILITY_TIMEOUT in seconds (default 21600). Raises UsageError for a value that is
    not a positive whole number."""
    from runner.errors import UsageError

    raw = (environ if environ is not None else os.environ).get("PIPE_VISIBILITY_TIMEOUT", "")
    if not raw:
        return DEFAULT_VISIBILITY_TIMEOUT
    if not raw.isdigit() or int(raw) <= 0:
        raise UsageError(f"PIPE_VISIBILITY_TIMEOUT: {raw!r} is not a positive number of seconds")
    return int(raw)


def settings(url: str, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The Celery settings of the module docstring for broker `url`."""
    return {
        "broker_url": url,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {"visibility_timeout": visibility_timeout(environ)},
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_serializer": "json",
        "task_ignore_result": True,
        "task_default_queue": DEFAULT_QUEUE,
        "worker_hijack_root_logger": False,
        "worker_send_task_events": False,
    }


def make_app(url: str, environ: Mapping[str, str] | None = None) -> Any:
    """A Celery app (celery.Celery) for broker `url` with `settings`; `execute_run` is registered by
    runner/workers/tasks.py on a worker's app, while a submitter sends by name (`enqueue`)."""
    from celery import Celery

    app = Celery("pipe", set_as_current=False)
    app.conf.update(settings(url, environ))
    return app


def enqueue(app: Any, run_id: str, queue: str | None = None) -> None:
    """Send `execute_run(run_id)` to `queue` (default `pipe`). Raises kombu's OperationalError
    when the broker does not answer."""
    app.send_task(TASK, args=[run_id], queue=queue or DEFAULT_QUEUE)
