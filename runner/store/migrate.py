"""Bringing a store's database to the schema of runner/store/tables.py when a store opens: Alembic
(runner/store/migrations/, run programmatically with the store's own connection, inside its write
transaction) for every database, after a one-time bridge for SQLite state directories made before
pipe used Alembic.

The bridge (LEGACY, SQLite only): a database whose `PRAGMA user_version` is 1..8 and that has no
`alembic_version` table is taken to version 8 by the hand-written migrations kept in
runner/store/schema.py, then stamped at Alembic's baseline revision "0008" (which equals version 8).
A database at HEAD_REVISION costs one catalog query and one read: Alembic is not even imported.
"""

from __future__ import annotations

from sqlalchemy import Connection, inspect, text

from runner.store.schema import MIGRATIONS
from runner.store.tables import HEAD_REVISION

BASELINE = "0008"
_BRIDGED = MIGRATIONS[:8]  # the hand-written migrations that Alembic's baseline stands for
_ALEMBIC_TABLE = "alembic_version"
_PG_MIGRATION_LOCK = 0x70697065  # any constant: PostgreSQL's advisory lock serializing concurrent upgraders


def revision(db: Connection) -> str | None:
    """The Alembic revision the database is at, or None (a new database, or one before Alembic)."""
    if not inspect(db).has_table(_ALEMBIC_TABLE):
        return None
    found = db.execute(text(f"SELECT version_num FROM {_ALEMBIC_TABLE}")).scalar()
    return str(found) if found is not None else None


def upgrade(db: Connection) -> None:
    """Bring the database to HEAD_REVISION inside the caller's write transaction `db` (on error the
    caller rolls everything back: a database is never left half-migrated)."""
    if revision(db) == HEAD_REVISION:
        return
    if db.dialect.name == "postgresql":
        db.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
        if revision(db) == HEAD_REVISION:  # another process upgraded it while we waited
            return
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "runner.store:migrations")
    config.attributes["connection"] = db
    if db.dialect.name == "sqlite" and revision(db) is None:
        reached = _legacy_bridge(db)
        if reached is not None:
            command.stamp(config, reached)
    command.upgrade(config, "head")


def _legacy_bridge(db: Connection) -> str | None:
    """LEGACY (SQLite state directories made before Alembic): run the hand-written migrations the
    database has not had, up to version 8, and return the Alembic revision it is then at: BASELINE,
    or "0009"/"0010" for a database the last hand-written migrations (9: deliveries.body_sha256,
    10: runs.worker, the same as those revisions) already reached. None for a new, empty database
    (Alembic builds it)."""
    version = int(db.exec_driver_sql("PRAGMA user_version").scalar() or 0)
    if version == 0:
        return None
    if version > len(_BRIDGED):
        return f"{version:04d}"
    for number, script in enumerate(_BRIDGED[version:], start=version + 1):
        for statement in script.split(";"):
            if statement.strip():
                db.exec_driver_sql(statement)
        db.exec_driver_sql(f"PRAGMA user_version = {number}")
    return BASELINE
