"""The runs list of `pipe ui`, filtered and paginated in the database, so a page costs the same with
10,000 runs as with 10: one indexed page of rows and one count. On SQLite it reads through a
read-only connection, on PostgreSQL through the process's pool. Either way nothing is created (no
state.db yet, or a PostgreSQL database without pipe's tables yet, reads as an empty page: `pipe ui`
may be opened before the first run), and an older database is upgraded first, as opening the store
would.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import JSON, ColumnElement, String, cast, func, select, type_coerce
from sqlalchemy.engine import make_url

from runner.statedir import StateDir
from runner.store import engines, migrate
from runner.store.connection import Connection
from runner.store.records import RunRecord, decode
from runner.store.runs import RUN_QUERY
from runner.store.tables import HEAD_REVISION, pipelines, runs


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


def _input(dialect: str, key: str) -> ColumnElement[str]:
    """The run's input `key` as text: `inputs` holds JSON text, read as JSON by each database's own
    function (SQLite's json_extract; PostgreSQL's `CAST(... AS JSON) ->>`)."""
    document = type_coerce(runs.c.inputs, JSON) if dialect == "sqlite" else cast(runs.c.inputs, JSON)
    return cast(document[key].as_string(), String)


def _where(dialect: str, filters: RunFilter) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    for column, value in (
        (runs.c.status, filters.status),
        (pipelines.c.name, filters.pipeline),
        (_input(dialect, "repo"), filters.repository),
        (_input(dialect, "issue"), filters.issue),
    ):
        if value:
            clauses.append(column == value)
    return clauses


def list_runs(paths: StateDir, filters: RunFilter, *, limit: int, offset: int) -> RunPage:
    """Runs `offset` to `offset + limit` of those matching `filters` in the state directory's
    database; an empty page when there is no database yet."""
    url = engines.store_url(paths)
    sqlite = make_url(url).drivername == "sqlite"
    if sqlite:
        if not paths.db.exists():
            return RunPage([], 0, [])
        reader = engines.engine(url, read_only=True)
    else:
        reader = engines.engine(url)
    with reader.connect() as db:
        current = migrate.revision(db)
    if current is None and not sqlite:  # a database no command has made pipe's tables in yet
        return RunPage([], 0, [])
    if current != HEAD_REVISION:  # a database no command has opened since pipe was upgraded
        Connection(paths).close()
    where = _where(reader.dialect.name, filters)
    with reader.connect() as db:
        count = select(func.count()).select_from(runs).join(pipelines, pipelines.c.id == runs.c.pipeline_id)
        total = int(db.execute(count.where(*where)).scalar_one())
        page = RUN_QUERY.where(*where).order_by(runs.c.created_at.desc()).limit(limit).offset(offset)
        found = [decode(RunRecord, row) for row in db.execute(page).mappings()]
        names = [
            str(name) for name in db.execute(select(pipelines.c.name).distinct().order_by(pipelines.c.name)).scalars()
        ]
    return RunPage(found, total, names)
