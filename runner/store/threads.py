"""Threads, their specs and state transitions in the store (the rules of which transition is
allowed live in runner/threads/; the store applies one atomically)."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable

from sqlalchemy import func, insert, select, update

from runner.errors import UsageError
from runner.names import EventKind, SpecKind, ThreadState
from runner.store.connection import Connection, Database
from runner.store.records import SpecRecord, ThreadRecord, TransitionRecord, decode
from runner.store.tables import events, specs, thread_transitions, threads


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
        rows = self._all(select(threads).where(threads.c.id.startswith(thread_id, autoescape=True)).limit(2))
        if not rows:
            raise UsageError(f"no thread {thread_id!r} in {self.where}")
        if len(rows) > 1:
            raise UsageError(f"thread id {thread_id!r} is ambiguous; give more characters")
        return decode(ThreadRecord, rows[0])

    def thread_by_issue(self, repo: str, issue: int) -> ThreadRecord | None:
        """The thread of issue `issue` of `repo` (OWNER/NAME), or None."""
        row = self._one(select(threads).where(threads.c.repo == repo, threads.c.issue == issue))
        return decode(ThreadRecord, row) if row else None

    def thread_by_pull_request(self, repo: str, pull_request: int) -> ThreadRecord | None:
        """The thread whose runs opened pull request `pull_request` of `repo`, or None."""
        row = self._one(
            select(threads)
            .where(threads.c.repo == repo, threads.c.pull_request == pull_request)
            .order_by(threads.c.created_at)
            .limit(1)
        )
        return decode(ThreadRecord, row) if row else None

    def threads(self, state: ThreadState | str | None = None, limit: int = 200) -> list[ThreadRecord]:
        """The threads, most recently changed first, at most `limit`; only those in `state` when
        given (ValueError for a state ThreadState does not have)."""
        query = select(threads)
        if state is not None:
            query = query.where(threads.c.state == ThreadState(state).value)
        rows = self._all(query.order_by(threads.c.updated_at.desc(), threads.c.id).limit(limit))
        return [decode(ThreadRecord, row) for row in rows]

    def ensure_thread(self, repo: str, issue: int) -> ThreadRecord:
        """The thread of (`repo`, `issue`), created in state `planning` (with its first transition,
        from None) when there is none. Safe against a concurrent creator: one thread per issue."""
        now = time.time()
        thread_id = new_thread_id()
        with self.transaction() as db:
            result = db.execute(
                self._upsert(threads)
                .values(
                    id=thread_id,
                    repo=repo,
                    issue=issue,
                    state=ThreadState.PLANNING.value,
                    created_at=now,
                    updated_at=now,
                )
                .on_conflict_do_nothing(index_elements=["repo", "issue"])
                .returning(threads.c.id)  # a row back only when inserted (rowcount is not portable here)
            )
            if result.first() is not None:
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
        only branch and pull request (no transition). The thread's row is locked while deciding
        (`FOR UPDATE`), so concurrent moves apply one after the other. Raises TransitionRefused when
        `allowed(current, to_state)` is false, UsageError for an unknown thread."""
        now = time.time()
        with self.transaction() as db:
            row = db.execute(select(threads.c.state).where(threads.c.id == thread_id).with_for_update()).first()
            if row is None:
                raise UsageError(f"no thread {thread_id!r} in {self.where}")
            current = ThreadState(row.state)
            if current != to_state and not allowed(current, to_state):
                raise TransitionRefused(thread_id, current, to_state)
            columns: dict[str, object] = {"state": to_state.value, "updated_at": now}
            if branch is not None:
                columns["branch"] = branch
            if pull_request is not None:
                columns["pull_request"] = pull_request
            db.execute(update(threads).where(threads.c.id == thread_id).values(**columns))
            if current != to_state:
                self._add_transition(db, thread_id, current, to_state, reason, run_id, now)
        return self.thread(thread_id)

    def _add_transition(
        self,
        db: Database,
        thread_id: str,
        from_state: ThreadState | None,
        to_state: ThreadState,
        reason: str,
        run_id: str | None,
        at: float,
    ) -> None:
        """Write a transition row (and the run's event) inside the caller's transaction."""
        db.execute(
            insert(thread_transitions).values(
                thread_id=thread_id,
                at=at,
                from_state=from_state.value if from_state else None,
                to_state=to_state.value,
                reason=reason,
                run_id=run_id,
            )
        )
        if run_id is not None:
            data = {"run": run_id, "thread": thread_id, "from": from_state, "to": to_state, "reason": reason}
            db.execute(
                insert(events).values(
                    run_id=run_id, at=at, kind=EventKind.THREAD_TRANSITION.value, step_id=None, data=json.dumps(data)
                )
            )

    def thread_transitions(self, thread_id: str) -> list[TransitionRecord]:
        """A thread's transitions, oldest first."""
        rows = self._all(
            select(thread_transitions)
            .where(thread_transitions.c.thread_id == thread_id)
            .order_by(thread_transitions.c.id)
        )
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
        has a spec of this thread (a resumed run) gets that one back, unchanged. The thread's row is
        locked first (`FOR UPDATE`), so two runs of one thread never take the same version."""
        with self.transaction() as db:
            db.execute(select(threads.c.id).where(threads.c.id == thread_id).with_for_update())
            if run_id is not None:
                found = db.execute(
                    select(specs.c.version).where(specs.c.thread_id == thread_id, specs.c.run_id == run_id)
                ).scalar()
                if found is not None:
                    return self._spec(db, thread_id, int(found))
            last = db.execute(
                select(func.coalesce(func.max(specs.c.version), 0)).where(specs.c.thread_id == thread_id)
            ).scalar_one()
            version = int(last) + 1
            db.execute(
                insert(specs).values(
                    thread_id=thread_id,
                    version=version,
                    kind=SpecKind(kind).value,
                    target_branch=target_branch,
                    instructions=instructions,
                    run_id=run_id,
                    created_at=time.time(),
                )
            )
            return self._spec(db, thread_id, version)

    @staticmethod
    def _spec(db: Database, thread_id: str, version: int) -> SpecRecord:
        row = db.execute(select(specs).where(specs.c.thread_id == thread_id, specs.c.version == version)).mappings()
        return decode(SpecRecord, row.one())

    def set_spec_instructions(self, thread_id: str, version: int, instructions: str) -> None:
        """Keep the instructions the agent was given for spec `version` (rendered at the run's end)."""
        with self.transaction() as db:
            db.execute(
                update(specs)
                .where(specs.c.thread_id == thread_id, specs.c.version == version)
                .values(instructions=instructions)
            )

    def specs(self, thread_id: str) -> list[SpecRecord]:
        """A thread's specs, by version."""
        rows = self._all(select(specs).where(specs.c.thread_id == thread_id).order_by(specs.c.version))
        return [decode(SpecRecord, row) for row in rows]

    def spec_of_run(self, run_id: str) -> SpecRecord | None:
        """The spec run `run_id` applied, or None (not a run of a thread)."""
        row = self._one(select(specs).where(specs.c.run_id == run_id).order_by(specs.c.created_at).limit(1))
        return decode(SpecRecord, row) if row else None
