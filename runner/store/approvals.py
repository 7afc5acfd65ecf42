"""The approvals of wait points (`wait/approval` steps) in the store."""

from __future__ import annotations

import time

from runner.errors import UsageError
from runner.names import Decision
from runner.store.connection import Connection
from runner.store.records import ApprovalRecord, decode


class ApprovalTables(Connection):
    """Table `approvals`: one row per wait point reached (run, step, repeat iteration)."""

    def approval(self, run_id: str, step_id: str, iteration: int) -> ApprovalRecord | None:
        """The approval of one wait point, or None before it was first requested."""
        row = self._one(
            "SELECT * FROM approvals WHERE run_id = ? AND step_id = ? AND iteration = ?", (run_id, step_id, iteration)
        )
        return decode(ApprovalRecord, row) if row else None

    def request_approval(self, run_id: str, step_id: str, iteration: int, after_comment: int) -> ApprovalRecord:
        """The pending approval of a wait point, created on the first request (`after_comment`:
        the forge comment id after which a decision by comment counts)."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO approvals (run_id, step_id, iteration, requested_at, after_comment)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (run_id, step_id, iteration) DO NOTHING",
                (run_id, step_id, iteration, time.time(), after_comment),
            )
        found = self.approval(run_id, step_id, iteration)
        assert found is not None
        return found

    def decide(self, run_id: str, decision: Decision | str, comment: str | None, by: str) -> ApprovalRecord:
        """Record `by`'s decision on the run's open approval (the newest still pending). Raises
        UsageError when none is open, ValueError for a decision Decision does not have."""
        value = Decision(decision).value
        with self.transaction() as db:
            row = db.execute(
                "SELECT step_id, iteration FROM approvals WHERE run_id = ? AND decision IS NULL"
                " ORDER BY requested_at DESC LIMIT 1",
                (run_id,),
            ).fetchone()
            if row is None:
                raise UsageError(f"run {run_id} is not waiting for an approval")
            db.execute(
                "UPDATE approvals SET decision = ?, comment = ?, decided_by = ?, decided_at = ?"
                " WHERE run_id = ? AND step_id = ? AND iteration = ?",
                (value, comment, by, time.time(), run_id, row["step_id"], row["iteration"]),
            )
        found = self.approval(run_id, row["step_id"], row["iteration"])
        assert found is not None
        return found
