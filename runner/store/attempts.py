"""Attempts of steps and the events of runs in the store."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from runner.names import AttemptStatus
from runner.store.connection import Connection
from runner.store.records import AttemptRecord, EventRecord, decode


class AttemptTables(Connection):
    """Tables `attempts` and `events`."""

    def start_attempt(
        self, run_id: str, step_id: str, iteration: int, number: int, log_path: Path, started_at: float
    ) -> int:
        """Record that attempt `number` (from 1) of a step started (status `running`), and make the
        step the run's current one; returns the attempt's id."""
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT INTO attempts (run_id, step_id, iteration, number, status, started_at, log_path)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (run_id, step_id, iteration, number, AttemptStatus.RUNNING.value, started_at, str(log_path)),
            )
            db.execute(
                "UPDATE runs SET current_step = ?, heartbeat_at = ? WHERE id = ?", (step_id, time.time(), run_id)
            )
            return int(cursor.lastrowid or 0)

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
                "UPDATE attempts SET status = ?, exit_code = ?, finished_at = ?, outputs = ?, error = ?,"
                " runtime = COALESCE(?, runtime) WHERE id = ?",
                (
                    AttemptStatus(status).value,
                    exit_code,
                    finished_at,
                    json.dumps(dict(outputs)),
                    error,
                    runtime,
                    attempt_id,
                ),
            )

    def attempts(self, run_id: str) -> list[AttemptRecord]:
        """A run's attempts in the order they started."""
        rows = self._all("SELECT * FROM attempts WHERE run_id = ? ORDER BY id", (run_id,))
        return [decode(AttemptRecord, row) for row in rows]

    def interrupt_attempts(self, run_id: str, reason: str) -> int:
        """Mark the run's attempts still `running` (their process died) as `interrupted`, with
        `reason` as their error; returns how many."""
        with self.transaction() as db:
            cursor = db.execute(
                "UPDATE attempts SET status = ?, finished_at = ?, error = ? WHERE run_id = ? AND status = ?",
                (AttemptStatus.INTERRUPTED.value, time.time(), reason, run_id, AttemptStatus.RUNNING.value),
            )
            return cursor.rowcount

    def add_event(
        self, run_id: str, kind: str, step_id: str | None = None, data: Mapping[str, Any] | None = None
    ) -> None:
        """Record an event of the run (`kind` usually a runner.names.EventKind), stamped now."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO events (run_id, at, kind, step_id, data) VALUES (?, ?, ?, ?, ?)",
                (run_id, time.time(), str(kind), step_id, json.dumps(dict(data or {}))),
            )

    def events(self, run_id: str, after: int = 0) -> list[EventRecord]:
        """A run's events with ids above `after`, oldest first."""
        rows = self._all(
            "SELECT id, at, kind, step_id, data FROM events WHERE run_id = ? AND id > ? ORDER BY id", (run_id, after)
        )
        return [decode(EventRecord, row) for row in rows]
