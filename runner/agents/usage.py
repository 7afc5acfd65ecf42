"""What a run's agents cost: the `cost_usd` and `turns` their steps reported, summed over the run
and its child runs (a milestone's issue-to-pr runs), for `pipe show`."""

from __future__ import annotations

from dataclasses import dataclass

from runner.store import Store


@dataclass(frozen=True)
class Usage:
    """Summed agent usage: cost in USD (None when no step reported one), turns, and how many
    agent steps reported anything."""

    cost_usd: float | None
    turns: int
    steps: int

    def describe(self) -> str:
        """`$0.1234, 12 turn(s) in 3 agent step(s)`."""
        cost = f"${self.cost_usd:.4f}" if self.cost_usd is not None else "cost not reported"
        return f"{cost}, {self.turns} turn(s) in {self.steps} agent step(s)"


def run_usage(store: Store, run_id: str, depth: int = 0) -> Usage:
    """The agent usage of run `run_id` and (up to 8 levels of) its children. A step's `cost_usd`
    already sums its attempts; turns are summed over every attempt."""
    cost: float | None = None
    turns = steps = 0
    for step in store.steps(run_id):
        if "cost_usd" in step.outputs or "turns" in step.outputs:
            steps += 1
            if step.outputs.get("cost_usd"):
                cost = (cost or 0.0) + float(step.outputs["cost_usd"])
    for attempt in store.attempts(run_id):
        if attempt.outputs.get("turns", "").isdigit():
            turns += int(attempt.outputs["turns"])
    if depth < 8:
        for child in store.children(run_id):
            found = run_usage(store, child.id, depth + 1)
            steps, turns = steps + found.steps, turns + found.turns
            if found.cost_usd is not None:
                cost = (cost or 0.0) + found.cost_usd
    return Usage(cost, turns, steps)
