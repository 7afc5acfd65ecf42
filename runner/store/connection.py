"""The store's connection to its database (SQLite or PostgreSQL, runner/store/engines.py), the
schema brought up to date on open (runner/store/migrate.py).

Every write is one transaction (`transaction()`), so the store survives `kill -9` at any point.
SQLite: the Store holds one connection in WAL mode, shared by a run's threads under a lock; a write
transaction is `BEGIN IMMEDIATE` (the write lock taken at once, as pipe always did), which also
serializes writers across processes. PostgreSQL: each transaction takes a connection from the
process's small pool (READ COMMITTED); where a write decides from what it read (a lease, a
concurrency group, an approval, a thread's state) the table modules lock the rows they read with
`SELECT ... FOR UPDATE` (`with_for_update()`, which SQLite's compiler leaves out: its write lock
already covers it).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeAlias

import sqlalchemy
from sqlalchemy import RowMapping, Table, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import Executable

from runner.statedir import StateDir
from runner.store import engines, migrate

Database: TypeAlias = sqlalchemy.Connection  # an open connection, inside a transaction in the table modules
_STATEMENTS: dict[tuple[str, str], Executable] = {}
DuplicateKey = IntegrityError  # what an INSERT of an existing key raises, on either database
Upsert = sqlite.Insert | postgresql.Insert


class Connection:
    """The open database of a state directory (created, and migrated, on open); `url` (default:
    $PIPE_STORE_URL, else `<state_dir>/state.db`, see engines.store_url). Shared by a run's threads.
    Raises UsageError for an unsupported URL; SQLAlchemy's OperationalError when the database
    cannot be reached."""

    def __init__(self, state_dir: Path | StateDir, url: str | None = None) -> None:
        self.paths = state_dir if isinstance(state_dir, StateDir) else StateDir(state_dir)
        self.state_dir = self.paths.root
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.paths.db
        self.url = engines.store_url(self.paths, url)
        self.where = str(self.path) if self.url.startswith("sqlite") else engines.shown(self.url)
        self._engine = engines.engine(self.url)
        self.sqlite = self._engine.dialect.name == "sqlite"
        self._writing = threading.RLock()
        self._depth = 0  # SQLITE: transactions open on self._db (by the thread holding self._writing)
        self._db: Database | None = self._engine.connect() if self.sqlite else None
        try:
            with self.transaction() as db:
                migrate.upgrade(db)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Close the SQLite connection (PostgreSQL connections go back to the process's pool)."""
        if self._db is not None:
            self._db.close()
            self._db = None

    @contextmanager
    def transaction(self) -> Iterator[Database]:
        """One write transaction: committed when the block ends, rolled back on error."""
        if not self.sqlite:
            with self._engine.begin() as db:
                yield db
            return
        with self._writing:
            db = self._sqlite()
            if self._depth:  # SQLITE: a write nested in the caller's own transaction joins it
                yield db
                return
            self._depth += 1
            try:
                db.exec_driver_sql("BEGIN IMMEDIATE")  # SQLITE: take the write lock now, not at the first write
                yield db
            except BaseException:
                db.rollback()
                raise
            finally:
                self._depth -= 1
            db.commit()

    def _sqlite(self) -> Database:
        if self._db is None:
            raise RuntimeError(f"the store of {self.where} is closed")
        return self._db

    def _all(self, statement: Executable) -> list[RowMapping]:
        """Every row `statement` reads, as {column: value} mappings."""
        if not self.sqlite:
            with self._engine.connect() as db:
                return list(db.execute(statement).mappings())
        with self._writing:
            db = self._sqlite()
            try:
                return list(db.execute(statement).mappings())
            finally:
                if not self._depth:
                    db.commit()  # ends SQLAlchemy's implicit transaction; SQLite ran the read on its own

    def _one(self, statement: Executable) -> RowMapping | None:
        """The first row `statement` reads, or None."""
        rows = self._all(statement)
        return rows[0] if rows else None

    def _upsert(self, table: Table) -> Upsert:
        """`INSERT` with `ON CONFLICT` in this database's dialect (both spell it the same)."""
        return sqlite.insert(table) if self.sqlite else postgresql.insert(table)

    def _statement(self, key: str, build: Callable[[Connection], Executable]) -> Executable:
        """The statement `build(self)` makes, built once per process and dialect: the hot writes of a
        step are constant statements given their values at execution, so SQLAlchemy finds them in its
        compiled cache without building (or cache-keying) an expression per call."""
        cache_key = (self._engine.dialect.name, key)
        found = _STATEMENTS.get(cache_key)
        if found is None:
            found = _STATEMENTS[cache_key] = build(self)
        return found

    def schema_version(self) -> int:
        """The schema's version: the number of the Alembic revision the database is at (8: the
        baseline, the schema of pipe's eight hand-written migrations)."""
        with self.transaction() as db:
            found = migrate.revision(db)
        return int(found or 0)

    def execute_text(self, sql: str, **params: Any) -> list[RowMapping]:
        """Rows of raw SQL (tests and diagnostics only; the store's own queries are Core expressions)."""
        with self.transaction() as db:
            return list(db.execute(text(sql), params).mappings())
