"""Celery execution: with a broker (PIPE_BROKER_URL: Redis, or RabbitMQ by configuration alone),
`pipe submit` creates a run `pending` in the store and enqueues its id; `pipe worker` processes
(Celery workers, on any machine sharing the store and state directory) take `execute_run(run_id)`
tasks and execute the run as `pipe run` would (runner/workers/execute.py); `pipe workers` lists
live workers and what each runs. The store's run lease is the guard against a run executed twice.

    app.py      the Celery app and its settings (Airflow's CeleryExecutor's, for long tasks)
    execute.py  executing one run in this process (shared with `pipe run`)
    submit.py   creating a run `pending` and enqueueing it; following it to its end
    tasks.py    the `execute_run` task
    worker.py   starting a worker; listing live workers (Celery inspect)

Layering: beside runner.ui and runner.serve (docs/architecture.md, "Layers"); the commands call it.
"""
