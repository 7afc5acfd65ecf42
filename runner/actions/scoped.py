"""The store as actions see it: small views scoped to one step or one run, implementing the
interfaces of runner/actions/base.py (Approvals, Children). The engine builds them for each
attempt; an action never holds the store itself."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from runner.names import EventKind
from runner.store import ApprovalRecord, AttemptRecord, RunRecord, StepRecord, Store


@dataclass(frozen=True)
class StepApprovals:
    """The approval of one wait point: run `run_id`, step `step_id`, repeat `iteration`."""

    store: Store
    run_id: str
    step_id: str
    iteration: int

    def current(self) -> ApprovalRecord | None:
        """The approval as stored; None before it was first requested."""
        return self.store.approval(self.run_id, self.step_id, self.iteration)

    def request(self, after_comment: int) -> ApprovalRecord:
        """Store the request (once); only forge comments with an id above `after_comment` decide."""
        return self.store.request_approval(self.run_id, self.step_id, self.iteration, after_comment)

    def decide(self, decision: str, comment: str | None, by: str) -> ApprovalRecord:
        """Record a decision found on the forge. Raises UsageError when no approval is open."""
        return self.store.decide(self.run_id, decision, comment, by)


@dataclass(frozen=True)
class StoreChildren:
    """Reads of the child runs of run `parent_id` (and of their records)."""

    store: Store
    parent_id: str

    def runs(self) -> list[RunRecord]:
        """The child runs, oldest first."""
        return self.store.children(self.parent_id)

    def last_event(self, run_id: str) -> int:
        """The id of run `run_id`'s newest event (0 when it has none)."""
        return max((event.id for event in self.store.events(run_id)), default=0)

    def changed_inputs(self, run_id: str, after: int) -> dict[str, list[str]]:
        """{step id: output names} of run `run_id`'s newest `inputs_changed` event after `after`."""
        found = [e.data for e in self.store.events(run_id, after) if e.kind == EventKind.INPUTS_CHANGED]
        if not found:
            return {}
        return {str(step): [str(name) for name in names] for step, names in found[-1].get("steps", {}).items()}

    def pull_request_url(self, run_id: str) -> str:
        """The pull request run `run_id` opened or updated ("" when none)."""
        return self.store.run(run_id).resume_state.state.pull_request_url or ""

    def steps(self, run_id: str) -> list[StepRecord]:
        """Run `run_id`'s step results."""
        return self.store.steps(run_id)


def step_attempts(store: Store, run_id: str, step_id: str, iteration: int) -> Sequence[AttemptRecord]:
    """The attempts of one step in one repeat iteration, oldest first (the running one included)."""
    return [a for a in store.attempts(run_id) if a.step_id == step_id and a.iteration == iteration]
