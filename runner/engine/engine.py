"""The engine: one run of a pipeline from start (or resume) to end. It checks what must hold
before anything runs, builds the run's frozen scope (runner/engine/scope.py), starts its
sandboxes, change recording and egress, hands the steps to the step runner
(runner/engine/steps.py), then ends the run through its lifecycle (runner/engine/lifecycle.py).

Reporters are built by the command and passed in; the engine only calls the Reporter protocol.
Layering and the data flow of a run: docs/architecture.md.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from runner.backend import GuardedBackend
from runner.changes.gitobjects import GitObjects
from runner.changes.objects import ObjectStore
from runner.changes.recording import Recorder
from runner.changes.snapshot import Workspace
from runner.changes.watch import Watcher
from runner.egress.keys import KeyRoute, key_routes, refuse_keys_in_agent_env
from runner.egress.run import RunEgress
from runner.engine.attempts import Attempts
from runner.engine.cabundle import install_ca_bundle
from runner.engine.egresslog import EgressLog
from runner.engine.environment import render_pipeline_env, sandbox_plan
from runner.engine.events import Events
from runner.engine.lifecycle import Lifecycle, rollback_on_failure
from runner.engine.options import ResumePoint, RunOptions
from runner.engine.sandboxing import Sandboxes, check_workspace, prepare_workspace
from runner.engine.scope import RunScope, resume_state, sandbox_settings
from runner.engine.steps import StepRunner
from runner.errors import EngineUnavailable, InputRefused, PipeError, RunBusy
from runner.masking import Masker
from runner.names import EventKind, Outcome, RunStatus
from runner.pipeline.model import Pipeline, Step
from runner.reporters import Reporter
from runner.results import RunResult, StepResult, summary
from runner.statedir import StateDir
from runner.store import RunState, Store
from sandbox.base import Backend

__all__ = ["Engine", "ResumePoint", "RunOptions"]


class Engine:
    """Runs one pipeline; create one per run. Collaborators are passed in (no global state):
    `reporter` is the run's whole reporter (built by the command), `state` the run state its git
    and forge actions share (None: a fresh one, or on resume the one stored with the run)."""

    def __init__(
        self,
        pipeline: Pipeline,
        store: Store,
        backend: Backend,
        reporter: Reporter,
        options: RunOptions,
        state: RunState | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.store = store
        # a backend made elsewhere (tests, embedding) is wrapped too: its errors are always pipe's
        self.backend = backend if isinstance(backend, GuardedBackend) else GuardedBackend(backend)
        self.reporter = reporter
        self.options = options
        self.masker = Masker(options.secrets.values())
        for values in options.credentials.values():
            if "GITHUB_TOKEN" in values:
                self.masker.add(values["GITHUB_TOKEN"])
        self.state = state
        self.run_id = ""
        self._lifecycle = Lifecycle(pipeline, store, options, reporter)
        self._refused: InputRefused | None = None
        self._env_problem: PipeError | None = None  # the pipeline's `env:` did not render

    def run(self, inputs: Mapping[str, Any]) -> RunResult:
        """Execute the pipeline with resolved `inputs` as a new run; returns the RunResult (never
        raises for a failing step). Raises EngineUnavailable when the engine does not answer,
        before any run is recorded, PipeError for problems found before the first step, RunSkipped
        when its concurrency group is busy and it skips, and InputRefused (exit 2, the run stored
        failed) when a step refused what it was given."""
        self.backend.check()
        if self.options.workspace is not None:
            check_workspace(self.options.workspace, self.options.state_dir)
            forge_dir = getattr(self.options.forge, "directory", None)
            if isinstance(forge_dir, Path):
                check_workspace(self.options.workspace, forge_dir, "the local forge")
        ca_bundle = self._install_ca_bundle()
        given = self.options.workspace
        if given is not None:  # made and recorded with the run, so a resume at any moment uses it
            prepare_workspace(given)
        state = resume_state(self.options, self.state or RunState())
        run_id = self._lifecycle.create(inputs, self.masker, state, given)
        self.claim(run_id)
        workspace = given or StateDir(self.options.state_dir).run(run_id).workspace
        if given is None:
            prepare_workspace(workspace)
        self.store.update_run(run_id, status=RunStatus.RUNNING.value, started_at=time.time(), workspace=str(workspace))
        scope = self._scope(dict(inputs), workspace, self.state or RunState(), ca_bundle)
        return self._refuse_or(self._execute(scope, list(self.pipeline.steps), [], {}, None))

    def start(self, run_id: str) -> RunResult:
        """Execute run `run_id`, created `pending` beforehand with its inputs (`pipe submit`, or a
        parent's `pipeline` step with a broker: runner/workers/); the inputs are the stored ones.
        The lease is the guard against running it twice: it is taken first (RunBusy, exit 2, when
        a live process holds it), then the run must still be `pending` (else the lease is given
        back and RunBusy raised: it ran, or runs, elsewhere). `options.worker` is recorded on the
        run. Raises otherwise as `run` does."""
        self.backend.check()
        self.claim(run_id)
        record = self.store.run(run_id)
        if record.status != RunStatus.PENDING:
            self.unclaim()
            raise RunBusy(f"run {run_id} is {record.status}, not pending: it is not run again")
        ca_bundle = self._install_ca_bundle()
        workspace = self.options.workspace or StateDir(self.options.state_dir).run(run_id).workspace
        prepare_workspace(workspace)
        self.store.update_run(
            run_id,
            status=RunStatus.RUNNING.value,
            started_at=time.time(),
            workspace=str(workspace),
            worker=self.options.worker,
        )
        scope = self._scope(dict(record.inputs), workspace, self.state or RunState(), ca_bundle)
        return self._refuse_or(self._execute(scope, list(self.pipeline.steps), [], {}, None))

    def resume(self, point: ResumePoint) -> RunResult:
        """Continue the stored run `point.run_id` from top-level step `point.restart_at`, the
        results of earlier steps kept (their outputs feed templates), `point.skip` skipped.
        The caller has claimed the run and undone the changes of the steps that run again (see
        runner/changes/resume.py). Raises as `run` does."""
        self.backend.check()
        ca_bundle = self._install_ca_bundle()
        record = self.store.run(point.run_id)
        check_workspace(Path(record.workspace), self.options.state_dir)
        self.run_id = record.id
        earlier = [
            StepResult(
                stored.step_id,
                Outcome(stored.outcome),
                Outcome(stored.conclusion),
                stored.iteration,
                stored.attempts,
                stored.outputs,
                stored.started_at,
                stored.finished_at,
                error=stored.error,
            )
            for stored in sorted(self.store.steps(record.id), key=lambda s: (s.start_mark, s.position, s.iteration))
        ]
        previous: dict[tuple[str, int], int] = {}
        for attempt in self.store.attempts(record.id):
            key = (attempt.step_id, attempt.iteration)
            previous[key] = max(previous.get(key, 0), attempt.number)
        state = self.state or record.resume_state.state
        worker = {"worker": self.options.worker} if self.options.worker else {}
        self.store.update_run(record.id, status=RunStatus.RUNNING.value, finished_at=None, error=None, **worker)
        scope = self._scope(dict(record.inputs), Path(record.workspace), state, ca_bundle)
        steps = list(self.pipeline.steps[point.restart_at :])
        return self._refuse_or(self._execute(scope, steps, earlier, previous, point))

    def claim(self, run_id: str) -> None:
        """Own the run: take its lease (renewed by a heartbeat thread until the run ends).
        Raises RunBusy when a live process holds it."""
        self.run_id = run_id
        self._lifecycle.claim(run_id)

    def unclaim(self) -> None:
        """Give up the run's lease without running it (a resume refused while preparing)."""
        self._lifecycle.release()

    def _refuse_or(self, result: RunResult) -> RunResult:
        """`result`, or the InputRefused a step raised (the run is stored failed; exit 2)."""
        if self._refused is not None:
            raise self._refused
        return result

    def _refuse(self, problem: InputRefused) -> None:
        self._refused = problem

    def _install_ca_bundle(self) -> Path | None:
        """Check and copy the person's CA bundle (raises UsageError before anything runs)."""
        source = self.options.ca_bundle
        return install_ca_bundle(source, self.options.state_dir) if source is not None else None

    def _scope(self, inputs: dict[str, Any], workspace: Path, state: RunState, ca_bundle: Path | None) -> RunScope:
        """The run's scope, built once (the pipeline's `env:` rendered; when it does not render,
        {} and the run fails before its first step: see `_execute`)."""
        run_id, options = self.run_id, self.options
        events = Events(run_id, self.store, self.reporter, self.masker)
        objects = ObjectStore(StateDir(options.state_dir).objects)
        policies = [sandbox_settings(options, self.pipeline, step).egress for step in self.pipeline.all_steps()]
        routes: list[KeyRoute] = []
        try:  # model keys stay in the run's key proxy (runner/egress/keys.py)
            refuse_keys_in_agent_env(self.pipeline.all_steps())
            routes = key_routes(options.secrets, os.environ)
        except PipeError as problem:
            self._env_problem = problem
        egress = RunEgress(
            self.backend,
            [p for p in policies if p is not None],
            {"pipe.run": run_id, "pipe.pipeline": self.pipeline.name},
            lambda line: events.emit(EventKind.IMAGE, message=line),
            routes,
            ca_bundle.read_bytes() if ca_bundle is not None else None,
        )
        pipeline_env: dict[str, str] = {}
        try:
            pipeline_env = render_pipeline_env(self.pipeline, inputs, options.secrets, run_id)
        except PipeError as problem:
            self._env_problem = problem
        return RunScope(
            run_id=run_id,
            pipeline=self.pipeline,
            options=options,
            store=self.store,
            backend=self.backend,
            events=events,
            masker=self.masker,
            forge=options.forge,
            inputs=inputs,
            workspace=workspace,
            run_dir=StateDir(options.state_dir).run(run_id).root,
            objects=objects,
            recorder=Recorder(self.store, objects, Workspace(workspace), run_id, self.masker),
            watcher=Watcher(workspace),
            egress=egress,
            state=state,
            pipeline_env=pipeline_env,
            credentials=options.credentials,
            ca_bundle=ca_bundle,
            git_objects=self._git_objects(run_id, workspace, objects),
            lease=self._lifecycle.lease,
        )

    def _git_objects(self, run_id: str, workspace: Path, objects: ObjectStore) -> GitObjects | None:
        """For a run a worker executes (`options.worker`), its kept git objects, continuing the
        listing its state holds (runner/changes/gitobjects.py); None otherwise."""
        if self.options.worker is None:
            return None
        kept = self.store.run(run_id).resume_state.git_objects
        try:
            return GitObjects(Workspace(workspace), objects, kept)
        except (OSError, ValueError):  # the listing is gone or damaged: keep them all again
            return GitObjects(Workspace(workspace), objects)

    def _execute(
        self,
        scope: RunScope,
        steps: list[Step],
        earlier: list[StepResult],
        previous: dict[tuple[str, int], int],
        point: ResumePoint | None,
    ) -> RunResult:
        """Run `steps` in `scope` (after `earlier` results, on resume) and end the run: stored,
        reported, its sandboxes, proxy and watcher closed, rolled back per `on-failure` when it
        failed. Raises EngineUnavailable (the run is stored failed first)."""
        (scope.run_dir / "logs").mkdir(parents=True, exist_ok=True)
        shutil.rmtree(scope.run_dir / "sandboxes", ignore_errors=True)  # channels a killed runner left (FIFOs only)
        images: dict[str, str] = {}

        def image_for(image: str) -> str:
            if image not in images:
                images[image] = self.backend.ensure_image(
                    image, lambda line: scope.events.emit(EventKind.IMAGE, message=line)
                )
            return images[image]

        options = self.options
        sandboxes = Sandboxes(
            self.backend,
            scope.workspace,
            scope.run_dir / "sandboxes",
            lambda step: sandbox_plan(scope, step),
            image_for,
            ahead=options.ahead,
            ca_bundle=scope.ca_bundle,
            max_log=options.max_log,
            egress=scope.egress,
        )
        egress = EgressLog(scope)
        runner = StepRunner(
            scope,
            sandboxes,
            Attempts(scope, egress, previous),
            earlier=earlier,
            skip=point.skip if point is not None else frozenset(),
            inner=point.inner if point is not None else None,
            on_refused=self._refuse,
        )
        try:
            self._start(scope, sandboxes, steps, earlier, resumed=point is not None)
        except BaseException:
            sandboxes.close()  # the sandboxes started ahead
            scope.egress.close()
            raise
        status, error, waiting = RunStatus.FAILED, None, None
        try:
            if self._env_problem is not None:
                raise self._env_problem
            for runtime in sorted({scope.settings(step).runtime or "auto" for step in self.pipeline.all_steps()}):
                self.backend.resolve_runtime(runtime)  # an unknown runtime fails the run before its first step
            scope.egress.check()  # so does an allow-list entry that names nothing
            waiting = runner.run(steps)
            if waiting is not None:
                status = RunStatus.WAITING
            else:
                status = RunStatus.FAILED if runner.failed_step() is not None else RunStatus.SUCCEEDED
        except KeyboardInterrupt:
            status, error = RunStatus.CANCELLED, "interrupted"
        except EngineUnavailable:
            status, error = RunStatus.FAILED, "the sandbox engine stopped answering"
            raise
        except PipeError as problem:
            status, error = RunStatus.FAILED, self.masker.mask(str(problem))
        finally:
            lost = self._lifecycle.lost()  # another process owns the run now: nothing more is written
            try:
                sandboxes.close()
                egress.close()
                if not lost:
                    with contextlib.suppress(Exception):  # a container a killed runner was still creating
                        self.backend.reap({"pipe.run": scope.run_id})
                scope.watcher.close()
                if status is RunStatus.FAILED and not lost:
                    rollback_on_failure(scope)
            finally:
                at = {RunStatus.FAILED: runner.failed_step(), RunStatus.WAITING: waiting.step_id if waiting else None}
                if lost:
                    self._lifecycle.release()
                else:
                    self._lifecycle.finish(scope.events, status, error, runner.order, at.get(status))
        return RunResult(scope.run_id, status, list(runner.order), error)

    def _start(
        self, scope: RunScope, sandboxes: Sandboxes, steps: list[Step], earlier: list[StepResult], *, resumed: bool
    ) -> None:
        """Warm the first steps' sandboxes while the workspace is scanned (the baseline of change
        recording), store the run state, and tell that the run started (on resume, with the steps
        that ran before)."""
        if self._env_problem is None:  # else the run fails before its first step
            with contextlib.suppress(PipeError):
                sandboxes.warm(steps)
        scope.watcher.start()
        scope.recorder.baseline()
        scope.watcher.take()
        scope.save_state()
        scope.events.emit(
            EventKind.RUN_RESUMED if resumed else EventKind.RUN_STARTED,
            pipeline=self.pipeline.name,
            path=self.pipeline.path,
            steps=len(self.pipeline.all_steps()),
            workspace=str(scope.workspace),
        )
        for result in earlier:  # a resumed run's reporters also show the steps that ran before
            scope.events.tell(EventKind.STEP_RECALLED, step=result.step_id, **summary(result))
