"""Attempts of steps and the events of runs in the store."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update

from runner.names import AttemptStatus
from runner.store.connection import Connection
from runner.store.records import AttemptRecord, EventRecord, decode
from runner.store.tables import attempts, events, runs

# The hot writes of a step: constant statements, their values given at execution (SQLAlchemy's
# compiled cache then costs nothing per call).
_START = insert(attempts).returning(attempts.c.id)
_CURRENT_STEP = update(runs).where(runs.c.id == bindparam("run_key"))
_FINISH = (
    update(attempts)
    .where(attempts.c.id == bindparam("attempt_key"))
    .values(runtime=func.coalesce(bindparam("runtime_given", type_=attempts.c.runtime.type), attempts.c.runtime))
)
_EVENT = insert(events)


class AttemptTables(Connection):
    """Tables `attempts` and `events`."""

    def start_attempt(
        self, run_id: str, step_id: str, iteration: int, number: int, log_path: Path, started_at: float
    ) -> int:
        """Record that attempt `number` (from 1) of a step started (status `running`), and make the
        step the run's current one; returns the attempt's id."""
        with self.transaction() as db:
            result = db.execute(
                _START,
                {
                    "run_id": run_id,
                    "step_id": step_id,
                    "iteration": iteration,
                    "number": number,
                    "status": AttemptStatus.RUNNING.value,
                    "started_at": started_at,
                    "log_path": str(log_path),
                },
            )
            db.execute(_CURRENT_STEP, {"run_key": run_id, "current_step": step_id, "heartbeat_at": time.time()})
            return int(result.scalar_one())

    def finish_attempt(
        self,
        attempt_id: int,
        status: AttemptStatus | str,
        exit_code: int | None,
        finished_at: float,
        outputs: Mapping[str, str],
        error: str | None,
        runtime: str | None = None,
    ) -> None:
        """Record how an attempt ended; `runtime` is the container runtime its sandbox used.
        Raises ValueError for a status AttemptStatus does not have."""
        with self.transaction() as db:
            db.execute(
                _FINISH,
                {
                    "attempt_key": attempt_id,
                    "status": AttemptStatus(status).value,
                    "exit_code": exit_code,
                    "finished_at": finished_at,
                    "outputs": json.dumps(dict(outputs)),
                    "error": error,
                    "runtime_given": runtime,
                },
            )

    def attempts(self, run_id: str) -> list[AttemptRecord]:
        """A run's attempts in the order they started."""
        rows = self._all(select(attempts).where(attempts.c.run_id == run_id).order_by(attempts.c.id))
        return [decode(AttemptRecord, row) for row in rows]

    def interrupt_attempts(self, run_id: str, reason: str) -> int:
        """Mark the run's attempts still `running` (their process died) as `interrupted`, with
        `reason` as their error; returns how many."""
        with self.transaction() as db:
            result = db.execute(
                update(attempts)
                .where(attempts.c.run_id == run_id, attempts.c.status == AttemptStatus.RUNNING.value)
                .values(status=AttemptStatus.INTERRUPTED.value, finished_at=time.time(), error=reason)
                .returning(attempts.c.id)
            )
            return len(result.all())

    def add_event(
        self, run_id: str, kind: str, step_id: str | None = None, data: Mapping[str, Any] | None = None
    ) -> None:
        """Record an event of the run (`kind` usually a runner.names.EventKind), stamped now."""
        with self.transaction() as db:
            db.execute(
                _EVENT,
                {
                    "run_id": run_id,
                    "at": time.time(),
                    "kind": str(kind),
                    "step_id": step_id,
                    "data": json.dumps(dict(data or {})),
                },
            )

    def events(self, run_id: str, after: int = 0) -> list[EventRecord]:
        """A run's events with ids above `after`, oldest first."""
        rows = self._all(
            select(events.c.id, events.c.at, events.c.kind, events.c.step_id, events.c.data)
            .where(events.c.run_id == run_id, events.c.id > after)
            .order_by(events.c.id)
        )
        return [decode(EventRecord, row) for row in rows]
