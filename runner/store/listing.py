"""The runs list of `pipe ui`, filtered and paginated in the database through a read-only
connection (no store is opened, nothing is created or migrated), so a page costs the same with
10,000 runs as with 10: one indexed page of rows and one count."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from runner.statedir import StateDir
from runner.store.connection import Connection
from runner.store.records import RunRecord, decode
from runner.store.runs import RUN_QUERY
from runner.store.schema import MIGRATIONS


@dataclass(frozen=True)
class RunFilter:
    """What the list is narrowed to; empty strings mean any. `repository` and `issue` match the
    run's `repo` and `issue` inputs."""

    status: str = ""
    pipeline: str = ""
    repository: str = ""
    issue: str = ""


@dataclass(frozen=True)
class RunPage:
    """One page of runs, newest first; `total` runs match in all; `pipelines`: every pipeline name."""

    runs: list[RunRecord]
    total: int
    pipelines: list[str]


def _where(filters: RunFilter) -> tuple[str, list[str]]:
    clauses, params = [], []
    for clause, value in (
        ("runs.status = ?", filters.status),
        ("pipelines.name = ?", filters.pipeline),
        ("CAST(json_extract(runs.inputs, '$.repo') AS TEXT) = ?", filters.repository),  # SQLITE: json_extract
        ("CAST(json_extract(runs.inputs, '$.issue') AS TEXT) = ?", filters.issue),
    ):
        if value:
            clauses.append(clause)
            params.append(value)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _upgrade(paths: StateDir) -> None:
    """Bring an older database's schema up to date first (a state directory no command has opened
    since pipe was upgraded), as opening the store would."""
    db = sqlite3.connect(f"{paths.db.resolve().as_uri()}?mode=ro", uri=True, timeout=30)  # SQLITE
    try:
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
    finally:
        db.close()
    if version < len(MIGRATIONS):
        Connection(paths).close()


def list_runs(paths: StateDir, filters: RunFilter, *, limit: int, offset: int) -> RunPage:
    """Runs `offset` to `offset + limit` of those matching `filters` in the state directory's
    database; an empty page when there is no database yet."""
    if not paths.db.exists():
        return RunPage([], 0, [])
    _upgrade(paths)
    db = sqlite3.connect(f"{paths.db.resolve().as_uri()}?mode=ro", uri=True, timeout=30)  # SQLITE
    db.row_factory = sqlite3.Row
    try:
        where, params = _where(filters)
        count = db.execute(
            f"SELECT COUNT(*) FROM runs JOIN pipelines ON pipelines.id = runs.pipeline_id{where}", params
        )
        total = int(count.fetchone()[0])
        rows = db.execute(
            f"{RUN_QUERY}{where} ORDER BY runs.created_at DESC LIMIT ? OFFSET ?", [*params, limit, offset]
        )
        runs = [decode(RunRecord, row) for row in rows]
        names = [str(row[0]) for row in db.execute("SELECT DISTINCT name FROM pipelines ORDER BY name")]
    finally:
        db.close()
    return RunPage(runs, total, names)
