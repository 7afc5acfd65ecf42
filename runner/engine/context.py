"""The action context: what one attempt of a `uses:` step gets to act through (see
runner/actions/__init__.py), and running the action with it.

Any exception an action raises ends its attempt: a PipeError with its own message, anything else
with a one-line error while its traceback (masked) is saved beside the attempt's log (nox's
`SessionRunner.execute` is the model). Only an unavailable engine and an interrupt go through."""

from __future__ import annotations

import contextlib
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.actions.base import MAX_CAPTURE, ActionContext, ActionResult, SandboxRun
from runner.actions.registry import ACTIONS
from runner.actions.scoped import StepApprovals, StoreChildren, step_attempts
from runner.changes.rollback import Undoer
from runner.changes.snapshot import Workspace
from runner.engine.sandboxing import Sandboxes, sandbox_user
from runner.engine.scope import RunScope
from runner.engine.work import Work, WorkDone
from runner.errors import EngineUnavailable, InputRefused, PipeError
from runner.names import EventKind
from runner.outputs import OutputError, parse_outputs
from runner.pipeline.model import Step
from runner.statedir import StateDir
from sandbox.base import ExecResult, ExecStatus, Payload


@dataclass(frozen=True)
class ActionCall:
    """One `uses:` step as it is about to run: its rendered `with:` arguments (`args`), its
    rendered `env:` (`env`), its repeat `iteration` and its `timeout` (seconds) per sandbox."""

    step: Step
    iteration: int
    args: dict[str, Any]
    env: dict[str, str]
    timeout: float


def action_work(
    scope: RunScope, call: ActionCall, sandboxes: Sandboxes, on_refused: Callable[[InputRefused], None]
) -> Work:
    """An attempt of a `uses:` step: the action's function, with a context to act through.
    `on_refused` is told of an InputRefused the action raised (the run then exits 2)."""
    step, iteration = call.step, call.iteration
    assert step.uses is not None
    function = ACTIONS[step.uses]

    def work(on_output: Callable[[bytes], None], number: int) -> WorkDone:
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
                payload = Payload(script, {**call.env, **env, "PIPE_ATTEMPT": str(number)}, dict(files or {}))
                result = prepared.execute(payload, timeout=call.timeout, on_output=capture)
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
            text = scope.masker.mask(b"".join(captured).decode("utf-8", errors="replace"))
            return SandboxRun(result, outputs, text, output_error)

        def undo_pending() -> int:
            found = scope.recorder.scan(None)
            Undoer(scope.store, scope.objects, Workspace(scope.workspace)).restore_unrecorded(found)
            return len(found)

        def record(kind: str, target: str, data: Mapping[str, Any]) -> None:
            settings = scope.forge.describe() if scope.forge is not None else {}
            scope.recorder.record_external(step.id, iteration, number, kind, target, {**data, "forge": settings})
            scope.events.emit(EventKind.EXTERNAL_CHANGE, step=step.id, type=kind, target=target)

        context = ActionContext(
            run_id=scope.run_id,
            pipeline=scope.pipeline.name,
            step_id=step.id,
            args=call.args,
            inputs=scope.inputs,
            workspace=scope.workspace,
            state=scope.state,
            publish=scope.options.publish,
            forge=scope.forge,
            log=lambda text: on_output(text.rstrip("\n").encode() + b"\n"),
            run_in_sandbox=run_in_sandbox,
            record=record,
            pending_changes=lambda: scope.recorder.scan(None),
            undo_pending=undo_pending,
            base_dir=Path(scope.pipeline.path).resolve().parent,
            iteration=iteration,
            approvals=StepApprovals(scope.store, scope.run_id, step.id, iteration),
            children=StoreChildren(scope.store, scope.run_id),
            step_attempts=lambda: step_attempts(scope.store, scope.run_id, step.id, iteration),
            state_dir=StateDir(scope.options.state_dir),
            secrets=scope.options.secrets,
            token_file=scope.options.token_file,
            default_image=scope.options.default_image,
            submit_child=scope.options.submit_child,
            ca_bundle=scope.options.ca_bundle,
            sandbox_user=sandbox_user(scope.workspace),
        )
        return run_action(scope, function, context, number, runtimes, on_refused)

    return work


def run_action(
    scope: RunScope,
    function: Callable[[ActionContext], ActionResult],
    context: ActionContext,
    number: int,
    runtimes: list[str],
    on_refused: Callable[[InputRefused], None],
) -> WorkDone:
    """Call the action `function` with `context` as attempt `number`: any exception becomes the
    attempt's error (EngineUnavailable and KeyboardInterrupt go through); the run state is saved
    however it ends. `runtimes` are the container runtimes its sandboxes ran on."""
    started = time.monotonic()
    try:
        done = function(context)
    except (EngineUnavailable, KeyboardInterrupt):
        raise
    except PipeError as problem:
        done = ActionResult(error=str(problem))
        if isinstance(problem, InputRefused):
            on_refused(problem)
    except Exception as problem:  # nox's SessionRunner.execute: any error ends the attempt
        done = ActionResult(error=unexpected(scope, problem, context.step_id, context.iteration, number))
    finally:
        scope.save_state()
    runtime = ",".join(dict.fromkeys(runtimes)) or None
    elapsed = time.monotonic() - started
    if done.waiting:
        return WorkDone(ExecResult(ExecStatus.SUCCEEDED, 0, elapsed, runtime=runtime), done.outputs, waiting=True)
    status = ExecStatus.SUCCEEDED if done.error is None else ExecStatus.FAILED
    result = ExecResult(status, 0 if done.error is None else 1, elapsed, runtime=runtime)
    return WorkDone(result, done.outputs, done.error)


def unexpected(scope: RunScope, problem: Exception, step_id: str, iteration: int, number: int) -> str:
    """A one-line error for an exception nothing expected (masked); its traceback (masked) is
    saved beside the attempt's log as `<step>[.<iteration>].<number>.traceback`."""
    where = scope.log_path(step_id, iteration, number, "traceback")
    text = "".join(traceback.format_exception(problem))
    with contextlib.suppress(OSError):
        where.write_text(scope.masker.mask(text), encoding="utf-8")
    first = str(problem).splitlines()[0] if str(problem) else ""
    return scope.masker.mask(f"{type(problem).__name__}: {first} (traceback in {where})")
