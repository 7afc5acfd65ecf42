"""The state store: SQLite in WAL mode holding pipelines, runs, step results, attempts and events.

Every write is one transaction, so the store survives `kill -9` at any point (DESIGN.md principle 9).
Timestamps are seconds since the epoch (float). The schema is versioned through `PRAGMA user_version`
and upgraded by MIGRATIONS in order. Callers mask secrets before they write.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

from runner.errors import UsageError

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE pipelines (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        path TEXT NOT NULL,
        digest TEXT NOT NULL UNIQUE,
        definition TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        pipeline_id INTEGER NOT NULL REFERENCES pipelines(id),
        status TEXT NOT NULL CHECK (status IN ('pending','running','waiting','succeeded','failed','cancelled')),
        current_step TEXT,
        inputs TEXT NOT NULL,
        outputs TEXT,
        error TEXT,
        workspace TEXT NOT NULL,
        trigger TEXT NOT NULL DEFAULT 'cli',
        created_at REAL NOT NULL,
        started_at REAL,
        finished_at REAL,
        heartbeat_at REAL,
        pid INTEGER
    );
    CREATE INDEX runs_by_time ON runs(created_at);
    CREATE TABLE steps (
        run_id TEXT NOT NULL REFERENCES runs(id),
        step_id TEXT NOT NULL,
        iteration INTEGER NOT NULL DEFAULT 0,
        position INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        conclusion TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        started_at REAL,
        finished_at REAL,
        outputs TEXT NOT NULL DEFAULT '{}',
        error TEXT,
        PRIMARY KEY (run_id, step_id, iteration)
    );
    CREATE TABLE attempts (
        id INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL REFERENCES runs(id),
        step_id TEXT NOT NULL,
        iteration INTEGER NOT NULL DEFAULT 0,
        number INTEGER NOT NULL,
        status TEXT NOT NULL,
        exit_code INTEGER,
        started_at REAL NOT NULL,
        finished_at REAL,
        log_path TEXT,
        outputs TEXT,
        error TEXT
    );
    CREATE INDEX attempts_by_run ON attempts(run_id, id);
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL REFERENCES runs(id),
        at REAL NOT NULL,
        kind TEXT NOT NULL,
        step_id TEXT,
        data TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX events_by_run ON events(run_id, id);
    """,
    """
    CREATE TABLE changes (
        id INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL REFERENCES runs(id),
        step_id TEXT NOT NULL,
        iteration INTEGER NOT NULL DEFAULT 0,
        attempt INTEGER NOT NULL DEFAULT 0,
        type TEXT NOT NULL,
        target TEXT NOT NULL,
        data TEXT NOT NULL,
        recorded_at REAL NOT NULL,
        undone_at REAL
    );
    CREATE INDEX changes_by_run ON changes(run_id, id);
    CREATE TABLE manifest (
        run_id TEXT NOT NULL REFERENCES runs(id),
        path TEXT NOT NULL,
        kind TEXT NOT NULL,
        mode INTEGER NOT NULL,
        uid INTEGER NOT NULL,
        gid INTEGER NOT NULL,
        size INTEGER NOT NULL,
        digest TEXT,
        target TEXT,
        ctime_ns INTEGER NOT NULL,
        st_size INTEGER NOT NULL,
        ino INTEGER NOT NULL,
        st_mode INTEGER NOT NULL,
        links INTEGER NOT NULL DEFAULT 1,
        PRIMARY KEY (run_id, path)
    ) WITHOUT ROWID;
    ALTER TABLE steps ADD COLUMN start_mark INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE steps ADD COLUMN end_mark INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE runs ADD COLUMN lease_owner TEXT;
    ALTER TABLE runs ADD COLUMN lease_until REAL;
    ALTER TABLE runs ADD COLUMN host TEXT
    """,
    """
    CREATE TABLE approvals (
        run_id TEXT NOT NULL REFERENCES runs(id),
        step_id TEXT NOT NULL,
        iteration INTEGER NOT NULL DEFAULT 0,
        requested_at REAL NOT NULL,
        after_comment INTEGER NOT NULL DEFAULT 0,
        decision TEXT CHECK (decision IN ('approved', 'rejected')),
        comment TEXT,
        decided_by TEXT,
        decided_at REAL,
        PRIMARY KEY (run_id, step_id, iteration)
    )
    """,
    """
    CREATE TABLE concurrency_groups (
        name TEXT PRIMARY KEY,
        run_id TEXT NOT NULL REFERENCES runs(id)
    )
    """,
    """
    ALTER TABLE runs ADD COLUMN parent_id TEXT REFERENCES runs(id);
    ALTER TABLE runs ADD COLUMN child_key TEXT;
    CREATE INDEX runs_by_parent ON runs(parent_id, child_key)
    """,
    """
    ALTER TABLE attempts ADD COLUMN runtime TEXT
    """,
)


_MANIFEST_UPSERT = (
    "INSERT OR REPLACE INTO manifest (run_id, path, kind, mode, uid, gid, size, digest, target,"
    " ctime_ns, st_size, ino, st_mode, links) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
T = TypeVar("T")


class GroupBusy(Exception):
    """A concurrency group is held by a live run (`holder`)."""

    def __init__(self, group: str, holder: str) -> None:
        super().__init__(f"concurrency group {group!r} is busy with run {holder}")
        self.group = group
        self.holder = holder


@dataclass(frozen=True)
class RunRecord:
    """A row of `runs`, decoded. Times are epoch seconds."""

    id: str
    pipeline_name: str
    pipeline_path: str
    status: str
    current_step: str | None
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    error: str | None
    workspace: str
    trigger: str
    created_at: float
    started_at: float | None
    finished_at: float | None
    parent_id: str | None = None
    child_key: str | None = None


@dataclass(frozen=True)
class StepRecord:
    """A step's result in a run (one per repeat iteration)."""

    step_id: str
    iteration: int
    position: int
    outcome: str
    conclusion: str
    attempts: int
    started_at: float | None
    finished_at: float | None
    outputs: dict[str, str]
    error: str | None
    start_mark: int = 0
    end_mark: int = 0


@dataclass(frozen=True)
class ChangeRecord:
    """One recorded change (see runner/changes.py for the types and `data`)."""

    id: int
    step_id: str
    iteration: int
    attempt: int
    type: str
    target: str
    data: dict[str, Any]
    recorded_at: float
    undone_at: float | None


@dataclass(frozen=True)
class ApprovalRecord:
    """A wait point's approval: pending while `decision` is None."""

    run_id: str
    step_id: str
    iteration: int
    requested_at: float
    after_comment: int
    decision: str | None
    comment: str | None
    decided_by: str | None
    decided_at: float | None


@dataclass(frozen=True)
class AttemptRecord:
    """One attempt of a step."""

    id: int
    step_id: str
    iteration: int
    number: int
    status: str
    exit_code: int | None
    started_at: float
    finished_at: float | None
    log_path: str | None
    outputs: dict[str, str]
    error: str | None
    runtime: str | None = None  # the container runtime its sandbox ran on (None: no sandbox, or before it was recorded)


def default_state_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """`explicit`, else $PIPE_HOME, else `.pipe` in the working directory; always absolute
    (sandboxes bind-mount paths below it)."""
    if explicit:
        return Path(explicit).absolute()
    if os.environ.get("PIPE_HOME"):
        return Path(os.environ["PIPE_HOME"]).absolute()
    return Path.cwd() / ".pipe"


def new_run_id(now: float | None = None) -> str:
    """`YYYYMMDD-HHMMSS-xxxxxx`: sortable by time, unique by its random suffix (create_run retries
    the rare collision)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now or time.time()))
    return f"{stamp}-{secrets.token_hex(3)}"


class Store:
    """The state database at `<state_dir>/state.db` (created, and migrated, on open)."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        state_dir.mkdir(parents=True, exist_ok=True)
        self.path = state_dir / "state.db"
        self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        self._writing = threading.RLock()
        self._db.row_factory = sqlite3.Row
        self._wal_mode()
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    def _wal_mode(self) -> None:
        """Switch to WAL. Two processes creating the store at once may find the database locked
        here (the switch takes an exclusive lock without waiting), so it is retried for a while."""
        for attempt in range(100):
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or attempt == 99:
                    raise
                time.sleep(0.05)

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE ... COMMIT, rolled back on error). The
        connection is shared by the run's threads (reporters record what they create from their
        own), so one transaction at a time holds it."""
        with self._writing:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _migrate(self) -> None:
        with self.transaction() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in script.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {number}")

    # ---- writes ----------------------------------------------------------------------------

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
        is_alive: Any = None,
        parent: tuple[str, str] | None = None,
    ) -> str:
        """A new run in status `pending` (its workspace is set once made); returns its id.

        With `group` (a concurrency group), the run takes the group in the same transaction, and
        `lease` (owner, host, seconds) is set at once; raises GroupBusy naming the run that holds the
        group while that run's lease is alive (`is_alive(pid)` for runs on this host).
        """
        for _ in range(10):
            try:
                run_id = self._insert_run(pipeline_id, inputs, trigger, group, lease, is_alive)
                if parent is not None:
                    with self.transaction() as db:
                        db.execute("UPDATE runs SET parent_id = ?, child_key = ? WHERE id = ?", (*parent, run_id))
                return run_id
            except sqlite3.IntegrityError as error:
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
        is_alive: Any,
    ) -> str:
        now = time.time()
        run_id = new_run_id(now)
        with self.transaction() as db:
            if group is not None:
                holder = db.execute(
                    "SELECT runs.id, runs.lease_until, runs.host, runs.pid, runs.status FROM concurrency_groups"
                    " JOIN runs ON runs.id = concurrency_groups.run_id WHERE concurrency_groups.name = ?",
                    (group,),
                ).fetchone()
                if holder is not None and holder["status"] in ("pending", "running") and holder["lease_until"]:
                    local = lease is not None and holder["host"] == lease[1]
                    dead = local and holder["pid"] and is_alive is not None and not is_alive(holder["pid"])
                    if holder["lease_until"] > now and not dead:
                        raise GroupBusy(group, holder["id"])
            owner, host, seconds = lease if lease is not None else (None, None, 0.0)
            db.execute(
                "INSERT INTO runs (id, pipeline_id, status, inputs, workspace, trigger, created_at, pid,"
                " lease_owner, lease_until, host) VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    pipeline_id,
                    json.dumps(dict(inputs)),
                    "",
                    trigger,
                    now,
                    os.getpid(),
                    owner,
                    now + seconds if owner else None,
                    host,
                ),
            )
            if group is not None:
                db.execute("INSERT OR REPLACE INTO concurrency_groups (name, run_id) VALUES (?, ?)", (group, run_id))
        return run_id

    def update_run(self, run_id: str, **fields: Any) -> None:
        """Set columns of a run (`outputs` is JSON-encoded); also refreshes its heartbeat."""
        allowed = {"status", "current_step", "outputs", "error", "started_at", "finished_at", "pid", "workspace"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"unknown run fields {sorted(unknown)}")
        if "outputs" in fields:
            fields["outputs"] = json.dumps(fields["outputs"])
        fields["heartbeat_at"] = time.time()
        assignments = ", ".join(f"{name} = ?" for name in fields)
        with self.transaction() as db:
            db.execute(f"UPDATE runs SET {assignments} WHERE id = ?", (*fields.values(), run_id))

    def start_attempt(
        self, run_id: str, step_id: str, iteration: int, number: int, log_path: Path, started_at: float
    ) -> int:
        """Record that an attempt started (status `running`); returns its id."""
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT INTO attempts (run_id, step_id, iteration, number, status, started_at, log_path)"
                " VALUES (?, ?, ?, ?, 'running', ?, ?)",
                (run_id, step_id, iteration, number, started_at, str(log_path)),
            )
            db.execute(
                "UPDATE runs SET current_step = ?, heartbeat_at = ? WHERE id = ?", (step_id, time.time(), run_id)
            )
            return int(cursor.lastrowid or 0)

    def finish_attempt(
        self,
        attempt_id: int,
        status: str,
        exit_code: int | None,
        finished_at: float,
        outputs: Mapping[str, str],
        error: str | None,
        runtime: str | None = None,
    ) -> None:
        """Record how an attempt ended; `runtime` is the container runtime its sandbox used."""
        with self.transaction() as db:
            db.execute(
                "UPDATE attempts SET status = ?, exit_code = ?, finished_at = ?, outputs = ?, error = ?,"
                " runtime = COALESCE(?, runtime) WHERE id = ?",
                (status, exit_code, finished_at, json.dumps(dict(outputs)), error, runtime, attempt_id),
            )

    def record_step(self, run_id: str, record: StepRecord) -> None:
        """Store (or replace) a step's result."""
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO steps (run_id, step_id, iteration, position, outcome, conclusion, attempts,"
                " started_at, finished_at, outputs, error, start_mark, end_mark)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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

    def add_event(
        self, run_id: str, kind: str, step_id: str | None = None, data: Mapping[str, Any] | None = None
    ) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO events (run_id, at, kind, step_id, data) VALUES (?, ?, ?, ?, ?)",
                (run_id, time.time(), kind, step_id, json.dumps(dict(data or {}))),
            )

    # ---- reads -----------------------------------------------------------------------------

    _RUN_QUERY = (
        "SELECT runs.*, pipelines.name AS pipeline_name, pipelines.path AS pipeline_path"
        " FROM runs JOIN pipelines ON pipelines.id = runs.pipeline_id"
    )

    def runs(self, limit: int = 50, status: str | None = None) -> list[RunRecord]:
        """The newest runs first."""
        where, params = ("WHERE runs.status = ?", (status,)) if status else ("", ())
        rows = self._db.execute(f"{self._RUN_QUERY} {where} ORDER BY runs.created_at DESC LIMIT ?", (*params, limit))
        return [_run(row) for row in rows]

    def run(self, run_id: str) -> RunRecord:
        """The run whose id is, or uniquely starts with, `run_id`; `latest` is the newest run.

        Raises UsageError when no run (or more than one) matches.
        """
        if run_id == "latest":
            rows = list(self._db.execute(f"{self._RUN_QUERY} ORDER BY runs.created_at DESC LIMIT 1"))
        else:
            rows = list(self._db.execute(f"{self._RUN_QUERY} WHERE runs.id LIKE ? LIMIT 2", (run_id + "%",)))
        if not rows:
            raise UsageError(f"no run {run_id!r} in {self.path}")
        if len(rows) > 1:
            raise UsageError(f"run id {run_id!r} is ambiguous; give more characters")
        return _run(rows[0])

    def children(self, parent_id: str) -> list[RunRecord]:
        """The child runs of a run, oldest first."""
        rows = self._db.execute(f"{self._RUN_QUERY} WHERE runs.parent_id = ? ORDER BY runs.created_at", (parent_id,))
        return [_run(row) for row in rows]

    def pipeline_definition(self, run_id: str) -> str:
        """The pipeline text the run was started with."""
        row = self._db.execute(
            "SELECT definition FROM pipelines JOIN runs ON runs.pipeline_id = pipelines.id WHERE runs.id = ?", (run_id,)
        ).fetchone()
        return str(row[0])

    def steps(self, run_id: str) -> list[StepRecord]:
        rows = self._db.execute("SELECT * FROM steps WHERE run_id = ? ORDER BY position, iteration", (run_id,))
        return [_record(StepRecord, row) for row in rows]

    def attempts(self, run_id: str) -> list[AttemptRecord]:
        rows = self._db.execute("SELECT * FROM attempts WHERE run_id = ? ORDER BY id", (run_id,))
        return [_record(AttemptRecord, row) for row in rows]

    def events(self, run_id: str, after: int = 0) -> list[tuple[int, float, str, str | None, dict[str, Any]]]:
        rows = self._db.execute(
            "SELECT id, at, kind, step_id, data FROM events WHERE run_id = ? AND id > ? ORDER BY id", (run_id, after)
        )
        return [(row[0], row[1], row[2], row[3], json.loads(row[4])) for row in rows]

    def interrupt_attempts(self, run_id: str, reason: str) -> int:
        """Mark the run's attempts still `running` (their process died) as `interrupted`."""
        with self.transaction() as db:
            cursor = db.execute(
                "UPDATE attempts SET status = 'interrupted', finished_at = ?, error = ?"
                " WHERE run_id = ? AND status = 'running'",
                (time.time(), reason, run_id),
            )
            return cursor.rowcount

    def delete_steps(self, run_id: str, positions_from: int) -> None:
        """Forget the results of steps at `positions_from` and later (they will run again)."""
        with self.transaction() as db:
            db.execute("DELETE FROM steps WHERE run_id = ? AND position >= ?", (run_id, positions_from))

    # ---- changes and the workspace manifest ---------------------------------------------------

    def last_change_id(self, run_id: str) -> int:
        row = self._db.execute("SELECT MAX(id) FROM changes WHERE run_id = ?", (run_id,)).fetchone()
        return int(row[0] or 0)

    def save_changes(
        self,
        run_id: str,
        changes: list[tuple[str, int, int, str, str, dict[str, Any]]],
        upserts: list[tuple[Any, ...]],
        deletes: list[str],
    ) -> None:
        """In one transaction: add `changes` (step, iteration, attempt, type, target, data) and
        bring the manifest up to date (`upserts`: manifest rows without run_id; `deletes`: paths)."""
        now = time.time()
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO changes (run_id, step_id, iteration, attempt, type, target, data, recorded_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(run_id, s, i, a, t, target, json.dumps(d), now) for s, i, a, t, target, d in changes],
            )
            db.executemany(
                _MANIFEST_UPSERT,
                [(run_id, *row) for row in upserts],
            )
            db.executemany("DELETE FROM manifest WHERE run_id = ? AND path = ?", [(run_id, p) for p in deletes])

    def manifest_rows(self, run_id: str) -> list[sqlite3.Row]:
        return list(self._db.execute("SELECT * FROM manifest WHERE run_id = ?", (run_id,)))

    def has_manifest(self, run_id: str) -> bool:
        return self._db.execute("SELECT 1 FROM manifest WHERE run_id = ? LIMIT 1", (run_id,)).fetchone() is not None

    def changes(self, run_id: str, *, after_id: int = 0, pending_only: bool = False) -> list[ChangeRecord]:
        """A run's changes in recorded order (`pending_only`: not undone yet)."""
        undone = " AND undone_at IS NULL" if pending_only else ""
        rows = self._db.execute(
            f"SELECT * FROM changes WHERE run_id = ? AND id > ?{undone} ORDER BY id", (run_id, after_id)
        )
        return [_record(ChangeRecord, row) for row in rows]

    def mark_undone(
        self, change_id: int, manifest_upsert: tuple[Any, ...] | None, manifest_delete: str | None, run_id: str
    ) -> None:
        """Mark a change undone and set its path's manifest entry, in one transaction."""
        with self.transaction() as db:
            db.execute("UPDATE changes SET undone_at = ? WHERE id = ?", (time.time(), change_id))
            if manifest_upsert is not None:
                db.execute(
                    _MANIFEST_UPSERT,
                    (run_id, *manifest_upsert),
                )
            if manifest_delete is not None:
                db.execute("DELETE FROM manifest WHERE run_id = ? AND path = ?", (run_id, manifest_delete))

    # ---- approvals (wait points) -------------------------------------------------------------

    def approval(self, run_id: str, step_id: str, iteration: int) -> ApprovalRecord | None:
        row = self._db.execute(
            "SELECT * FROM approvals WHERE run_id = ? AND step_id = ? AND iteration = ?", (run_id, step_id, iteration)
        ).fetchone()
        return _record(ApprovalRecord, row) if row else None

    def request_approval(self, run_id: str, step_id: str, iteration: int, after_comment: int) -> ApprovalRecord:
        """The pending approval of a wait point, created on the first request."""
        with self.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO approvals (run_id, step_id, iteration, requested_at, after_comment)"
                " VALUES (?, ?, ?, ?, ?)",
                (run_id, step_id, iteration, time.time(), after_comment),
            )
        found = self.approval(run_id, step_id, iteration)
        assert found is not None
        return found

    def decide(self, run_id: str, decision: str, comment: str | None, by: str) -> ApprovalRecord:
        """Record the decision on the run's open approval. Raises UsageError when none is open."""
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
                (decision, comment, by, time.time(), run_id, row["step_id"], row["iteration"]),
            )
        found = self.approval(run_id, row["step_id"], row["iteration"])
        assert found is not None
        return found

    # ---- leases: which process owns a run --------------------------------------------------

    def acquire_lease(self, run_id: str, owner: str, host: str, seconds: float, is_alive: Any) -> str | None:
        """Take the run's lease for `owner` for `seconds`. Returns None on success, else who holds
        it. A lease that expired, or whose process on this host is dead (`is_alive(pid)`), is free."""
        now = time.time()
        with self.transaction() as db:
            row = db.execute("SELECT lease_owner, lease_until, host, pid FROM runs WHERE id = ?", (run_id,)).fetchone()
            holder, until = row["lease_owner"], row["lease_until"]
            if holder and holder != owner and until and until > now:
                pid = row["pid"]
                if row["host"] != host or (pid and is_alive(pid)):
                    return f"{holder} (until {time.strftime('%H:%M:%S', time.localtime(until))})"
            db.execute(
                "UPDATE runs SET lease_owner = ?, lease_until = ?, host = ?, pid = ?, heartbeat_at = ? WHERE id = ?",
                (owner, now + seconds, host, os.getpid(), now, run_id),
            )
        return None

    def renew_lease(self, run_id: str, owner: str, seconds: float) -> None:
        now = time.time()
        with self.transaction() as db:
            db.execute(
                "UPDATE runs SET lease_until = ?, heartbeat_at = ? WHERE id = ? AND lease_owner = ?",
                (now + seconds, now, run_id, owner),
            )

    def release_lease(self, run_id: str, owner: str) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE runs SET lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_owner = ?",
                (run_id, owner),
            )

    def lease(self, run_id: str) -> tuple[str | None, float | None, str | None, int | None]:
        """(owner, until, host, pid) of a run's lease."""
        row = self._db.execute(
            "SELECT lease_owner, lease_until, host, pid FROM runs WHERE id = ?", (run_id,)
        ).fetchone()
        return row[0], row[1], row[2], row[3]


_JSON_FIELDS = frozenset({"inputs", "outputs", "data"})


def _record(kind: type[T], row: sqlite3.Row) -> T:
    """Build record `kind` from a row whose columns are named like its fields (JSON columns decoded)."""
    values = {}
    for item in fields(kind):  # type: ignore[arg-type]
        value = row[item.name]
        if item.name in _JSON_FIELDS:
            value = json.loads(value or "{}")
        values[item.name] = value
    return kind(**values)


def _run(row: sqlite3.Row) -> RunRecord:
    return _record(RunRecord, row)
