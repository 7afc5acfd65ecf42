"""A step's attempts: each recorded in the store with its masked log and the changes it made,
retried per the step's `retry:` (Argo's retryStrategy: `attempts` in total, exponential backoff
initial * factor^(n-1) capped at max, on failure, timeout or the given exit codes; tenacity)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

import tenacity

from runner.engine.context import unexpected
from runner.engine.egresslog import EgressLog
from runner.engine.scope import RunScope
from runner.engine.work import Work, WorkDone
from runner.errors import EngineUnavailable, PipeError
from runner.masking import LineMasker
from runner.names import EventKind, RunStatus
from runner.pipeline.model import RetryPolicy, Step
from sandbox.base import ExecResult, ExecStatus


@dataclass(frozen=True)
class AttemptEnd:
    """The last attempt of a step: its number (counted across resumes), how its work ended,
    its outputs and error (masked), and `waiting` when it stopped at a wait point."""

    number: int
    result: ExecResult
    outputs: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    waiting: bool = False


class Attempts:
    """Runs and records the attempts of one run's steps. `previous` is the highest attempt
    number each (step id, iteration) reached before a resume (numbers go on from there)."""

    def __init__(self, scope: RunScope, egress: EgressLog, previous: Mapping[tuple[str, int], int]) -> None:
        self.scope = scope
        self.egress = egress
        self.previous = dict(previous)

    def run(self, step: Step, iteration: int, work: Work, before_retry: Callable[[], None]) -> AttemptEnd:
        """Attempt `work` until it succeeds, waits, or `step.retry` says to stop; `before_retry`
        is called before each attempt after the first. Returns the last attempt."""
        policy = step.retry
        offset = self.previous.get((step.id, iteration), 0)
        numbers = iter(range(offset + 1, offset + policy.attempts + 1))

        def attempt() -> AttemptEnd:
            number = next(numbers)
            if number > 1:
                before_retry()
            return self.attempt(step, iteration, number, work)

        def before_sleep(state: tenacity.RetryCallState) -> None:
            delay = state.next_action.sleep if state.next_action else 0.0
            number, last = offset + state.attempt_number + 1, offset + policy.attempts  # numbered across resumes
            self.scope.events.emit(EventKind.RETRYING, step=step.id, attempt=number, of=last, delay=delay)

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(policy.attempts),
            wait=tenacity.wait_exponential(
                multiplier=policy.backoff.initial,
                exp_base=policy.backoff.factor,
                max=policy.backoff.max if policy.backoff.max is not None else float("inf"),
            ),
            retry=tenacity.retry_if_result(lambda end: should_retry(policy, end)),
            retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
            before_sleep=before_sleep,
        )
        end: AttemptEnd = retrying(attempt)
        return end

    def attempt(self, step: Step, iteration: int, number: int, work: Work) -> AttemptEnd:
        """One attempt: its record, its masked log, the work, then the changes and egress it made.
        The attempt row is always closed; only an unavailable engine and an interrupt raise."""
        scope = self.scope
        log_path = scope.log_path(step.id, iteration, number)
        scope.check_lease()  # taken over meanwhile: not one more attempt
        attempt_id = scope.store.start_attempt(scope.run_id, step.id, iteration, number, log_path, time.time())
        # `of` is the last number this execution may reach, so "attempt 5/5" never reads "attempt 5, of 1".
        last = self.previous.get((step.id, iteration), 0) + step.retry.attempts
        scope.events.emit(EventKind.ATTEMPT_STARTED, step=step.id, attempt=number, of=last)
        lines = LineMasker(scope.masker)
        with open(log_path, "w", encoding="utf-8") as log:

            def on_output(data: bytes) -> None:
                text = lines.feed(data)
                if text:
                    log.write(text)
                    log.flush()
                    scope.events.reporter.output(step.id, text)

            try:
                done = work(on_output, number)
            except EngineUnavailable:
                raise
            except PipeError as problem:
                done = WorkDone(ExecResult(ExecStatus.ERROR, None, 0.0, detail=str(problem)), {}, str(problem))
            except KeyboardInterrupt:
                scope.store.finish_attempt(attempt_id, ExecStatus.CANCELLED.value, None, time.time(), {}, "interrupted")
                raise
            except Exception as problem:  # never leave the attempt `running`
                error = unexpected(scope, problem, step.id, iteration, number)
                done = WorkDone(ExecResult(ExecStatus.ERROR, None, 0.0, detail=error), {}, error)
            finally:
                rest = lines.flush()
                if rest:
                    log.write(rest)
                    scope.events.reporter.output(step.id, rest)
                scope.check_lease()  # the new owner rebuilds the workspace: record nothing of this one
                changes = scope.recorder.record(step.id, iteration, number, scope.watcher.take())
                scope.keep_git_objects()
                self.egress.after_attempt(step, iteration, number)
        if done.waiting:  # the attempt row says so; the run stops here and ends `waiting`
            scope.store.finish_attempt(attempt_id, RunStatus.WAITING.value, None, time.time(), {}, None)
            return AttemptEnd(number, done.result, waiting=True)
        return self._finish(step, attempt_id, number, done, len(changes))

    def _finish(self, step: Step, attempt_id: int, number: int, done: WorkDone, changes: int) -> AttemptEnd:
        """Close the attempt's row and tell how it ended (outputs and error masked)."""
        scope = self.scope
        result, error = done.result, done.error
        if scope.recorder.refused:  # a file over PIPE_MAX_RECORD(_SECONDS): recorded by metadata only
            error = f"{error}; {scope.recorder.refused}" if error else scope.recorder.refused
            if result.status is ExecStatus.SUCCEEDED:
                result = replace(result, status=ExecStatus.FAILED)
        outputs = scope.masker.mask_value(done.outputs)
        error = scope.masker.mask(error) if error else None
        scope.store.finish_attempt(
            attempt_id, result.status.value, result.exit_code, time.time(), outputs, error, runtime=result.runtime
        )
        scope.events.emit(
            EventKind.ATTEMPT_FINISHED,
            step=step.id,
            attempt=number,
            status=result.status.value,
            exit_code=result.exit_code,
            duration=round(result.duration, 3),
            changes=changes,
            error=error,
        )
        return AttemptEnd(number, result, outputs, error)


def should_retry(policy: RetryPolicy, end: AttemptEnd) -> bool:
    """Whether `policy` retries after `end`: never after success, a wait point or a cancel; after
    a timeout if `on` has `timeout`; after a listed exit code; else if `on` has `failure`."""
    status = end.result.status
    if end.waiting or (status is ExecStatus.SUCCEEDED and end.error is None):
        return False
    if status is ExecStatus.TIMEOUT:
        return "timeout" in policy.on
    if status is ExecStatus.CANCELLED:
        return False
    if end.result.exit_code is not None and end.result.exit_code in policy.on:
        return True
    return "failure" in policy.on
