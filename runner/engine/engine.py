"""The run loop: steps in order, `if:` conditions, retries with backoff (tenacity), timeouts,
continue-on-error, repeat groups, outputs, and every attempt recorded in the store.

Semantics follow GitHub Actions where they overlap: a step runs when its `if:` holds (default
`success()`); `outcome` is the result before `continue-on-error` and `conclusion` after it;
`failure()` holds once any earlier step concluded `failure`. Retry policy follows Argo's
retryStrategy: `attempts` in total, exponential backoff (initial * factor^(n-1), capped at max),
retrying on failure, timeout or the given exit codes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import tenacity

from runner import __version__
from runner.actions import MAX_CAPTURE, ActionContext, ActionResult, RunState, SandboxRun, action_function
from runner.changes.objects import ObjectStore
from runner.changes.recording import Recorder
from runner.changes.rollback import Undoer, plan_rollback
from runner.changes.snapshot import Workspace
from runner.changes.watch import Watcher
from runner.egress.policy import minimal_allow
from runner.egress.run import RunEgress
from runner.engine.cabundle import install_ca_bundle
from runner.engine.credentials import github_environment
from runner.engine.lease import LEASE_SECONDS, Lease, process_alive
from runner.engine.sandboxing import DEFAULTS, Sandboxes, SandboxPlan, check_workspace, prepare_workspace
from runner.errors import EngineUnavailable, ExitCode, InputRefused, PipeError, TemplateError
from runner.masking import LineMasker, Masker
from runner.names import Outcome, RunStatus
from runner.outputs import OutputError, parse_outputs
from runner.pipeline.expressions import Expressions
from runner.pipeline.model import Pipeline, RetryPolicy, Step
from runner.reporters import Fanout, Reporter, settle
from runner.reporters.github_actions import GitHubActionsReporter, in_github_actions
from runner.reporters.issue_comment import IssueCommentReporter
from runner.reporters.webhook import WebhookReporter
from runner.results import RunResult, StepResult
from runner.store import GroupBusy, StepRecord, Store
from sandbox.base import Backend, ExecResult, ExecStatus, Payload


@dataclass(frozen=True)
class RunOptions:
    """How to run: where state and the workspace live, the host environment the credentials and
    secrets come from, secret values, and how many sandboxes to start ahead of the running step
    (PIPE_PRESTART; unset: as many as the run's own measures call for, see runner/sandboxing.py).
    `ca_bundle` is the person's CA bundle (`--ca-bundle`, PIPE_CA_BUNDLE), checked and copied at
    the start of the run; `max_log` the bytes of output one attempt keeps (PIPE_MAX_LOG, 64 MiB)."""

    state_dir: Path
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    secrets: Mapping[str, str] = field(default_factory=dict)
    workspace: Path | None = None
    token_file: Path | None = None
    ahead: int | None = field(
        default_factory=lambda: int(os.environ["PIPE_PRESTART"]) if os.environ.get("PIPE_PRESTART") else None
    )
    trigger: str = "cli"
    forge: Any = None
    publish: bool = True
    event: Mapping[str, Any] = field(default_factory=dict)
    parent: tuple[str, str] | None = None  # (parent run id, child key) when started by a pipeline step
    default_image: str | None = field(default_factory=lambda: os.environ.get("PIPE_SANDBOX_IMAGE") or None)
    default_runtime: str | None = field(default_factory=lambda: os.environ.get("PIPE_SANDBOX_RUNTIME") or None)
    ca_bundle: Path | None = None
    max_log: int = field(default_factory=lambda: int(os.environ.get("PIPE_MAX_LOG", str(64 * 1024**2))))


class RunWaiting(Exception):
    """Raised through the run loop when a wait point waits for a decision."""

    def __init__(self, step_id: str) -> None:
        super().__init__(step_id)
        self.step_id = step_id


class RunSkipped(PipeError):
    """A concurrency group was busy and the pipeline says to skip (`if-running: skip`); exit 0."""

    exit_code = ExitCode.SUCCESS


class RunBusy(PipeError):
    """Another live process owns the run (its lease has not expired)."""


@dataclass(frozen=True)
class ResumePoint:
    """Where a resumed run continues: the index of the first top-level step to run again, and
    the ids of steps to skip. `inner` (step id, iteration) continues the repeat group at
    `restart_at` from that step of that iteration (a decided wait point): the group's earlier
    steps and iterations are kept, not run again."""

    run_id: str
    restart_at: int
    skip: frozenset[str] = frozenset()
    inner: tuple[str, int] | None = None


Work = Callable[[Callable[[bytes], None], int], tuple[ExecResult, dict[str, str], "str | None"]]
"""An attempt's work: given where output goes and the attempt number, (how it ended, outputs, error)."""


@dataclass
class _Attempt:
    number: int
    result: ExecResult
    outputs: dict[str, str]
    error: str | None


class Engine:
    """Runs one pipeline; create one per run. Collaborators are passed in (no global state)."""

    def __init__(
        self,
        pipeline: Pipeline,
        store: Store,
        backend: Backend,
        reporter: Reporter,
        options: RunOptions,
    ) -> None:
        self.pipeline = pipeline
        self.store = store
        self.backend = backend
        self.reporter = reporter
        self.options = options
        self.masker = Masker(options.secrets.values())
        self._credentials: dict[str, dict[str, str]] = {}
        self._images: dict[str, str] = {}
        self._results: dict[str, StepResult] = {}
        self._order: list[StepResult] = []
        self._position = {step.id: index for index, step in enumerate(pipeline.all_steps())}
        self.run_id = ""
        self._pipeline_env: dict[str, str] = {}
        self._skip: set[str] = set()
        self._previous_attempts: dict[tuple[str, int], int] = {}
        self._lease: Lease | None = None
        self.forge = options.forge
        self.state = RunState()
        self._waiting_at: str | None = None
        self._ca_bundle: Path | None = None
        self._inner: tuple[str, int] | None = None
        self._refused: InputRefused | None = None

    # ---- the run ---------------------------------------------------------------------------

    def run(self, inputs: Mapping[str, Any]) -> RunResult:
        """Execute the pipeline with resolved `inputs` as a new run; returns the RunResult (never
        raises for a failing step). Raises EngineUnavailable when the engine does not answer,
        before any run is recorded, and PipeError for problems found before the first step."""
        self.backend.check()
        if self.options.workspace is not None:
            check_workspace(self.options.workspace, self.options.state_dir)
            forge_dir = getattr(self.forge, "directory", None)
            if isinstance(forge_dir, Path):
                check_workspace(self.options.workspace, forge_dir, "the local forge")
        self._load_credentials()
        self._install_ca_bundle()
        pipeline_id = self.store.add_pipeline(
            self.pipeline.name, self.pipeline.path, self.pipeline.digest, self.pipeline.source
        )
        run_id = self._create_run(pipeline_id, inputs)
        self.claim(run_id)
        workspace = self.options.workspace or self.options.state_dir / "runs" / run_id / "workspace"
        prepare_workspace(workspace)
        self.store.update_run(run_id, status=RunStatus.RUNNING.value, started_at=time.time(), workspace=str(workspace))
        return self._refuse_or(self._execute(dict(inputs), workspace, list(self.pipeline.steps), resumed=False))

    def _refuse_or(self, result: RunResult) -> RunResult:
        """`result`, or the InputRefused a step raised (the run is stored failed; exit 2)."""
        if self._refused is not None:
            raise self._refused
        return result

    def resume(self, point: ResumePoint) -> RunResult:
        """Continue the stored run `point.run_id` from top-level step `point.restart_at`, the
        results of earlier steps kept (their outputs feed templates), `point.skip` skipped.
        The caller has claimed the run and undone the changes of the steps that run again (see
        runner/resume.py)."""
        self.backend.check()
        self._load_credentials()
        self._install_ca_bundle()
        record = self.store.run(point.run_id)
        check_workspace(Path(record.workspace), self.options.state_dir)
        self.run_id = record.id
        self._skip = set(point.skip)
        self._inner = point.inner
        for stored in sorted(self.store.steps(record.id), key=lambda s: (s.start_mark, s.position, s.iteration)):
            result = StepResult(
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
            self._results[stored.step_id] = result
            self._order.append(result)
        for attempt in self.store.attempts(record.id):
            key = (attempt.step_id, attempt.iteration)
            self._previous_attempts[key] = max(self._previous_attempts.get(key, 0), attempt.number)
        self.state = RunState(**record.outputs.get("state", {}))
        self.store.update_run(record.id, status=RunStatus.RUNNING.value, finished_at=None, error=None)
        steps = list(self.pipeline.steps[point.restart_at :])
        return self._refuse_or(self._execute(dict(record.inputs), Path(record.workspace), steps, resumed=True))

    def _create_run(self, pipeline_id: int, inputs: Mapping[str, Any]) -> str:
        """Record the run, taking its concurrency group first when the pipeline has one: while a
        live run holds the group, wait (polling every second) or, with `if-running: skip`, raise
        RunSkipped."""
        masked = self.masker.mask_value(dict(inputs))
        concurrency = self.pipeline.concurrency
        if concurrency is None:
            return self.store.create_run(pipeline_id, masked, self.options.trigger, parent=self.options.parent)
        group = Expressions({"inputs": dict(inputs), "env": dict(self.pipeline.env)}).render(concurrency.group)
        self._lease = Lease(self.options.state_dir)
        announced = False
        while True:
            try:
                return self.store.create_run(
                    pipeline_id,
                    masked,
                    self.options.trigger,
                    group=group,
                    lease=(self._lease.owner, self._lease.host, LEASE_SECONDS),
                    is_alive=process_alive,
                    parent=self.options.parent,
                )
            except GroupBusy as busy:
                if concurrency.if_running == "skip":
                    raise RunSkipped(f"skipped: concurrency group {group!r} is busy with run {busy.holder}") from None
                if not announced:
                    self.reporter.event("concurrency_wait", {"group": group, "holder": busy.holder})
                    announced = True
                time.sleep(1.0)

    def claim(self, run_id: str) -> None:
        """Own the run: take its lease (renewed by a heartbeat thread until the run ends)."""
        self.run_id = run_id
        if self._lease is None:
            self._lease = Lease(self.options.state_dir, run_id)
        self._lease.bind(run_id)
        holder = self._lease.acquire()
        if holder is not None:
            raise RunBusy(f"run {run_id} is in use by {holder}; wait for it to finish or stop that process")

    def unclaim(self) -> None:
        """Give up the run's lease without running it (a resume refused while preparing)."""
        if self._lease is not None:
            self._lease.release()

    def _execute(self, inputs: dict[str, Any], workspace: Path, steps: list[Step], *, resumed: bool) -> RunResult:
        run_id = self.run_id
        run_dir = self.options.state_dir / "runs" / run_id
        (run_dir / "logs").mkdir(parents=True, exist_ok=True)
        self._inputs = inputs
        self._run_dir = run_dir
        self._workspace = workspace
        self._objects = ObjectStore(self.options.state_dir / "objects")
        self._recorder = Recorder(self.store, self._objects, Workspace(workspace), run_id, self.masker)
        shutil.rmtree(run_dir / "sandboxes", ignore_errors=True)  # channels a killed runner left (FIFOs only)
        self._egress = self._run_egress()
        sandboxes = Sandboxes(
            self.backend,
            workspace,
            run_dir / "sandboxes",
            self._sandbox_plan,
            self._image,
            ahead=self.options.ahead,
            ca_bundle=self._ca_bundle,
            max_log=self.options.max_log,
            egress=self._egress,
        )
        try:
            with contextlib.suppress(PipeError):  # the first steps' sandboxes start while the workspace
                self._pipeline_env = self._render_pipeline_env()  # is scanned; an error is raised below
                sandboxes.warm(steps)
            self._watcher = Watcher(workspace)
            self._watcher.start()
            self._recorder.baseline()
            self._watcher.take()
            self._save_state()
            self._add_reporters(inputs)
            self._emit(
                "run_resumed" if resumed else "run_started",
                pipeline=self.pipeline.name,
                path=self.pipeline.path,
                steps=len(self._position),
                workspace=str(workspace),
            )
            for earlier in self._order:  # a resumed run's reporters also show the steps that ran before
                self.reporter.event("step_recalled", {"run": run_id, "step": earlier.step_id, **_summary(earlier)})
        except BaseException:
            sandboxes.close()  # the sandboxes started ahead
            self._egress.close()
            raise
        status = RunStatus.FAILED
        error: str | None = None
        try:
            self._pipeline_env = self._render_pipeline_env()
            for runtime in sorted({self._settings(step).runtime or "auto" for step in self.pipeline.all_steps()}):
                self.backend.resolve_runtime(runtime)  # an unknown runtime fails the run before its first step
            self._egress.check()  # so does an allow-list entry that names nothing
            self._run_steps(steps, sandboxes, iteration=0)
            failed = any(r.conclusion is Outcome.FAILURE for r in self._order)
            status = RunStatus.FAILED if failed else RunStatus.SUCCEEDED
        except KeyboardInterrupt:
            status = RunStatus.CANCELLED
            error = "interrupted"
        except RunWaiting as waiting:
            status = RunStatus.WAITING
            self._waiting_at = waiting.step_id
        except EngineUnavailable:
            status, error = RunStatus.FAILED, "the sandbox engine stopped answering"
            raise
        except PipeError as problem:
            status, error = RunStatus.FAILED, self.masker.mask(str(problem))
        finally:
            try:
                sandboxes.close()
                self._close_egress()
                with contextlib.suppress(Exception):  # a container a killed runner was still creating
                    self.backend.reap({"pipe.run": run_id})
                self._watcher.close()
                if status is RunStatus.FAILED:
                    self._rollback_on_failure()
            finally:
                self._finish(run_id, status, error)
        return RunResult(run_id, status, list(self._order), error)

    def _finish(self, run_id: str, status: RunStatus, error: str | None) -> None:
        """Report the end, then store it: a runner killed in between leaves the run unfinished in
        the store, and `pipe resume` finishes it (reporting again), so the final report is never
        lost behind a stored final status."""
        current_step = {RunStatus.FAILED: self._failed_step(), RunStatus.WAITING: self._waiting_at}
        try:
            self._emit(
                "run_finished",
                status=status.value,
                error=error,
                steps=[{"step": r.step_id, **_summary(r)} for r in self._order],
                **_agent_totals(self._order),
            )
            settle(self.reporter)  # the final report is out (or given up on) before the end is stored
        finally:
            self.store.update_run(
                run_id,
                status=status.value,
                finished_at=time.time(),
                error=error,
                current_step=current_step.get(status),
            )
            if self._lease is not None:
                self._lease.release()

    def _add_reporters(self, inputs: dict[str, Any]) -> None:
        """The pipeline's `report:` destinations, besides the console."""
        report = self.pipeline.report
        expressions = Expressions({"inputs": inputs, "run": {"id": self.run_id}, "env": dict(self.pipeline.env)})
        extra: list[Reporter] = []
        if report.issue_comment is not None and self.forge is not None and self.options.publish:
            issue = int(expressions.render(str(report.issue_comment.issue)))
            forge = self.forge

            def record(comment_id: int) -> None:
                data = {"issue": issue, "comment_id": comment_id, "forge": forge.describe()}
                self._recorder.record_external("(report)", 0, 0, "comment_create", f"#{issue}", data)

            extra.append(
                IssueCommentReporter(
                    forge,
                    issue,
                    self.pipeline.name,
                    report.issue_comment.interval,
                    record,
                    lambda: self.state.pull_request_url,
                )
            )
        if report.webhook is not None:
            extra.append(WebhookReporter(expressions.render(report.webhook.url), report.webhook.interval))
        first: list[Reporter] = []
        if in_github_actions(self.options.environ):
            # First, so a step's log group opens before the console prints the step's lines.
            secrets = [*self.options.secrets.values(), *(v["GITHUB_TOKEN"] for v in self._credentials.values())]
            first.append(
                GitHubActionsReporter(sys.stdout, self.options.environ, secrets, lambda: self.state.pull_request_url)
            )
        if extra or first:
            self.reporter = Fanout(*first, self.reporter, *extra)

    def _rollback_on_failure(self) -> None:
        """Apply the pipeline's `on-failure` rollback; a conflict is reported, not raised."""
        policy = self.pipeline.on_failure
        if policy.rollback == "none":
            return
        mode = {"partial": "steps"}.get(policy.rollback, policy.rollback)
        try:
            plan = plan_rollback(self.store, self.run_id, mode, steps=policy.steps)
            self._emit("rollback_started", mode=policy.rollback, summary=plan.summary, changes=len(plan.changes))
            undone = Undoer(self.store, self._objects, Workspace(self._workspace), lambda _: self.forge).apply(plan)
            self._emit("rollback_finished", mode=policy.rollback, undone=undone)
        except PipeError as problem:
            self._emit("rollback_failed", mode=policy.rollback, error=self.masker.mask(str(problem)))

    def _run_steps(self, steps: list[Step], sandboxes: Sandboxes, iteration: int) -> None:
        for index, step in enumerate(steps):
            upcoming = steps[index + 1 :]
            start_mark = self.store.last_change_id(self.run_id)
            result = self._run_step(step, sandboxes, iteration, upcoming)
            self._results[step.id] = result
            self._order.append(result)
            self.store.record_step(
                self.run_id,
                StepRecord(
                    step_id=step.id,
                    iteration=iteration,
                    position=self._position[step.id],
                    outcome=result.outcome.value,
                    conclusion=result.conclusion.value,
                    attempts=result.attempts,
                    started_at=result.started_at,
                    finished_at=result.finished_at,
                    outputs=result.outputs,
                    error=result.error,
                    start_mark=start_mark,
                    end_mark=self.store.last_change_id(self.run_id),
                ),
            )
            self._emit("step_finished", step=step.id, **_summary(result))

    def _run_step(self, step: Step, sandboxes: Sandboxes, iteration: int, upcoming: list[Step]) -> StepResult:
        started = time.time()
        if step.id in self._skip:
            self._emit("step_skipped", step=step.id, reason="skipped on resume")
            return StepResult(
                step.id, Outcome.SKIPPED, Outcome.SKIPPED, iteration, started_at=started, finished_at=started
            )
        expressions = self._expressions(iteration)
        try:
            should_run = expressions.evaluate(step.condition if step.condition is not None else "success()")
        except TemplateError as problem:
            return self._failed(step, iteration, started, f"if: {problem}")
        if not should_run:
            condition = step.condition if step.condition is not None else "success()"
            self._emit("step_skipped", step=step.id, reason=f"if: {condition}")
            return StepResult(
                step.id, Outcome.SKIPPED, Outcome.SKIPPED, iteration, started_at=started, finished_at=started
            )
        name = _render_or(expressions, step.display_name)
        self._emit("step_started", step=step.id, name=self.masker.mask(name), iteration=iteration)
        if step.repeat is not None:
            return self._run_repeat(step, sandboxes, started)
        try:
            late_env = {key: expressions.render(value) for key, value in step.env.items()}
            late_env["PIPE_STEP"] = step.id
            if step.run is not None:
                work = self._script_work(step, sandboxes, expressions.render_script(step.run), late_env)
            else:
                assert step.uses is not None
                work = self._action_work(
                    step, iteration, sandboxes, expressions.render_value(dict(step.with_)), late_env
                )
        except TemplateError as problem:
            return self._failed(step, iteration, started, str(problem))
        sandboxes.warm(upcoming)
        attempt = self._attempts(step, iteration, sandboxes, work, upcoming)
        outcome = Outcome.SUCCESS if attempt.result.status is ExecStatus.SUCCEEDED else Outcome.FAILURE
        if attempt.error is not None:
            outcome = Outcome.FAILURE
        conclusion = Outcome.SUCCESS if outcome is Outcome.FAILURE and step.continue_on_error else outcome
        return StepResult(
            step.id,
            outcome,
            conclusion,
            iteration,
            attempts=attempt.number,
            outputs=attempt.outputs,
            started_at=started,
            finished_at=time.time(),
            status=attempt.result.status.value,
            error=attempt.error,
        )

    def _timeout(self, step: Step) -> float:
        return step.timeout or self._settings(step).timeout or DEFAULTS.timeout or 1800.0

    def _script_work(self, step: Step, sandboxes: Sandboxes, script: str, late_env: dict[str, str]) -> Work:
        """An attempt of a `run:` step: the script in the step's (warm) sandbox."""
        timeout = self._timeout(step)

        def work(on_output: Callable[[bytes], None], number: int) -> tuple[ExecResult, dict[str, str], str | None]:
            prepared = sandboxes.take(step)
            try:
                payload = Payload(script, {**late_env, "PIPE_ATTEMPT": str(number)})
                result = prepared.execute(payload, timeout=timeout, on_output=on_output)
            finally:
                prepared.discard()
            error = _describe(result, timeout, self._settings(step).memory)
            try:
                return result, parse_outputs(result.outputs), error
            except OutputError as problem:
                return result, {}, f"$PIPE_OUTPUT: {problem}"

        return work

    def _action_work(
        self, step: Step, iteration: int, sandboxes: Sandboxes, args: dict[str, Any], late_env: dict[str, str]
    ) -> Work:
        """An attempt of a `uses:` step: the action's function, with a context to act through."""
        assert step.uses is not None
        function = action_function(step.uses)
        timeout = self._timeout(step)

        def work(on_output: Callable[[bytes], None], number: int) -> tuple[ExecResult, dict[str, str], str | None]:
            runtimes: list[str] = []  # the container runtimes the action's sandboxes ran on

            def run_in_sandbox(
                script: str,
                env: Mapping[str, str],
                mounts: tuple[tuple[str, str], ...] = (),
                files: Mapping[str, bytes] | None = None,
                credentials: bool = True,
                image: str | None = None,
            ) -> SandboxRun:
                captured: list[bytes] = []
                size = 0

                def capture(data: bytes) -> None:
                    nonlocal size
                    on_output(data)
                    captured.append(data)
                    size += len(data)
                    while size > MAX_CAPTURE and len(captured) > 1:
                        size -= len(captured.pop(0))

                prepared = sandboxes.fresh(step, mounts, credentials, image)
                try:
                    payload = Payload(script, {**late_env, **env, "PIPE_ATTEMPT": str(number)}, dict(files or {}))
                    result = prepared.execute(payload, timeout=timeout, on_output=capture)
                finally:
                    prepared.discard()
                if result.runtime:
                    runtimes.append(result.runtime)
                outputs: dict[str, str] = {}
                output_error: str | None = None
                try:
                    outputs = parse_outputs(result.outputs)
                except OutputError as problem:
                    output_error = f"$PIPE_OUTPUT: {problem}"
                text = self.masker.mask(b"".join(captured).decode("utf-8", errors="replace"))
                return SandboxRun(result, outputs, text, output_error)

            def undo_pending() -> int:
                found = self._recorder.scan(None)
                Undoer(self.store, self._objects, Workspace(self._workspace)).restore_unrecorded(found)
                return len(found)

            def record(kind: str, target: str, data: Mapping[str, Any]) -> None:
                settings = self.forge.describe() if self.forge is not None else {}
                self._recorder.record_external(step.id, iteration, number, kind, target, {**data, "forge": settings})
                self._emit("external_change", step=step.id, type=kind, target=target)

            context = ActionContext(
                run_id=self.run_id,
                pipeline=self.pipeline.name,
                step_id=step.id,
                args=args,
                inputs=self._inputs,
                workspace=self._workspace,
                state=self.state,
                publish=self.options.publish,
                forge=self.forge,
                log=lambda text: on_output(text.rstrip("\n").encode() + b"\n"),
                run_in_sandbox=run_in_sandbox,
                record=record,
                pending_changes=lambda: self._recorder.scan(None),
                undo_pending=undo_pending,
                base_dir=Path(self.pipeline.path).resolve().parent,
                store=self.store,
                iteration=iteration,
                options=self.options,
            )
            started = time.monotonic()
            try:
                done = function(context)
            except (EngineUnavailable, KeyboardInterrupt):
                raise
            except PipeError as problem:
                done = ActionResult(error=str(problem))
                if isinstance(problem, InputRefused):
                    self._refused = problem
            except Exception as problem:  # nox's SessionRunner.execute: any error ends the attempt
                done = ActionResult(error=self._unexpected(problem, step.id, iteration, number))
            finally:
                self._save_state()
            if done.waiting:
                raise RunWaiting(step.id)
            status = ExecStatus.SUCCEEDED if done.error is None else ExecStatus.FAILED
            runtime = ",".join(dict.fromkeys(runtimes)) or None
            result = ExecResult(status, 0 if done.error is None else 1, time.monotonic() - started, runtime=runtime)
            return result, done.outputs, done.error

        return work

    def _unexpected(self, problem: Exception, step_id: str, iteration: int, number: int) -> str:
        """A one-line error for an exception nothing expected; its traceback (masked) is saved
        beside the attempt's log."""
        suffix = f".{iteration}" if iteration else ""
        where = self._run_dir / "logs" / f"{step_id}{suffix}.{number}.traceback"
        text = "".join(traceback.format_exception(problem))
        with contextlib.suppress(OSError):
            where.write_text(self.masker.mask(text), encoding="utf-8")
        first = str(problem).splitlines()[0] if str(problem) else ""
        return self.masker.mask(f"{type(problem).__name__}: {first} (traceback in {where})")

    def _save_state(self) -> None:
        """What a resume must use again: the run state, the forge and the default image."""
        forge = self.forge.describe() if self.forge is not None else None
        self.store.update_run(
            self.run_id,
            outputs={"state": self.state.as_dict(), "forge": forge, "default_image": self.options.default_image},
        )

    def _run_repeat(self, step: Step, sandboxes: Sandboxes, started: float) -> StepResult:
        assert step.repeat is not None
        iterations, first, steps = 0, 1, list(step.repeat.steps)
        if self._inner is not None and self._inner[0] in {s.id for s in steps}:  # resumed at a wait point
            inner_id, first = self._inner
            steps = steps[[s.id for s in steps].index(inner_id) :]
            self._inner = None
        for iteration in range(first, step.repeat.max + 1):
            iterations = iteration
            self._run_steps(steps, sandboxes, iteration)
            steps = list(step.repeat.steps)
            if step.repeat.until is None:
                continue
            try:
                if self._expressions(iteration).evaluate(step.repeat.until):
                    break
            except TemplateError as problem:
                return self._failed(step, 0, started, f"until: {problem}")
        inner = [self._results[s.id] for s in step.repeat.steps if s.id in self._results]
        failed = any(r.conclusion is Outcome.FAILURE for r in inner)
        outcome = Outcome.FAILURE if failed else Outcome.SUCCESS
        return StepResult(
            step.id,
            outcome,
            outcome,
            0,
            attempts=iterations,
            started_at=started,
            finished_at=time.time(),
            outputs={"iterations": str(iterations)},
        )

    def _failed(self, step: Step, iteration: int, started: float, error: str) -> StepResult:
        error = self.masker.mask(error)
        self._emit("step_error", step=step.id, error=error)
        conclusion = Outcome.SUCCESS if step.continue_on_error else Outcome.FAILURE
        return StepResult(
            step.id, Outcome.FAILURE, conclusion, iteration, started_at=started, finished_at=time.time(), error=error
        )

    # ---- attempts --------------------------------------------------------------------------

    def _attempts(self, step: Step, iteration: int, sandboxes: Sandboxes, work: Work, upcoming: list[Step]) -> _Attempt:
        policy = step.retry
        offset = self._previous_attempts.get((step.id, iteration), 0)
        numbers = iter(range(offset + 1, offset + policy.attempts + 1))

        def attempt() -> _Attempt:
            number = next(numbers)
            if number > 1:
                sandboxes.warm(upcoming)
            return self._attempt(step, iteration, number, work)

        def before_sleep(state: tenacity.RetryCallState) -> None:
            delay = state.next_action.sleep if state.next_action else 0.0
            number, last = offset + state.attempt_number + 1, offset + policy.attempts  # numbered across resumes
            self._emit("retrying", step=step.id, attempt=number, of=last, delay=delay)

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(policy.attempts),
            wait=tenacity.wait_exponential(
                multiplier=policy.backoff.initial,
                exp_base=policy.backoff.factor,
                max=policy.backoff.max if policy.backoff.max is not None else float("inf"),
            ),
            retry=tenacity.retry_if_result(lambda outcome: _should_retry(policy, outcome)),
            retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
            before_sleep=before_sleep,
        )
        result: _Attempt = retrying(attempt)
        return result

    def _attempt(self, step: Step, iteration: int, number: int, work: Work) -> _Attempt:
        """One attempt: its record, its masked log, the work, then the changes it made."""
        suffix = f".{iteration}" if iteration else ""
        log_path = self._run_dir / "logs" / f"{step.id}{suffix}.{number}.log"
        started = time.time()
        attempt_id = self.store.start_attempt(self.run_id, step.id, iteration, number, log_path, started)
        # Numbers go on across resumes (attempt 5 after four earlier ones); `of` is the last number
        # this execution may reach, so "attempt 5/5" never reads "attempt 5, of 1".
        last = self._previous_attempts.get((step.id, iteration), 0) + step.retry.attempts
        self._emit("attempt_started", step=step.id, attempt=number, of=last)
        lines = LineMasker(self.masker)
        outputs: dict[str, str] = {}
        error: str | None = None
        with open(log_path, "w", encoding="utf-8") as log:

            def on_output(data: bytes) -> None:
                text = lines.feed(data)
                if text:
                    log.write(text)
                    log.flush()
                    self.reporter.output(step.id, text)

            try:
                result, outputs, error = work(on_output, number)
            except EngineUnavailable:
                raise
            except PipeError as problem:
                result, error = ExecResult(ExecStatus.ERROR, None, 0.0, detail=str(problem)), str(problem)
            except KeyboardInterrupt:
                self.store.finish_attempt(attempt_id, ExecStatus.CANCELLED.value, None, time.time(), {}, "interrupted")
                raise
            except RunWaiting:
                self.store.finish_attempt(attempt_id, "waiting", None, time.time(), {}, None)
                raise
            except Exception as problem:  # never leave the attempt `running`
                error = self._unexpected(problem, step.id, iteration, number)
                result = ExecResult(ExecStatus.ERROR, None, 0.0, detail=error)
            finally:
                rest = lines.flush()
                if rest:
                    log.write(rest)
                    self.reporter.output(step.id, rest)
                changes = self._recorder.record(step.id, iteration, number, self._watcher.take())
                self._record_egress(step, iteration, number)
        if self._recorder.refused:  # a file over PIPE_MAX_RECORD(_SECONDS): recorded by metadata only
            error = f"{error}; {self._recorder.refused}" if error else self._recorder.refused
            if result.status is ExecStatus.SUCCEEDED:
                result = replace(result, status=ExecStatus.FAILED)
        outputs = self.masker.mask_value(outputs)
        error = self.masker.mask(error) if error else None
        self.store.finish_attempt(
            attempt_id, result.status.value, result.exit_code, time.time(), outputs, error, runtime=result.runtime
        )
        self._emit(
            "attempt_finished",
            step=step.id,
            attempt=number,
            status=result.status.value,
            exit_code=result.exit_code,
            duration=round(result.duration, 3),
            changes=len(changes),
            error=error,
        )
        return _Attempt(number, result, outputs, error)

    # ---- context, sandbox plans, credentials -------------------------------------------------

    def _expressions(self, iteration: int) -> Expressions:
        failed_step = self._failed_step()
        failed = failed_step is not None
        context = {
            "inputs": self._inputs,
            "env": self._pipeline_env,
            "secrets": dict(self.options.secrets),
            "github": {"event": dict(self.options.event), "actions": in_github_actions(self.options.environ)},
            "run": {
                "id": self.run_id,
                "pipeline": self.pipeline.name,
                "workspace": str(self._workspace),
                "failed_step": failed_step or "",
                "pipe_version": __version__,
            },
            "repeat": {"iteration": iteration},
            "steps": {
                step_id: {"outputs": r.outputs, "outcome": r.outcome.value, "conclusion": r.conclusion.value}
                for step_id, r in self._results.items()
            },
        }
        return Expressions(context, status={"success": not failed, "failure": failed, "cancelled": False})

    def _failed_step(self) -> str | None:
        """The id of the first step whose conclusion is failure, or None."""
        return next((r.step_id for r in self._order if r.conclusion is Outcome.FAILURE), None)

    def _render_pipeline_env(self) -> dict[str, str]:
        expressions = Expressions(
            {
                "inputs": self._inputs,
                "secrets": dict(self.options.secrets),
                "env": {},
                "run": {"id": self.run_id, "pipeline": self.pipeline.name},
            }
        )
        return {key: expressions.render(value) for key, value in self.pipeline.env.items()}

    def _settings(self, step: Step) -> Any:
        defaults = DEFAULTS if not self.options.default_image else replace(DEFAULTS, image=self.options.default_image)
        if self.options.default_runtime:  # PIPE_SANDBOX_RUNTIME: what `auto` means for this person
            defaults = replace(defaults, runtime=self.options.default_runtime)
        return defaults.overlay(self.pipeline.sandbox).overlay(step.sandbox)

    def _sandbox_plan(self, step: Step) -> SandboxPlan:
        env = dict(self._pipeline_env)
        env.update(
            {
                "CI": "true",
                "PIPE": "true",
                "PIPE_RUN_ID": self.run_id,
                "PIPE_STEP": step.id,
                "PIPE_WORKSPACE": "/workspace",
            }
        )
        names = step.credentials if step.credentials is not None else self.pipeline.credentials
        withheld: set[str] = set()
        for name in names:
            values = self._credentials.get(name, {})
            env.update(values)
            withheld |= set(values)
        labels = {"pipe.run": self.run_id, "pipe.step": step.id, "pipe.pipeline": self.pipeline.name}
        return SandboxPlan(self._settings(step), env, labels, frozenset(withheld))

    def _image(self, image: str) -> str:
        if image not in self._images:
            self._images[image] = self.backend.ensure_image(image, lambda line: self._emit("image", message=line))
        return self._images[image]

    def _install_ca_bundle(self) -> None:
        """Check and copy the person's CA bundle (raises UsageError before anything runs)."""
        source = self.options.ca_bundle
        self._ca_bundle = install_ca_bundle(source, self.options.state_dir) if source is not None else None

    def _load_credentials(self) -> None:
        """The values of the credentials some step may get. `github` comes from the forge when
        there is one (its token, repository and API); a local forge needs none, so none is given."""
        wanted = set(self.pipeline.credentials)
        for step in self.pipeline.all_steps():
            wanted |= set(step.credentials or ())
        if "github" not in wanted or getattr(self.forge, "name", None) == "local":
            return
        environ = dict(self.options.environ)
        if self.forge is not None:
            environ.setdefault("GITHUB_REPOSITORY", self.forge.repo)
            environ["GITHUB_API_URL"] = self.forge.api_url
            if "GITHUB_SERVER_URL" not in environ and self.forge.api_url.endswith("/api/v3"):
                environ["GITHUB_SERVER_URL"] = self.forge.api_url[: -len("/api/v3")]
        values = github_environment(
            environ, repository=environ.get("GITHUB_REPOSITORY"), token_file=self.options.token_file
        )
        self.masker.add(values["GITHUB_TOKEN"])
        self._credentials["github"] = values

    # ---- egress ----------------------------------------------------------------------------

    def _run_egress(self) -> RunEgress:
        """The run's egress: the allow-lists its steps may use; the proxy starts on first need."""
        policies = [self._settings(step).egress for step in self.pipeline.all_steps()]
        labels = {"pipe.run": self.run_id, "pipe.pipeline": self.pipeline.name}
        self._audited: list[dict[str, Any]] = []
        return RunEgress(
            self.backend, [p for p in policies if p is not None], labels, lambda line: self._emit("image", message=line)
        )

    def _record_egress(self, step: Step, iteration: int, number: int) -> None:
        """Store (as an `egress` event) the requests the attempt's sandboxes made through the proxy."""
        policy = self._settings(step).egress
        try:
            requests = self._egress.collect(policy)
        except PipeError as problem:  # the attempt's own record is more important: say so, go on
            self._emit("step_error", step=step.id, error=str(problem))
            return
        if requests:
            self._emit(
                "egress", step=step.id, iteration=iteration, attempt=number, requests=[r.as_dict() for r in requests]
            )
            if policy is not None and policy.mode == "audit":
                self._audited.extend(r.as_dict() for r in requests)

    def _close_egress(self) -> None:
        """Remove the run's proxy; after an audit, report the `allow:` list the run needed."""
        self._egress.close()
        if any(p.mode == "audit" for p in self._egress.policies):
            self._emit("egress_audit", allow=minimal_allow(self._audited))

    def _emit(self, kind: str, step: str | None = None, **data: Any) -> None:
        data = self.masker.mask_value(data)
        if self.run_id:
            self.store.add_event(self.run_id, kind, step, data)
        self.reporter.event(kind, {"run": self.run_id, "step": step, **data} if step else {"run": self.run_id, **data})


def _should_retry(policy: RetryPolicy, attempt: _Attempt) -> bool:
    status = attempt.result.status
    if status is ExecStatus.SUCCEEDED and attempt.error is None:
        return False
    if status is ExecStatus.TIMEOUT:
        return "timeout" in policy.on
    if status is ExecStatus.CANCELLED:
        return False
    if attempt.result.exit_code is not None and attempt.result.exit_code in policy.on:
        return True
    return "failure" in policy.on


def _describe(result: ExecResult, timeout: float, memory: int | None) -> str | None:
    if result.status is ExecStatus.SUCCEEDED:
        return None
    if result.status is ExecStatus.TIMEOUT:
        return f"timed out after {timeout:g}s"
    if result.status is ExecStatus.OOM:
        return f"killed: out of memory (limit {memory} bytes)"
    if result.status is ExecStatus.ERROR:
        return result.detail or "the sandbox failed"
    return f"exited with code {result.exit_code}"


def _render_or(expressions: Expressions, template: str) -> str:
    try:
        return expressions.render(template)
    except TemplateError:
        return template


def _agent_totals(results: list[StepResult]) -> dict[str, Any]:
    """`agent_cost_usd` and `agent_turns` summed over the agent steps that reported them (the
    `cost_usd` and `turns` outputs of runner/actions/agent.py); {} when none did."""
    cost, turns, seen = 0.0, 0, False
    for result in results:
        for key in ("cost_usd", "turns"):
            value = result.outputs.get(key)
            try:
                number = float(value) if value not in (None, "") else None
            except (TypeError, ValueError):
                number = None
            if number is None:
                continue
            seen = True
            if key == "cost_usd":
                cost += number
            else:
                turns += int(number)
    return {"agent_cost_usd": round(cost, 6), "agent_turns": turns} if seen else {}


def _summary(result: StepResult) -> dict[str, Any]:
    return {
        "iteration": result.iteration,
        "outcome": result.outcome.value,
        "conclusion": result.conclusion.value,
        "attempts": result.attempts,
        "duration": round(result.duration, 3),
        "status": result.status,
        "error": result.error,
    }
