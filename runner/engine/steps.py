"""Step execution: steps in order, `if:` conditions, repeat groups, retries and timeouts, and
each step's result recorded in the store.

Semantics follow GitHub Actions where they overlap: a step runs when its `if:` holds (default
`success()`); `outcome` is the result before `continue-on-error` and `conclusion` after it;
`failure()` holds once any earlier step concluded `failure`. A wait point does not raise: its
attempt ends `waiting`, and the step loop stops with a `Waiting` naming the step.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from runner.engine.attempts import AttemptEnd, Attempts
from runner.engine.context import ActionCall, action_work
from runner.engine.environment import first_failure, step_expressions
from runner.engine.sandboxing import DEFAULTS, Sandboxes
from runner.engine.scope import RunScope
from runner.engine.work import Work, script_work
from runner.errors import InputRefused, TemplateError
from runner.names import EventKind, Outcome
from runner.pipeline.expressions import Expressions
from runner.pipeline.model import Step
from runner.results import StepResult, summary
from runner.store import StepRecord
from sandbox.base import ExecStatus


@dataclass(frozen=True)
class Waiting:
    """The run stopped at the wait point `step_id`, waiting for a decision."""

    step_id: str


class StepRunner:
    """Runs one run's steps. `earlier` are the results kept from before a resume (in the order
    they ended); `skip` the ids of steps to skip; `inner` (step id, iteration) where a resumed
    repeat group continues; `on_refused` is told of an InputRefused an action raised."""

    def __init__(
        self,
        scope: RunScope,
        sandboxes: Sandboxes,
        attempts: Attempts,
        *,
        earlier: list[StepResult],
        skip: frozenset[str] = frozenset(),
        inner: tuple[str, int] | None = None,
        on_refused: Callable[[InputRefused], None],
    ) -> None:
        self.scope = scope
        self.sandboxes = sandboxes
        self.attempts = attempts
        self.order: list[StepResult] = list(earlier)
        self.results: dict[str, StepResult] = {r.step_id: r for r in earlier}
        self.skip = skip
        self._inner = inner
        self._on_refused = on_refused
        self._position = {step.id: index for index, step in enumerate(scope.pipeline.all_steps())}

    def failed_step(self) -> str | None:
        """The id of the first step whose conclusion is failure, or None."""
        return first_failure(self.order)

    def expressions(self, iteration: int) -> Expressions:
        """The expression context of repeat `iteration` (0 outside one) as the run stands now."""
        return step_expressions(self.scope, self.results, self.failed_step(), iteration)

    def run(self, steps: list[Step], iteration: int = 0) -> Waiting | None:
        """Run `steps` in order, storing each result (with the marks of the changes it made) and
        telling its end; returns a Waiting when one stops at a wait point (the rest do not run)."""
        store, run_id = self.scope.store, self.scope.run_id
        for index, step in enumerate(steps):
            start_mark = store.last_change_id(run_id)
            result = self._step(step, iteration, steps[index + 1 :])
            if isinstance(result, Waiting):
                return result
            self.results[step.id] = result
            self.order.append(result)
            record = StepRecord(
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
                end_mark=store.last_change_id(run_id),
            )
            store.record_step(run_id, record)
            self.scope.events.emit(EventKind.STEP_FINISHED, step=step.id, **summary(result))
        return None

    def _step(self, step: Step, iteration: int, upcoming: list[Step]) -> StepResult | Waiting:
        started = time.time()
        events = self.scope.events
        if step.id in self.skip:
            events.emit(EventKind.STEP_SKIPPED, step=step.id, reason="skipped on resume")
            return _skipped(step, iteration, started)
        expressions = self.expressions(iteration)
        condition = step.condition if step.condition is not None else "success()"
        try:
            should_run = expressions.evaluate(condition)
        except TemplateError as problem:
            return self._failed(step, iteration, started, f"if: {problem}")
        if not should_run:
            events.emit(EventKind.STEP_SKIPPED, step=step.id, reason=f"if: {condition}")
            return _skipped(step, iteration, started)
        name = _render_or(expressions, step.display_name)
        events.emit(EventKind.STEP_STARTED, step=step.id, name=self.scope.masker.mask(name), iteration=iteration)
        if step.repeat is not None:
            return self._repeat(step, started)
        try:
            work = self._work(step, iteration, expressions)
        except TemplateError as problem:
            return self._failed(step, iteration, started, str(problem))
        self.sandboxes.warm(upcoming)
        end = self.attempts.run(step, iteration, work, lambda: self.sandboxes.warm(upcoming))
        if end.waiting:
            return Waiting(step.id)
        return _ended(step, iteration, started, end)

    def _work(self, step: Step, iteration: int, expressions: Expressions) -> Work:
        """The work of an attempt of `step`, its templates rendered (raises TemplateError)."""
        env = {key: expressions.render(value) for key, value in step.env.items()}
        env["PIPE_STEP"] = step.id
        timeout = step.timeout or self.scope.settings(step).timeout or DEFAULTS.timeout or 1800.0
        if step.run is not None:
            script = expressions.render_script(step.run)
            return script_work(step, self.sandboxes, script, env, timeout, self.scope.settings(step).memory)
        args = expressions.render_value(dict(step.with_))
        call = ActionCall(step, iteration, args, env, timeout)
        return action_work(self.scope, call, self.sandboxes, self._on_refused)

    def _repeat(self, step: Step, started: float) -> StepResult | Waiting:
        """A repeat group: its steps once per iteration (from 1) until `until` holds or `max`."""
        assert step.repeat is not None
        iterations, first, steps = 0, 1, list(step.repeat.steps)
        if self._inner is not None and self._inner[0] in {s.id for s in steps}:  # resumed at a wait point
            inner_id, first = self._inner
            steps = steps[[s.id for s in steps].index(inner_id) :]
            self._inner = None
        for iteration in range(first, step.repeat.max + 1):
            iterations = iteration
            waiting = self.run(steps, iteration)
            if waiting is not None:
                return waiting
            steps = list(step.repeat.steps)
            if step.repeat.until is None:
                continue
            try:
                if self.expressions(iteration).evaluate(step.repeat.until):
                    break
            except TemplateError as problem:
                return self._failed(step, 0, started, f"until: {problem}")
        inner = [self.results[s.id] for s in step.repeat.steps if s.id in self.results]
        outcome = Outcome.FAILURE if any(r.conclusion is Outcome.FAILURE for r in inner) else Outcome.SUCCESS
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
        """A step that failed before any attempt (a template that does not render)."""
        error = self.scope.masker.mask(error)
        self.scope.events.emit(EventKind.STEP_ERROR, step=step.id, error=error)
        conclusion = Outcome.SUCCESS if step.continue_on_error else Outcome.FAILURE
        return StepResult(
            step.id, Outcome.FAILURE, conclusion, iteration, started_at=started, finished_at=time.time(), error=error
        )


def _skipped(step: Step, iteration: int, started: float) -> StepResult:
    return StepResult(step.id, Outcome.SKIPPED, Outcome.SKIPPED, iteration, started_at=started, finished_at=started)


def _ended(step: Step, iteration: int, started: float, end: AttemptEnd) -> StepResult:
    """A step's result from its last attempt: `outcome` failure on any error, `conclusion`
    success after a failure under `continue-on-error`."""
    failed = end.result.status is not ExecStatus.SUCCEEDED or end.error is not None
    outcome = Outcome.FAILURE if failed else Outcome.SUCCESS
    conclusion = Outcome.SUCCESS if failed and step.continue_on_error else outcome
    return StepResult(
        step.id,
        outcome,
        conclusion,
        iteration,
        attempts=end.number,
        outputs=end.outputs,
        started_at=started,
        finished_at=time.time(),
        status=end.result.status.value,
        error=end.error,
    )


def _render_or(expressions: Expressions, template: str) -> str:
    try:
        return expressions.render(template)
    except TemplateError:
        return template
