"""The run's end says what its agents cost: summed from the agent steps' outputs, printed once."""

from __future__ import annotations

import io

from runner.names import Outcome
from runner.reporters.console import PlainReporter
from runner.results import StepResult
from runner.results import agent_totals as _agent_totals


def test_agent_cost_and_turns_are_summed_and_printed_at_the_end() -> None:
    steps = [
        StepResult("implement", Outcome.SUCCESS, Outcome.SUCCESS, 1, outputs={"cost_usd": "0.0123", "turns": "3"}),
        StepResult("review", Outcome.SUCCESS, Outcome.SUCCESS, 1, outputs={"cost_usd": "0.002", "turns": "2"}),
        StepResult("verify", Outcome.SUCCESS, Outcome.SUCCESS, 0, outputs={"ok": "true"}),
    ]
    totals = _agent_totals(steps)
    assert totals == {"agent_cost_usd": 0.0143, "agent_turns": 5}
    assert _agent_totals(steps[2:]) == {}
    out = io.StringIO()
    PlainReporter(out).event("run_finished", {"run": "R", "status": "succeeded", "steps": [], **totals})
    assert "run R succeeded (agents: $0.0143, 5 turns)" in out.getvalue()
