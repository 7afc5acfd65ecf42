"""Step and run results: outcomes as in GitHub Actions, and the one place a run's exit code is reduced."""

from __future__ import annotations

from dataclasses import dataclass, field

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
        """0 succeeded, 1 failed, 3 waiting, 130 cancelled (DESIGN.md's exit codes)."""
        return {
            RunStatus.SUCCEEDED: ExitCode.SUCCESS,
            RunStatus.FAILED: ExitCode.STEP_FAILED,
            RunStatus.WAITING: ExitCode.WAITING,
            RunStatus.CANCELLED: ExitCode.INTERRUPTED,
        }.get(self.status, ExitCode.STEP_FAILED)
