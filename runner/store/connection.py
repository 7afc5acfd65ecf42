"""The store's connection to its SQLite database: opened in WAL mode, one write transaction at a
time, the schema brought up to date (runner/store/schema.py) on open.

Every write is one transaction, so the store survives `kill -9` at any point. Everything specific
to SQLite lives here (marked SQLITE): the pragmas, the busy retry, the schema version kept in
`PRAGMA user_version`, and the error that tells a duplicate key. The table modules (runs, attempts,
changes, approvals, leases) write SQL that PostgreSQL reads the same way.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from runner.statedir import StateDir
from runner.store.schema import MIGRATIONS

Params = Sequence[Any]
DuplicateKey = sqlite3.IntegrityError  # SQLITE: what an INSERT of an existing primary key raises


class Connection:
    """The open database at `<state_dir>/state.db` (created, and migrated, on open). Shared by a
    run's threads: reads go straight to it; writes take `transaction()`, which serializes them."""

    def __init__(self, state_dir: Path | StateDir) -> None:
        self.paths = state_dir if isinstance(state_dir, StateDir) else StateDir(state_dir)
        self.state_dir = self.paths.root
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.paths.db
        self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        self._writing = threading.RLock()
        self._db.row_factory = sqlite3.Row
        self._wal_mode()
        self._db.execute("PRAGMA synchronous=NORMAL")  # SQLITE
        self._db.execute("PRAGMA foreign_keys=ON")  # SQLITE
        self._migrate()

    def _wal_mode(self) -> None:
        """SQLITE: switch to WAL. Two processes creating the store at once may find the database
        locked here (the switch takes an exclusive lock without waiting), so it is retried for a while."""
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
            self._db.execute("BEGIN IMMEDIATE")  # SQLITE: take the write lock now, not at the first write
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _one(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        """The first row `sql` reads, or None."""
        row: sqlite3.Row | None = self._db.execute(sql, params).fetchone()
        return row

    def _all(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        """Every row `sql` reads."""
        return list(self._db.execute(sql, params))

    def schema_version(self) -> int:
        """How many migrations the database has had."""
        row = self._one("PRAGMA user_version")  # SQLITE
        return int(row[0]) if row else 0

    def _migrate(self) -> None:
        """Run the migrations the database has not had, all in one transaction."""
        with self.transaction() as db:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])  # SQLITE
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in script.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {number}")  # SQLITE
