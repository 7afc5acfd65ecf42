"""The state store: the database of a state directory holding pipelines, runs, step results,
attempts, events, recorded changes, approvals, leases, threads (with their specs and transitions)
and webhook deliveries.

`Store` is the one front: its methods come from one class per concern (runs, attempts, changes,
approvals, leases, threads, deliveries), all over one connection (runner/store/connection.py), as
SQLAlchemy Core expressions over the tables of tables.py. The database is $PIPE_STORE_URL
(`pipe --store-url`): SQLite in the state directory by default (WAL), or PostgreSQL shared by many
machines (engines.py). One transaction per write, so the store survives `kill -9` at any point;
claims (leases, concurrency groups, approvals, thread moves) lock the rows they decide from. The
schema is brought up to date on open by Alembic (migrate.py, migrations/; older SQLite state
directories pass once through the legacy migrations of schema.py). Reads return the records of
records.py, statuses decoded into the enums of runner/names.py. Timestamps are epoch seconds
(float). Callers mask secrets before they write.
Layering and the life of a run are described in docs/architecture.md.
"""

from __future__ import annotations

from runner.store.approvals import ApprovalTables
from runner.store.attempts import AttemptTables
from runner.store.changes import ChangeTables, ManifestRow
from runner.store.deliveries import DeliveryTables
from runner.store.leases import LeaseTables
from runner.store.listing import RunFilter, RunPage, list_runs
from runner.store.records import (
    ApprovalRecord,
    AttemptRecord,
    ChangeRecord,
    DeliveryRecord,
    EventRecord,
    LeaseRecord,
    ResumeState,
    RunRecord,
    RunState,
    SpecRecord,
    StepRecord,
    ThreadRecord,
    TransitionRecord,
)
from runner.store.runs import GroupBusy, RunTables, new_run_id
from runner.store.threads import ThreadTables, TransitionRefused, new_thread_id

__all__ = [
    "ApprovalRecord",
    "AttemptRecord",
    "ChangeRecord",
    "DeliveryRecord",
    "EventRecord",
    "GroupBusy",
    "LeaseRecord",
    "ManifestRow",
    "ResumeState",
    "RunFilter",
    "RunPage",
    "RunRecord",
    "RunState",
    "SpecRecord",
    "StepRecord",
    "Store",
    "ThreadRecord",
    "TransitionRecord",
    "TransitionRefused",
    "list_runs",
    "new_run_id",
    "new_thread_id",
]


class Store(RunTables, AttemptTables, ChangeTables, ApprovalTables, LeaseTables, ThreadTables, DeliveryTables):
    """The state database of a state directory, `Store(state_dir)` with a Path or a StateDir
    (created, and migrated, on open; `close()` when done). Shared by a run's threads."""
