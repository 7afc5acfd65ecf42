"""A run's life around its steps: creating it (taking its concurrency group first), owning it
(its lease), ending it (the final report settled before the status is stored) and, when it
failed, the pipeline's `on-failure` rollback."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from runner.actions.registry import EXTERNAL_UNDO
from runner.changes.rollback import Undoer, plan_rollback
from runner.changes.snapshot import Workspace
from runner.engine.events import Events
from runner.engine.lease import LEASE_SECONDS, Lease, process_alive
from runner.engine.options import RunOptions
from runner.engine.scope import RunScope
from runner.errors import PipeError, RunBusy, RunSkipped
from runner.masking import Masker
from runner.names import EventKind, RunStatus
from runner.pipeline.expressions import Expressions
from runner.pipeline.model import Pipeline
from runner.reporters import Reporter, settle
from runner.results import StepResult, agent_totals, summary
from runner.store import GroupBusy, ResumeState, Store

CONCURRENCY_POLL = 1.0  # seconds between looks at a busy concurrency group


class Lifecycle:
    """Creates, owns and ends one run of `pipeline` (see the module docstring)."""

    def __init__(self, pipeline: Pipeline, store: Store, options: RunOptions, reporter: Reporter) -> None:
        self.pipeline = pipeline
        self.store = store
        self.options = options
        self.reporter = reporter
        self.lease: Lease | None = None

    def create(
        self,
        inputs: Mapping[str, Any],
        masker: Masker,
        resume_state: ResumeState | None = None,
        workspace: Path | None = None,
    ) -> str:
        """Record the pipeline and a new run of it with `inputs` (stored masked), `resume_state`
        and `workspace` (see Store.create_run); returns its id.
        When the pipeline has a concurrency group, take it first: while a live run holds it, wait
        (polling every second, told once as a `concurrency_wait` event) or, with
        `if-running: skip`, raise RunSkipped (exit 0)."""
        pipeline = self.pipeline
        pipeline_id = self.store.add_pipeline(pipeline.name, pipeline.path, pipeline.digest, pipeline.source)
        masked = masker.mask_value(dict(inputs))
        concurrency = pipeline.concurrency
        if concurrency is None:
            return self.store.create_run(
                pipeline_id,
                masked,
                self.options.trigger,
                parent=self.options.parent,
                resume_state=resume_state,
                workspace=workspace,
                queue=self.options.queue,
            )
        group = Expressions({"inputs": dict(inputs), "env": dict(pipeline.env)}).render(concurrency.group)
        self.lease = Lease(self.options.state_dir)
        announced = False
        while True:
            try:
                return self.store.create_run(
                    pipeline_id,
                    masked,
                    self.options.trigger,
                    group=group,
                    lease=(self.lease.owner, self.lease.host, LEASE_SECONDS),
                    is_alive=process_alive,
                    parent=self.options.parent,
                    resume_state=resume_state,
                    workspace=workspace,
                    queue=self.options.queue,
                )
            except GroupBusy as busy:
                if concurrency.if_running == "skip":
                    raise RunSkipped(f"skipped: concurrency group {group!r} is busy with run {busy.holder}") from None
                if not announced:
                    self.reporter.event(EventKind.CONCURRENCY_WAIT.value, {"group": group, "holder": busy.holder})
                    announced = True
                time.sleep(CONCURRENCY_POLL)

    def claim(self, run_id: str) -> None:
        """Own run `run_id`: take its lease (renewed by a heartbeat thread until the run ends).
        Raises RunBusy when a live process holds it."""
        if self.lease is None:
            self.lease = Lease(self.options.state_dir, run_id)
        self.lease.bind(run_id)
        holder = self.lease.acquire()
        if holder is not None:
            raise RunBusy(f"run {run_id} is in use by {holder}; wait for it to finish or stop that process")

    def lost(self) -> bool:
        """Whether another process took the run's lease from this one (runner/engine/lease.py)."""
        return self.lease is not None and self.lease.lost.is_set()

    def release(self) -> None:
        """Give up the run's lease (at its end, or a resume refused while preparing)."""
        if self.lease is not None:
            self.lease.release()

    def finish(
        self, events: Events, status: RunStatus, error: str | None, results: list[StepResult], current: str | None
    ) -> None:
        """Report the end, then store it (`current`: the step a failed run failed at or a waiting
        run waits at): a runner killed in between leaves the run unfinished in the store and
        `pipe resume` finishes it, reporting again, so the final report is never lost behind a
        stored final status. The lease is released last."""
        try:
            events.emit(
                EventKind.RUN_FINISHED,
                status=status.value,
                error=error,
                steps=[{"step": r.step_id, **summary(r)} for r in results],
                **agent_totals(results),
            )
            settle(events.reporter)  # the final report is out (or given up on) before the end is stored
        finally:
            self.store.update_run(
                events.run_id, status=status.value, finished_at=time.time(), error=error, current_step=current
            )
            self.release()


def rollback_on_failure(scope: RunScope) -> None:
    """Apply the pipeline's `on-failure` rollback to a failed run; a conflict is reported as a
    `rollback_failed` event, not raised."""
    policy = scope.pipeline.on_failure
    if policy.rollback == "none":
        return
    mode = {"partial": "steps"}.get(policy.rollback, policy.rollback)
    events = scope.events
    try:
        plan = plan_rollback(scope.store, scope.run_id, mode, steps=policy.steps)
        events.emit(EventKind.ROLLBACK_STARTED, mode=policy.rollback, summary=plan.summary, changes=len(plan.changes))
        undoer = Undoer(scope.store, scope.objects, Workspace(scope.workspace), lambda _: scope.forge, EXTERNAL_UNDO)
        events.emit(EventKind.ROLLBACK_FINISHED, mode=policy.rollback, undone=undoer.apply(plan))
    except PipeError as problem:
        events.emit(EventKind.ROLLBACK_FAILED, mode=policy.rollback, error=scope.masker.mask(str(problem)))
