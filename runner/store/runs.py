"""Pipelines, runs, their step results and concurrency groups in the store."""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any

from runner.errors import UsageError
from runner.names import RunStatus
from runner.store.connection import Connection, DuplicateKey
from runner.store.records import ResumeState, RunRecord, StepRecord, decode

RUN_QUERY = (
    "SELECT runs.*, pipelines.name AS pipeline_name, pipelines.path AS pipeline_path"
    " FROM runs JOIN pipelines ON pipelines.id = runs.pipeline_id"
)
_RUN_FIELDS = frozenset(
    {"status", "current_step", "resume_state", "error", "started_at", "finished_at", "pid", "workspace", "worker"}
)
_LIVE = (RunStatus.PENDING.value, RunStatus.RUNNING.value)


class GroupBusy(Exception):
    """A concurrency group is held by a live run (`holder`)."""

    def __init__(self, group: str, holder: str) -> None:
        super().__init__(f"concurrency group {group!r} is busy with run {holder}")
        self.group = group
        self.holder = holder


def new_run_id(now: float | None = None) -> str:
    """`YYYYMMDD-HHMMSS-xxxxxx` (UTC): sortable by time, unique by its random suffix (create_run
    retries the rare collision)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now or time.time()))
    return f"{stamp}-{secrets.token_hex(3)}"


class RunTables(Connection):
    """Tables `pipelines`, `runs`, `steps` and `concurrency_groups`."""

    def add_pipeline(self, name: str, path: str, digest: str, definition: str) -> int:
        """The id of the stored pipeline with this digest, storing it first if new."""
        with self.transaction() as db:
            row = db.execute("SELECT id FROM pipelines WHERE digest = ?", (digest,)).fetchone()
            if row:
                return int(row[0])
            cursor = db.execute(
                "INSERT INTO pipelines (name, path, digest, definition, created_at) VALUES (?, ?, ?, ?, ?)",
                (name, path, digest, definition, time.time()),
            )
            return int(cursor.lastrowid or 0)

    def create_run(
        self,
        pipeline_id: int,
        inputs: Mapping[str, Any],
        trigger: str = "cli",
        *,
        group: str | None = None,
        lease: tuple[str, str, float] | None = None,
        is_alive: Callable[[int], bool] | None = None,
        parent: tuple[str, str] | None = None,
    ) -> str:
        """A new run in status `pending` (its workspace is set once made); returns its id.

        With `group` (a concurrency group), the run takes the group in the same transaction, and
        `lease` (owner, host, seconds) is set at once; raises GroupBusy naming the run that holds the
        group while that run's lease is alive (`is_alive(pid)` for runs on this host). `parent` is
        (parent run id, child key) for a child run.
        """
        for _ in range(10):
            try:
                return self._insert_run(pipeline_id, inputs, trigger, group, lease, is_alive, parent)
            except DuplicateKey as error:
                if "runs.id" not in str(error):
                    raise
        raise RuntimeError("could not find a free run id")

    def _insert_run(
        self,
        pipeline_id: int,
        inputs: Mapping[str, Any],
        trigger: str,
        group: str | None,
        lease: tuple[str, str, float] | None,
        is_alive: Callable[[int], bool] | None,
        parent: tuple[str, str] | None,
    ) -> str:
        now = time.time()
        run_id = new_run_id(now)
        with self.transaction() as db:
            if group is not None:
                self._check_group(group, now, lease, is_alive)
            owner, host, seconds = lease if lease is not None else (None, None, 0.0)
            parent_id, child_key = parent if parent is not None else (None, None)
            db.execute(
                "INSERT INTO runs (id, pipeline_id, status, inputs, workspace, trigger, created_at, pid,"
                " lease_owner, lease_until, host, parent_id, child_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    pipeline_id,
                    RunStatus.PENDING.value,
                    json.dumps(dict(inputs)),
                    "",
                    trigger,
                    now,
                    os.getpid(),
                    owner,
                    now + seconds if owner else None,
                    host,
                    parent_id,
                    child_key,
                ),
            )
            if group is not None:
                db.execute(
                    "INSERT INTO concurrency_groups (name, run_id) VALUES (?, ?)"
                    " ON CONFLICT (name) DO UPDATE SET run_id = excluded.run_id",
                    (group, run_id),
                )
        return run_id

    def _check_group(
        self, group: str, now: float, lease: tuple[str, str, float] | None, is_alive: Callable[[int], bool] | None
    ) -> None:
        """Raise GroupBusy when a live run holds `group`: pending or running with a lease not yet
        expired, unless it is on this host and its process is dead. Called inside the transaction."""
        holder = self._one(
            "SELECT runs.id, runs.lease_until, runs.host, runs.pid, runs.status FROM concurrency_groups"
            " JOIN runs ON runs.id = concurrency_groups.run_id WHERE concurrency_groups.name = ?",
            (group,),
        )
        if holder is None or holder["status"] not in _LIVE or not holder["lease_until"]:
            return
        local = lease is not None and holder["host"] == lease[1]
        dead = local and holder["pid"] and is_alive is not None and not is_alive(holder["pid"])
        if holder["lease_until"] > now and not dead:
            raise GroupBusy(group, holder["id"])

    def update_run(self, run_id: str, **fields: Any) -> None:
        """Set columns of a run (`status` a RunStatus or its value, `resume_state` a ResumeState);
        also refreshes its heartbeat. Raises ValueError for an unknown column or status."""
        unknown = set(fields) - _RUN_FIELDS
        if unknown:
            raise ValueError(f"unknown run fields {sorted(unknown)}")
        if "status" in fields:
            fields["status"] = RunStatus(fields["status"]).value
        if "resume_state" in fields:
            state: ResumeState = fields["resume_state"]
            fields["resume_state"] = json.dumps(state.as_dict())
        fields["heartbeat_at"] = time.time()
        assignments = ", ".join(f"{name} = ?" for name in fields)
        with self.transaction() as db:
            db.execute(f"UPDATE runs SET {assignments} WHERE id = ?", (*fields.values(), run_id))

    def save_resume_state(self, run_id: str, state: ResumeState) -> None:
        """Keep what a resume of the run must use again (see ResumeState)."""
        self.update_run(run_id, resume_state=state)

    def runs(self, limit: int = 50, status: str | None = None) -> list[RunRecord]:
        """The newest runs first, at most `limit`, only those in `status` when given."""
        where, params = ("WHERE runs.status = ?", (status,)) if status else ("", ())
        rows = self._all(f"{RUN_QUERY} {where} ORDER BY runs.created_at DESC LIMIT ?", (*params, limit))
        return [decode(RunRecord, row) for row in rows]

    def run(self, run_id: str) -> RunRecord:
        """The run whose id is, or uniquely starts with, `run_id`; `latest` is the newest run.

        Raises UsageError when no run (or more than one) matches.
        """
        if run_id == "latest":
            rows = self._all(f"{RUN_QUERY} ORDER BY runs.created_at DESC LIMIT 1")
        else:
            rows = self._all(f"{RUN_QUERY} WHERE runs.id LIKE ? LIMIT 2", (run_id + "%",))
        if not rows:
            raise UsageError(f"no run {run_id!r} in {self.path}")
        if len(rows) > 1:
            raise UsageError(f"run id {run_id!r} is ambiguous; give more characters")
        return decode(RunRecord, rows[0])

    def children(self, parent_id: str) -> list[RunRecord]:
        """The child runs of a run, oldest first."""
        rows = self._all(f"{RUN_QUERY} WHERE runs.parent_id = ? ORDER BY runs.created_at", (parent_id,))
        return [decode(RunRecord, row) for row in rows]

    def pipeline_definition(self, run_id: str) -> str:
        """The pipeline text the run was started with."""
        row = self._one(
            "SELECT definition FROM pipelines JOIN runs ON runs.pipeline_id = pipelines.id WHERE runs.id = ?", (run_id,)
        )
        assert row is not None, f"no run {run_id}"
        return str(row[0])

    def record_step(self, run_id: str, record: StepRecord) -> None:
        """Store (or replace) a step's result."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO steps (run_id, step_id, iteration, position, outcome, conclusion, attempts,"
                " started_at, finished_at, outputs, error, start_mark, end_mark)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (run_id, step_id, iteration) DO UPDATE SET position = excluded.position,"
                " outcome = excluded.outcome, conclusion = excluded.conclusion, attempts = excluded.attempts,"
                " started_at = excluded.started_at, finished_at = excluded.finished_at, outputs = excluded.outputs,"
                " error = excluded.error, start_mark = excluded.start_mark, end_mark = excluded.end_mark",
                (
                    run_id,
                    record.step_id,
                    record.iteration,
                    record.position,
                    record.outcome,
                    record.conclusion,
                    record.attempts,
                    record.started_at,
                    record.finished_at,
                    json.dumps(record.outputs),
                    record.error,
                    record.start_mark,
                    record.end_mark,
                ),
            )

    def steps(self, run_id: str) -> list[StepRecord]:
        """A run's step results in pipeline order (by position, then repeat iteration)."""
        rows = self._all("SELECT * FROM steps WHERE run_id = ? ORDER BY position, iteration", (run_id,))
        return [decode(StepRecord, row) for row in rows]

    def delete_steps(self, run_id: str, positions_from: int) -> None:
        """Forget the results of steps at `positions_from` and later (they will run again)."""
        with self.transaction() as db:
            db.execute("DELETE FROM steps WHERE run_id = ? AND position >= ?", (run_id, positions_from))
