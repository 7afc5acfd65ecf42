"""Threads, their specs and state transitions in the store (the rules of which transition is
allowed live in runner/threads/; the store applies one atomically)."""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from collections.abc import Callable

from runner.errors import UsageError
from runner.names import EventKind, SpecKind, ThreadState
from runner.store.connection import Connection
from runner.store.records import SpecRecord, ThreadRecord, TransitionRecord, decode


class TransitionRefused(UsageError):
    """A thread cannot go from its state to the one asked (exit 2)."""

    def __init__(self, thread_id: str, from_state: ThreadState, to_state: ThreadState) -> None:
        super().__init__(f"thread {thread_id} cannot go from {from_state} to {to_state}")
        self.thread_id = thread_id
        self.from_state = from_state
        self.to_state = to_state


def new_thread_id() -> str:
    """`t-<12 hex>`, random."""
    return f"t-{secrets.token_hex(6)}"


class ThreadTables(Connection):
    """Tables `threads`, `specs` and `thread_transitions`."""

    def thread(self, thread_id: str) -> ThreadRecord:
        """The thread whose id is, or uniquely starts with, `thread_id`. Raises UsageError when no
        thread (or more than one) matches."""
        rows = self._all("SELECT * FROM threads WHERE id LIKE ? LIMIT 2", (thread_id + "%",))
        if not rows:
            raise UsageError(f"no thread {thread_id!r} in {self.path}")
        if len(rows) > 1:
            raise UsageError(f"thread id {thread_id!r} is ambiguous; give more characters")
        return decode(ThreadRecord, rows[0])

    def thread_by_issue(self, repo: str, issue: int) -> ThreadRecord | None:
        """The thread of issue `issue` of `repo` (OWNER/NAME), or None."""
        row = self._one("SELECT * FROM threads WHERE repo = ? AND issue = ?", (repo, issue))
        return decode(ThreadRecord, row) if row else None

    def thread_by_pull_request(self, repo: str, pull_request: int) -> ThreadRecord | None:
        """The thread whose runs opened pull request `pull_request` of `repo`, or None."""
        row = self._one(
            "SELECT * FROM threads WHERE repo = ? AND pull_request = ? ORDER BY created_at LIMIT 1",
            (repo, pull_request),
        )
        return decode(ThreadRecord, row) if row else None

    def threads(self, state: ThreadState | str | None = None, limit: int = 200) -> list[ThreadRecord]:
        """The threads, most recently changed first, at most `limit`; only those in `state` when
        given (ValueError for a state ThreadState does not have)."""
        if state is None:
            rows = self._all("SELECT * FROM threads ORDER BY updated_at DESC, id LIMIT ?", (limit,))
        else:
            rows = self._all(
                "SELECT * FROM threads WHERE state = ? ORDER BY updated_at DESC, id LIMIT ?",
                (ThreadState(state).value, limit),
            )
        return [decode(ThreadRecord, row) for row in rows]

    def ensure_thread(self, repo: str, issue: int) -> ThreadRecord:
        """The thread of (`repo`, `issue`), created in state `planning` (with its first transition,
        from None) when there is none. Safe against a concurrent creator: one thread per issue."""
        now = time.time()
        thread_id = new_thread_id()
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT INTO threads (id, repo, issue, state, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (repo, issue) DO NOTHING",
                (thread_id, repo, issue, ThreadState.PLANNING.value, now, now),
            )
            if cursor.rowcount:
                self._add_transition(db, thread_id, None, ThreadState.PLANNING, "created", None, now)
        found = self.thread_by_issue(repo, issue)
        assert found is not None
        return found

    def move_thread(
        self,
        thread_id: str,
        to_state: ThreadState,
        reason: str,
        allowed: Callable[[ThreadState, ThreadState], bool],
        *,
        run_id: str | None = None,
        branch: str | None = None,
        pull_request: int | None = None,
    ) -> ThreadRecord:
        """Move thread `thread_id` (its full id) to `to_state` in one transaction: its state (and
        `branch` / `pull_request` unless None: they are never cleared), a `thread_transitions` row
        and, with `run_id`, a `thread_transition` event of that run. The same state again changes
        only branch and pull request (no transition). Raises TransitionRefused when `allowed(current, to_state)` is
        false, UsageError for an unknown thread."""
        now = time.time()
        with self.transaction() as db:
            row = db.execute("SELECT state FROM threads WHERE id = ?", (thread_id,)).fetchone()
            if row is None:
                raise UsageError(f"no thread {thread_id!r} in {self.path}")
            current = ThreadState(row["state"])
            if current != to_state and not allowed(current, to_state):
                raise TransitionRefused(thread_id, current, to_state)
            columns: dict[str, object] = {"state": to_state.value, "updated_at": now}
            if branch is not None:
                columns["branch"] = branch
            if pull_request is not None:
                columns["pull_request"] = pull_request
            assignments = ", ".join(f"{name} = ?" for name in columns)
            db.execute(f"UPDATE threads SET {assignments} WHERE id = ?", (*columns.values(), thread_id))
            if current != to_state:
                self._add_transition(db, thread_id, current, to_state, reason, run_id, now)
        return self.thread(thread_id)

    def _add_transition(
        self,
        db: sqlite3.Connection,
        thread_id: str,
        from_state: ThreadState | None,
        to_state: ThreadState,
        reason: str,
        run_id: str | None,
        at: float,
    ) -> None:
        """Write a transition row (and the run's event) inside the caller's transaction."""
        db.execute(
            "INSERT INTO thread_transitions (thread_id, at, from_state, to_state, reason, run_id)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (thread_id, at, from_state.value if from_state else None, to_state.value, reason, run_id),
        )
        if run_id is not None:
            data = {"run": run_id, "thread": thread_id, "from": from_state, "to": to_state, "reason": reason}
            db.execute(
                "INSERT INTO events (run_id, at, kind, step_id, data) VALUES (?, ?, ?, ?, ?)",
                (run_id, at, EventKind.THREAD_TRANSITION.value, None, json.dumps(data)),
            )

    def thread_transitions(self, thread_id: str) -> list[TransitionRecord]:
        """A thread's transitions, oldest first."""
        rows = self._all("SELECT * FROM thread_transitions WHERE thread_id = ? ORDER BY id", (thread_id,))
        return [decode(TransitionRecord, row) for row in rows]

    def add_spec(
        self,
        thread_id: str,
        kind: SpecKind,
        target_branch: str | None,
        run_id: str | None,
        instructions: str | None = None,
    ) -> SpecRecord:
        """The thread's next spec (version N+1, from 1), applied by run `run_id`. A run that already
        has a spec of this thread (a resumed run) gets that one back, unchanged."""
        with self.transaction() as db:
            if run_id is not None:
                row = db.execute(
                    "SELECT version FROM specs WHERE thread_id = ? AND run_id = ?", (thread_id, run_id)
                ).fetchone()
                if row is not None:
                    version = int(row["version"])
                    return self._spec(db, thread_id, version)
            row = db.execute("SELECT COALESCE(MAX(version), 0) FROM specs WHERE thread_id = ?", (thread_id,)).fetchone()
            version = int(row[0]) + 1
            db.execute(
                "INSERT INTO specs (thread_id, version, kind, target_branch, instructions, run_id, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (thread_id, version, SpecKind(kind).value, target_branch, instructions, run_id, time.time()),
            )
            return self._spec(db, thread_id, version)

    @staticmethod
    def _spec(db: sqlite3.Connection, thread_id: str, version: int) -> SpecRecord:
        row = db.execute("SELECT * FROM specs WHERE thread_id = ? AND version = ?", (thread_id, version)).fetchone()
        return decode(SpecRecord, row)

    def set_spec_instructions(self, thread_id: str, version: int, instructions: str) -> None:
        """Keep the instructions the agent was given for spec `version` (rendered at the run's end)."""
        with self.transaction() as db:
            db.execute(
                "UPDATE specs SET instructions = ? WHERE thread_id = ? AND version = ?",
                (instructions, thread_id, version),
            )

    def specs(self, thread_id: str) -> list[SpecRecord]:
        """A thread's specs, by version."""
        rows = self._all("SELECT * FROM specs WHERE thread_id = ? ORDER BY version", (thread_id,))
        return [decode(SpecRecord, row) for row in rows]

    def spec_of_run(self, run_id: str) -> SpecRecord | None:
        """The spec run `run_id` applied, or None (not a run of a thread)."""
        row = self._one("SELECT * FROM specs WHERE run_id = ? ORDER BY created_at LIMIT 1", (run_id,))
        return decode(SpecRecord, row) if row else None
