"""What a run's sandboxes asked of the network: after each attempt, the requests made through the
run's egress proxy are stored as an `egress` event; at the end of an audit-mode run, the minimal
`allow:` list it needed is reported (`egress_audit`)."""

from __future__ import annotations

from typing import Any

from runner.egress.policy import minimal_allow
from runner.engine.scope import RunScope
from runner.errors import PipeError
from runner.names import EventKind
from runner.pipeline.model import Step


class EgressLog:
    """The egress requests of one run's attempts (see the module docstring)."""

    def __init__(self, scope: RunScope) -> None:
        self.scope = scope
        self._audited: list[dict[str, Any]] = []

    def after_attempt(self, step: Step, iteration: int, number: int) -> None:
        """Store the requests attempt `number` of `step` made; an unreadable report is told as a
        `step_error` event (the attempt's own record matters more), never raised."""
        policy = self.scope.settings(step).egress
        try:
            requests = self.scope.egress.collect(policy)
        except PipeError as problem:
            self.scope.events.emit(EventKind.STEP_ERROR, step=step.id, error=str(problem))
            return
        if requests:
            self.scope.events.emit(
                EventKind.EGRESS,
                step=step.id,
                iteration=iteration,
                attempt=number,
                requests=[r.as_dict() for r in requests],
            )
            if policy is not None and policy.mode == "audit":
                self._audited.extend(r.as_dict() for r in requests)

    def close(self) -> None:
        """Remove the run's proxy; after an audit, report the `allow:` list the run needed."""
        self.scope.egress.close()
        if any(p.mode == "audit" for p in self.scope.egress.policies):
            self.scope.events.emit(EventKind.EGRESS_AUDIT, allow=minimal_allow(self._audited))
