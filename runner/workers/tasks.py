"""The `execute_run(run_id)` task a worker runs: execute a run `pipe submit` (or a parent's
`pipeline` step) created `pending`, as `pipe run` would (runner/workers/execute.py), its console
output in the run's `worker.log`; or continue a run another worker executed, in a workspace
rebuilt on this worker (runner/workers/resume.py): one still `running` whose worker died (its
lease expired; runner/workers/orphans.py enqueues such runs again), from its last completed step,
or one `waiting` whose wait point `pipe approve|reject` decided, from that wait point.

Idempotent: a task delivered twice (acks late: a redelivery after a lost worker or the visibility
timeout) runs the run once. A run that ended is left alone, and between two deliveries racing,
the store's lease decides (Engine.start and a continuation take the lease first, then check the run's
status). A problem found before the run starts (no Docker engine, a missing secret on this
worker) ends the run `failed` with that message, so `pipe submit --wait` ends too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.errors import PipeError, RunBusy
from runner.names import EventKind, RunStatus
from runner.statedir import StateDir
from runner.store import Store
from runner.workers.app import TASK

log = logging.getLogger("pipe.worker")


@dataclass(frozen=True)
class WorkerOptions:
    """What `pipe worker` was given, for every run it executes: the state directory (shared with
    the submitters and the other workers: the store, objects, logs), the work directory where
    this worker makes its runs' workspaces (`WORK_DIR/RUN/workspace`; None: in the state
    directory), and the host's secret files, token file, CA bundle and host root (as `pipe run`'s
    options of those names)."""

    state_dir: Path
    work_dir: Path | None = None
    secret_files: list[Path] = field(default_factory=list)
    token_file: Path | None = None
    ca_bundle: Path | None = None
    host_root: str | None = None


def execute_run(run_id: str, options: WorkerOptions, worker: str) -> str:
    """Execute the `pending` run `run_id` on this worker (named `worker`, recorded on the run), or
    continue a run another worker executed: `running` on a worker that died (a live worker holds
    its lease: not run), or `waiting` at a wait point that was decided (`pipe approve`). Returns
    what happened, for the worker's log: `ran: exit CODE`, or `not run: REASON` (the run ended,
    runs outside the workers, or a live process holds its lease). Never raises for the run's own
    problems."""
    from runner.pipeline.spec import parse_pipeline
    from runner.workers.execute import Launch, execute
    from runner.workers.resume import resume

    store = Store(options.state_dir)
    try:
        record = store.run(run_id)
        definition = store.pipeline_definition(record.id)
        decided = record.status == RunStatus.WAITING and _decided(store, record.id)
    finally:
        store.close()
    # a run another worker executed: it died (running), or its wait point was decided (waiting)
    adopt = record.status if record.worker is not None and (record.status == RunStatus.RUNNING or decided) else None
    if record.status != RunStatus.PENDING and adopt is None:
        return f"not run: run {record.id} is {record.status}"
    logs = StateDir(options.state_dir).run(record.id)
    logs.root.mkdir(parents=True, exist_ok=True)
    with open(logs.worker_log, "a", encoding="utf-8") as out:
        try:
            pipeline = parse_pipeline(definition.encode(), record.pipeline_path)
            saved = record.resume_state
            launch = Launch(
                state_dir=options.state_dir,
                out=out,
                secret_files=list(options.secret_files),
                token_file=options.token_file,
                ca_bundle=options.ca_bundle,
                host_root=options.host_root,
                forge_settings=saved.forge,
                publish=saved.publish,
                default_image=saved.default_image,
                parent=(record.parent_id, record.child_key or "") if record.parent_id else None,
                trigger=record.trigger,
                worker=worker,
                workspace=options.work_dir / record.id / "workspace" if options.work_dir else None,
            )
            if adopt is not None:
                code = resume(record.id, launch, adopt=adopt)
            else:
                code = execute(pipeline, dict(record.inputs), launch, run_id=record.id)
        except RunBusy as busy:
            return f"not run: {busy}"
        except PipeError as problem:
            print(f"pipe: {problem}", file=out)
            expected = adopt or RunStatus.PENDING
            _fail_unstarted(options.state_dir, record.id, str(problem), worker, expected)
            return f"ran: failed before it started ({problem})"
    return f"ran: exit {code}"


def _decided(store: Store, run_id: str) -> bool:
    """Whether the wait point a waiting run stopped at (its newest attempt's) has a decision."""
    attempts = store.attempts(run_id)
    if not attempts:
        return False
    last = max(attempts, key=lambda attempt: attempt.id)
    found = store.approval(run_id, last.step_id, last.iteration)
    return found is not None and found.decision is not None


def _fail_unstarted(state_dir: Path, run_id: str, error: str, worker: str, expected: RunStatus) -> None:
    """End a run this worker could not start (`expected` pending) or continue (`expected`
    running or waiting) `failed` with `error` (a `run_finished` event stored), unless it is no longer in
    `expected` status or, for a run continued here, some process took its lease meanwhile."""
    import time

    store = Store(state_dir)
    try:
        lease = store.lease(run_id)
        held = expected != RunStatus.PENDING and lease.owner is not None and (lease.until or 0) > time.time()
        if store.run(run_id).status == expected and not held:
            store.add_event(
                run_id, EventKind.RUN_FINISHED.value, None, {"status": "failed", "error": error, "steps": []}
            )
            store.update_run(run_id, status=RunStatus.FAILED.value, error=error, finished_at=time.time(), worker=worker)
    finally:
        store.close()


def register(app: Any, options: WorkerOptions) -> Any:
    """Register `execute_run` on the Celery `app` as task `pipe.execute_run`, executing with
    `options`; the worker's name is the Celery node name (`pipe.PID@HOST`)."""

    @app.task(name=TASK, bind=True)  # type: ignore[untyped-decorator]
    def task(self: Any, run_id: str) -> str:
        outcome = execute_run(run_id, options, str(self.request.hostname))
        log.info("run %s: %s", run_id, outcome)
        return outcome

    return task
