"""Which database a store uses, and the SQLAlchemy engines that reach it: one per database URL per
process, created on first use and never per call (a step's store writes are on its critical path).

`PIPE_STORE_URL` (or `pipe --store-url`, which sets it for the process and the processes it starts)
selects the database: `sqlite:///PATH` or `postgresql[+psycopg]://USER:PASSWORD@HOST:PORT/DB`.
Without it, the state directory's `state.db` (SQLite, as before). SQLite engines open one DBAPI
connection per Store (NullPool: the Store holds it, in WAL mode, as runner/store/connection.py
describes); PostgreSQL engines keep a small pool shared by the process's stores (size 4, overflow 4,
pre-ping), the pool settings SQLAlchemy's documentation suggests for a threaded client. After
`fork()` a child drops the parent's pooled connections without closing them (SQLAlchemy's
"Using Connection Pools with Multiprocessing" recipe: `dispose(close=False)`).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import NullPool

from runner.errors import UsageError
from runner.statedir import StateDir

STORE_URL_ENV = "PIPE_STORE_URL"

_engines: dict[tuple[str, bool], Engine] = {}
_lock = threading.Lock()


def store_url(paths: StateDir, explicit: str | None = None) -> str:
    """The database URL of a store of the state directory `paths`: `explicit`, else $PIPE_STORE_URL,
    else `sqlite:///<state dir>/state.db`. `postgresql://` is read as `postgresql+psycopg://`
    (psycopg 3 is the driver pipe installs). Raises UsageError (exit 2) naming PIPE_STORE_URL for a
    URL that is not SQLite or PostgreSQL."""
    url = explicit or os.environ.get(STORE_URL_ENV, "")
    if not url:
        return f"sqlite:///{paths.db}"
    try:
        parsed = make_url(url)
    except ArgumentError as error:
        raise UsageError(f"{STORE_URL_ENV}: not a database URL: {error}") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername not in ("sqlite", "postgresql+psycopg"):
        raise UsageError(
            f"{STORE_URL_ENV}: {parsed.drivername!r} is not a store pipe supports (sqlite:///PATH, postgresql://...)"
        )
    return parsed.render_as_string(hide_password=False)


def shown(url: str) -> str:
    """The URL for messages: its password hidden."""
    return make_url(url).render_as_string(hide_password=True)


def engine(url: str, *, read_only: bool = False) -> Engine:
    """The process's engine for `url` (created on first use). `read_only` (SQLite only): connections
    open the file with `mode=ro`, creating and changing nothing."""
    key = (url, read_only)
    with _lock:
        found = _engines.get(key)
        if found is None:
            found = _engines[key] = _create(url, read_only)
        return found


def dispose(url: str) -> None:
    """Close the pooled connections of `url`'s engines and forget them (a database about to be dropped)."""
    with _lock:
        for key in [key for key in _engines if key[0] == url]:
            _engines.pop(key).dispose()


def _create(url: str, read_only: bool) -> Engine:
    parsed = make_url(url)
    if parsed.drivername != "sqlite":
        return create_engine(url, pool_size=4, max_overflow=4, pool_pre_ping=True, pool_timeout=30)
    connect_args: dict[str, Any] = {"timeout": 30, "check_same_thread": False, "isolation_level": None}
    if read_only:
        location = f"{Path(parsed.database or '').resolve().as_uri()}?mode=ro"
        return create_engine(
            "sqlite://", poolclass=NullPool, creator=lambda: sqlite3.connect(location, uri=True, **connect_args)
        )
    created = create_engine(parsed, poolclass=NullPool, connect_args=connect_args)
    event.listen(created, "connect", _sqlite_pragmas)
    return created


def _sqlite_pragmas(connection: sqlite3.Connection, _record: object) -> None:
    """SQLITE: WAL (retried: two processes creating the store at once may find the database locked
    while one switches, and the switch does not wait), NORMAL sync, foreign keys enforced."""
    for attempt in range(100):
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or attempt == 99:
                raise
            time.sleep(0.05)
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute("PRAGMA foreign_keys=ON")


def _after_fork() -> None:
    for found in _engines.values():
        found.dispose(close=False)


os.register_at_fork(after_in_child=_after_fork)
