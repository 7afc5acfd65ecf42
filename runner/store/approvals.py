"""The approvals of wait points (`wait/approval` steps) in the store."""

from __future__ import annotations

import time

from sqlalchemy import select, update

from runner.errors import UsageError
from runner.names import Decision
from runner.store.connection import Connection
from runner.store.records import ApprovalRecord, decode
from runner.store.tables import approvals


class ApprovalTables(Connection):
    """Table `approvals`: one row per wait point reached (run, step, repeat iteration)."""

    def approval(self, run_id: str, step_id: str, iteration: int) -> ApprovalRecord | None:
        """The approval of one wait point, or None before it was first requested."""
        row = self._one(
            select(approvals).where(
                approvals.c.run_id == run_id, approvals.c.step_id == step_id, approvals.c.iteration == iteration
            )
        )
        return decode(ApprovalRecord, row) if row else None

    def request_approval(self, run_id: str, step_id: str, iteration: int, after_comment: int) -> ApprovalRecord:
        """The pending approval of a wait point, created on the first request (`after_comment`:
        the forge comment id after which a decision by comment counts)."""
        with self.transaction() as db:
            db.execute(
                self._upsert(approvals)
                .values(
                    run_id=run_id,
                    step_id=step_id,
                    iteration=iteration,
                    requested_at=time.time(),
                    after_comment=after_comment,
                )
                .on_conflict_do_nothing(index_elements=["run_id", "step_id", "iteration"])
            )
        found = self.approval(run_id, step_id, iteration)
        assert found is not None
        return found

    def decide(self, run_id: str, decision: Decision | str, comment: str | None, by: str) -> ApprovalRecord:
        """Record `by`'s decision on the run's open approval (the newest still pending). Raises
        UsageError when none is open, ValueError for a decision Decision does not have. The open
        approval's row is locked (`FOR UPDATE`): of two deciders at once, the second finds none open."""
        value = Decision(decision).value
        with self.transaction() as db:
            row = (
                db.execute(
                    select(approvals.c.step_id, approvals.c.iteration)
                    .where(approvals.c.run_id == run_id, approvals.c.decision.is_(None))
                    .order_by(approvals.c.requested_at.desc())
                    .limit(1)
                    .with_for_update()
                )
                .mappings()
                .first()
            )
            if row is None:
                raise UsageError(f"run {run_id} is not waiting for an approval")
            db.execute(
                update(approvals)
                .where(
                    approvals.c.run_id == run_id,
                    approvals.c.step_id == row["step_id"],
                    approvals.c.iteration == row["iteration"],
                    approvals.c.decision.is_(None),
                )
                .values(decision=value, comment=comment, decided_by=by, decided_at=time.time())
            )
        found = self.approval(run_id, row["step_id"], row["iteration"])
        assert found is not None
        return found
