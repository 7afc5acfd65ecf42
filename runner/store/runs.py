"""Pipelines, runs, their step results and concurrency groups in the store (SQLAlchemy Core
expressions over runner/store/tables.py)."""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import Select, bindparam, delete, insert, select, update
from sqlalchemy.sql import Executable

from runner.errors import UsageError
from runner.names import RunStatus
from runner.store.connection import Connection, Database, DuplicateKey
from runner.store.records import ResumeState, RunRecord, StepRecord, decode
from runner.store.tables import concurrency_groups, pipelines, runs, steps

# A run's row with its pipeline's name and path (what RunRecord decodes).
RUN_QUERY: Select[Any] = select(
    runs, pipelines.c.name.label("pipeline_name"), pipelines.c.path.label("pipeline_path")
).join_from(runs, pipelines, runs.c.pipeline_id == pipelines.c.id)
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


def _record_step(connection: Connection) -> Executable:
    statement = connection._upsert(steps)
    keys = ("run_id", "step_id", "iteration")
    return statement.on_conflict_do_update(
        index_elements=list(keys), set_={c.name: statement.excluded[c.name] for c in steps.c if c.name not in keys}
    )


def _update_run(_connection: Connection) -> Executable:
    return update(runs).where(runs.c.id == bindparam("run_key"))  # SET: the columns the parameters name


class RunTables(Connection):
    """Tables `pipelines`, `runs`, `steps` and `concurrency_groups`."""

    def add_pipeline(self, name: str, path: str, digest: str, definition: str) -> int:
        """The id of the stored pipeline with this digest, storing it first if new."""
        with self.transaction() as db:
            db.execute(
                self._upsert(pipelines)
                .values(name=name, path=path, digest=digest, definition=definition, created_at=time.time())
                .on_conflict_do_nothing(index_elements=["digest"])
            )
            return int(db.execute(select(pipelines.c.id).where(pipelines.c.digest == digest)).scalar_one())

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
        resume_state: ResumeState | None = None,
        workspace: Path | None = None,
        queue: str | None = None,
    ) -> str:
        """A new run in status `pending`; returns its id. `resume_state` (the forge, default image
        and publishing a resume must use again) and `workspace` (a directory the person chose;
        None: set once the default one is made) are written in the same INSERT, so a runner
        killed at any moment after it leaves a run that resumes with what it was started with.
        `queue` is the broker queue a submitted run is sent to (runner/workers/), None for a run
        the creating process executes itself.

        With `group` (a concurrency group), the run takes the group in the same transaction, and
        `lease` (owner, host, seconds) is set at once; raises GroupBusy naming the run that holds the
        group while that run's lease is alive (`is_alive(pid)` for runs on this host). `parent` is
        (parent run id, child key) for a child run.
        """
        for _ in range(10):
            try:
                return self._insert_run(
                    pipeline_id, inputs, trigger, group, lease, is_alive, parent, resume_state, workspace, queue
                )
            except DuplicateKey as error:
                if "runs.id" not in str(error) and "runs_pkey" not in str(error):  # SQLite's words, PostgreSQL's
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
        resume_state: ResumeState | None,
        workspace: Path | None,
        queue: str | None,
    ) -> str:
        now = time.time()
        run_id = new_run_id(now)
        owner, host, seconds = lease if lease is not None else (None, None, 0.0)
        parent_id, child_key = parent if parent is not None else (None, None)
        with self.transaction() as db:
            db.execute(
                insert(runs).values(
                    id=run_id,
                    pipeline_id=pipeline_id,
                    status=RunStatus.PENDING.value,
                    inputs=json.dumps(dict(inputs)),
                    workspace=str(workspace) if workspace is not None else "",
                    trigger=trigger,
                    created_at=now,
                    pid=os.getpid(),
                    lease_owner=owner,
                    lease_until=now + seconds if owner else None,
                    host=host,
                    parent_id=parent_id,
                    child_key=child_key,
                    queue=queue,
                    resume_state=json.dumps(resume_state.as_dict()) if resume_state is not None else None,
                )
            )
            if group is not None:
                self._take_group(db, group, run_id, now, lease, is_alive)
        return run_id

    def _take_group(
        self,
        db: Database,
        group: str,
        run_id: str,
        now: float,
        lease: tuple[str, str, float] | None,
        is_alive: Callable[[int], bool] | None,
    ) -> None:
        """Make `run_id` the holder of `group`, inside the caller's transaction; raise GroupBusy
        (rolling the new run back) when a live run holds it: pending or running with a lease not yet
        expired, unless it is on this host and its process is dead. The group's row is inserted if
        new, then locked (`FOR UPDATE`), so of two processes taking one group the second waits for
        the first's commit and then sees its holder."""
        db.execute(
            self._upsert(concurrency_groups)
            .values(name=group, run_id=run_id)
            .on_conflict_do_nothing(index_elements=["name"])
        )
        holder = (
            db.execute(
                select(runs.c.id, runs.c.lease_until, runs.c.host, runs.c.pid, runs.c.status)
                .join_from(concurrency_groups, runs, runs.c.id == concurrency_groups.c.run_id)
                .where(concurrency_groups.c.name == group)
                .with_for_update(of=concurrency_groups)
            )
            .mappings()
            .one()
        )
        if holder["id"] != run_id and holder["status"] in _LIVE and holder["lease_until"]:
            local = lease is not None and holder["host"] == lease[1]
            dead = local and holder["pid"] and is_alive is not None and not is_alive(holder["pid"])
            if holder["lease_until"] > now and not dead:
                raise GroupBusy(group, holder["id"])
        db.execute(update(concurrency_groups).where(concurrency_groups.c.name == group).values(run_id=run_id))

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
        with self.transaction() as db:
            db.execute(self._statement("update_run", _update_run), {"run_key": run_id, **fields})

    def save_resume_state(self, run_id: str, state: ResumeState) -> None:
        """Keep what a resume of the run must use again (see ResumeState)."""
        self.update_run(run_id, resume_state=state)

    def runs(self, limit: int = 50, status: str | None = None) -> list[RunRecord]:
        """The newest runs first, at most `limit`, only those in `status` when given."""
        query = RUN_QUERY.where(runs.c.status == status) if status else RUN_QUERY
        rows = self._all(query.order_by(runs.c.created_at.desc()).limit(limit))
        return [decode(RunRecord, row) for row in rows]

    def run(self, run_id: str) -> RunRecord:
        """The run whose id is, or uniquely starts with, `run_id`; `latest` is the newest run.

        Raises UsageError when no run (or more than one) matches.
        """
        if run_id == "latest":
            rows = self._all(RUN_QUERY.order_by(runs.c.created_at.desc()).limit(1))
        else:
            rows = self._all(RUN_QUERY.where(runs.c.id.startswith(run_id, autoescape=True)).limit(2))
        if not rows:
            raise UsageError(f"no run {run_id!r} in {self.where}")
        if len(rows) > 1:
            raise UsageError(f"run id {run_id!r} is ambiguous; give more characters")
        return decode(RunRecord, rows[0])

    def submitted_queues(self) -> list[str]:
        """The broker queues runs were submitted to (runs.queue), each once."""
        rows = self._all(select(runs.c.queue).where(runs.c.queue.is_not(None)).distinct())
        return sorted(str(row["queue"]) for row in rows)

    def children(self, parent_id: str) -> list[RunRecord]:
        """The child runs of a run, oldest first."""
        rows = self._all(RUN_QUERY.where(runs.c.parent_id == parent_id).order_by(runs.c.created_at))
        return [decode(RunRecord, row) for row in rows]

    def pipeline_definition(self, run_id: str) -> str:
        """The pipeline text the run was started with."""
        row = self._one(
            select(pipelines.c.definition)
            .join_from(pipelines, runs, runs.c.pipeline_id == pipelines.c.id)
            .where(runs.c.id == run_id)
        )
        assert row is not None, f"no run {run_id}"
        return str(row["definition"])

    def record_step(self, run_id: str, record: StepRecord) -> None:
        """Store (or replace) a step's result."""
        values = {
            "run_id": run_id,
            "step_id": record.step_id,
            "iteration": record.iteration,
            "position": record.position,
            "outcome": record.outcome,
            "conclusion": record.conclusion,
            "attempts": record.attempts,
            "started_at": record.started_at,
            "finished_at": record.finished_at,
            "outputs": json.dumps(record.outputs),
            "error": record.error,
            "start_mark": record.start_mark,
            "end_mark": record.end_mark,
        }
        with self.transaction() as db:
            db.execute(self._statement("record_step", _record_step), values)

    def steps(self, run_id: str) -> list[StepRecord]:
        """A run's step results in pipeline order (by position, then repeat iteration)."""
        rows = self._all(select(steps).where(steps.c.run_id == run_id).order_by(steps.c.position, steps.c.iteration))
        return [decode(StepRecord, row) for row in rows]

    def delete_steps(self, run_id: str, positions_from: int) -> None:
        """Forget the results of steps at `positions_from` and later (they will run again)."""
        with self.transaction() as db:
            db.execute(delete(steps).where(steps.c.run_id == run_id, steps.c.position >= positions_from))
