"""Step and run results: outcomes as in GitHub Actions, and the one place a run's exit code is reduced."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from runner.errors import ExitCode
from runner.names import Outcome, RunStatus


@dataclass
class StepResult:
    """The result of one step (one repeat iteration of it). Times are epoch seconds; `status` is
    the last attempt's sandbox status (`succeeded`, `failed`, `timeout`, `oom`, ...)."""

    step_id: str
    outcome: Outcome
    conclusion: Outcome
    iteration: int = 0
    attempts: int = 0
    outputs: dict[str, str] = field(default_factory=dict)
    started_at: float | None = None
    finished_at: float | None = None
    status: str = ""
    error: str | None = None

    @property
    def duration(self) -> float:
        if self.started_at is None or self.finished_at is None:
            return 0.0
        return self.finished_at - self.started_at


@dataclass
class RunResult:
    """The end of a run."""

    run_id: str
    status: RunStatus
    steps: list[StepResult]
    error: str | None = None

    @property
    def exit_code(self) -> ExitCode:
        """0 succeeded, 1 failed, 3 waiting, 130 cancelled (the exit codes of runner.errors.ExitCode)."""
        return {
            RunStatus.SUCCEEDED: ExitCode.SUCCESS,
            RunStatus.FAILED: ExitCode.STEP_FAILED,
            RunStatus.WAITING: ExitCode.WAITING,
            RunStatus.CANCELLED: ExitCode.INTERRUPTED,
        }.get(self.status, ExitCode.STEP_FAILED)


def summary(result: StepResult) -> dict[str, Any]:
    """A step result as the `step_finished`, `step_recalled` and `run_finished` events carry it:
    iteration, outcome, conclusion, attempts, duration (s, rounded to ms), status, error."""
    return {
        "iteration": result.iteration,
        "outcome": result.outcome.value,
        "conclusion": result.conclusion.value,
        "attempts": result.attempts,
        "duration": round(result.duration, 3),
        "status": result.status,
        "error": result.error,
    }


def agent_totals(results: list[StepResult]) -> dict[str, Any]:
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
