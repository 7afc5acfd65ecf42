"""The state database's tables as SQLAlchemy Core metadata: the one place that spells them for the
queries of runner/store/*.py. The Alembic migrations (runner/store/migrations/) build the same schema;
tests/test_store_schema.py checks that a migrated database equals this metadata.

Portable types only, so SQLite and PostgreSQL read them the same way: times are epoch seconds
(`Double`), JSON is kept as text (the table modules encode and decode it), counters that outgrow 32
bits (file sizes, inode and ctime numbers, forge comment ids) are `BigInteger`. The `CHECK` lists of
statuses equal the enums of runner/names.py (tests/test_store_names.py).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    UniqueConstraint,
    text,
)
from sqlalchemy import Text as SqlText
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

# The Alembic revision the metadata below equals (runner/store/migrations/versions/): a store whose
# database is at this revision needs no migration, so opening one never loads Alembic.
HEAD_REVISION = "0012"

metadata = MetaData()


class Text(TypeDecorator[str]):
    """TEXT, except that PostgreSQL refuses the NUL character in text while SQLite keeps it: there a
    NUL in what a step or a person wrote (an error, a log path, a thread's reason) is stored as
    U+FFFD, the replacement character, instead of failing the write. JSON columns are unaffected
    (json.dumps writes NUL as the escape \\u0000)."""

    impl = SqlText
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is not None and dialect.name == "postgresql" and "\x00" in value:
            return value.replace("\x00", "\ufffd")
        return value

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        return value


def _in(column: str, values: tuple[str, ...]) -> CheckConstraint:
    return CheckConstraint(f"{column} IN ({', '.join(repr(value) for value in values)})")


RUN_STATUSES = ("pending", "running", "waiting", "succeeded", "failed", "cancelled")
ATTEMPT_STATUSES = ("running", "waiting", "succeeded", "failed", "timeout", "oom", "cancelled", "error", "interrupted")
DECISIONS = ("approved", "rejected")
THREAD_STATES = ("planning", "working", "waiting_for_feedback", "archived")
SPEC_KINDS = ("initial", "update")

pipelines = Table(
    "pipelines",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", Text, nullable=False),
    Column("path", Text, nullable=False),
    Column("digest", Text, nullable=False, unique=True),
    Column("definition", Text, nullable=False),
    Column("created_at", Double, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", Text, primary_key=True),
    Column("pipeline_id", Integer, ForeignKey("pipelines.id"), nullable=False),
    Column("status", Text, _in("status", RUN_STATUSES), nullable=False),
    Column("current_step", Text),
    Column("inputs", Text, nullable=False),
    Column("resume_state", Text),
    Column("error", Text),
    Column("workspace", Text, nullable=False),
    Column("trigger", Text, nullable=False, server_default=text("'cli'")),
    Column("created_at", Double, nullable=False),
    Column("started_at", Double),
    Column("finished_at", Double),
    Column("heartbeat_at", Double),
    Column("pid", Integer),
    Column("lease_owner", Text),
    Column("lease_until", Double),
    Column("host", Text),
    Column("parent_id", Text, ForeignKey("runs.id")),
    Column("child_key", Text),
    Column("worker", Text),  # the Celery worker that executed the run (revision 0010)
    Column("requeued_at", Double),  # when a worker last enqueued it again (revision 0011, runner/workers/orphans.py)
    Column("queue", Text),  # the broker queue it was submitted to (revision 0012); None: never submitted
    Index("runs_by_time", "created_at"),
    Index("runs_by_parent", "parent_id", "child_key"),
)

steps = Table(
    "steps",
    metadata,
    Column("run_id", Text, ForeignKey("runs.id"), nullable=False),
    Column("step_id", Text, nullable=False),
    Column("iteration", Integer, nullable=False, server_default=text("0")),
    Column("position", Integer, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("conclusion", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("started_at", Double),
    Column("finished_at", Double),
    Column("outputs", Text, nullable=False, server_default=text("'{}'")),
    Column("error", Text),
    Column("start_mark", Integer, nullable=False, server_default=text("0")),
    Column("end_mark", Integer, nullable=False, server_default=text("0")),
    PrimaryKeyConstraint("run_id", "step_id", "iteration"),
)

attempts = Table(
    "attempts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("run_id", Text, ForeignKey("runs.id"), nullable=False),
    Column("step_id", Text, nullable=False),
    Column("iteration", Integer, nullable=False, server_default=text("0")),
    Column("number", Integer, nullable=False),
    Column("status", Text, _in("status", ATTEMPT_STATUSES), nullable=False),
    Column("exit_code", Integer),
    Column("started_at", Double, nullable=False),
    Column("finished_at", Double),
    Column("log_path", Text),
    Column("outputs", Text),
    Column("error", Text),
    Column("runtime", Text),
    Index("attempts_by_run", "run_id", "id"),
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("run_id", Text, ForeignKey("runs.id"), nullable=False),
    Column("at", Double, nullable=False),
    Column("kind", Text, nullable=False),
    Column("step_id", Text),
    Column("data", Text, nullable=False, server_default=text("'{}'")),
    Index("events_by_run", "run_id", "id"),
)

changes = Table(
    "changes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("run_id", Text, ForeignKey("runs.id"), nullable=False),
    Column("step_id", Text, nullable=False),
    Column("iteration", Integer, nullable=False, server_default=text("0")),
    Column("attempt", Integer, nullable=False, server_default=text("0")),
    Column("type", Text, nullable=False),
    Column("target", Text, nullable=False),
    Column("data", Text, nullable=False),
    Column("recorded_at", Double, nullable=False),
    Column("undone_at", Double),
    Index("changes_by_run", "run_id", "id"),
)

manifest = Table(
    "manifest",
    metadata,
    Column("run_id", Text, ForeignKey("runs.id"), nullable=False),
    Column("path", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("mode", Integer, nullable=False),
    Column("uid", BigInteger, nullable=False),
    Column("gid", BigInteger, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("digest", Text),
    Column("target", Text),
    Column("ctime_ns", BigInteger, nullable=False),
    Column("st_size", BigInteger, nullable=False),
    Column("ino", BigInteger, nullable=False),
    Column("st_mode", Integer, nullable=False),
    Column("links", Integer, nullable=False, server_default=text("1")),
    PrimaryKeyConstraint("run_id", "path"),
    sqlite_with_rowid=False,
)

approvals = Table(
    "approvals",
    metadata,
    Column("run_id", Text, ForeignKey("runs.id"), nullable=False),
    Column("step_id", Text, nullable=False),
    Column("iteration", Integer, nullable=False, server_default=text("0")),
    Column("requested_at", Double, nullable=False),
    Column("after_comment", BigInteger, nullable=False, server_default=text("0")),
    Column("decision", Text, _in("decision", DECISIONS)),
    Column("comment", Text),
    Column("decided_by", Text),
    Column("decided_at", Double),
    PrimaryKeyConstraint("run_id", "step_id", "iteration"),
)

concurrency_groups = Table(
    "concurrency_groups",
    metadata,
    Column("name", Text, primary_key=True),
    Column("run_id", Text, ForeignKey("runs.id"), nullable=False),
)

threads = Table(
    "threads",
    metadata,
    Column("id", Text, primary_key=True),
    Column("repo", Text, nullable=False),
    Column("issue", Integer, nullable=False),
    Column("state", Text, _in("state", THREAD_STATES), nullable=False),
    Column("branch", Text),
    Column("pull_request", Integer),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
    UniqueConstraint("repo", "issue"),
    Index("threads_by_pull_request", "repo", "pull_request"),
)

specs = Table(
    "specs",
    metadata,
    Column("thread_id", Text, ForeignKey("threads.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("kind", Text, _in("kind", SPEC_KINDS), nullable=False),
    Column("target_branch", Text),
    Column("instructions", Text),
    Column("run_id", Text, ForeignKey("runs.id")),
    Column("created_at", Double, nullable=False),
    PrimaryKeyConstraint("thread_id", "version"),
    Index("specs_by_run", "run_id"),
)

thread_transitions = Table(
    "thread_transitions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("thread_id", Text, ForeignKey("threads.id"), nullable=False),
    Column("at", Double, nullable=False),
    Column("from_state", Text),
    Column("to_state", Text, nullable=False),
    Column("reason", Text, nullable=False, server_default=text("''")),
    Column("run_id", Text, ForeignKey("runs.id")),
    Index("thread_transitions_by_thread", "thread_id", "id"),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Text, primary_key=True),
    Column("event", Text, nullable=False),
    Column("action", Text),
    Column("received_at", Double, nullable=False),
    Column("run_id", Text),
    Column("body_sha256", Text),  # the raw body's digest: a replay under a new id is a duplicate (0009)
    Index("deliveries_by_body", "body_sha256", unique=True),
)
