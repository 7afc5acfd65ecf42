"""The runs list of `pipe ui`, filtered and paginated in SQLite (a read-only connection to the
state database), so a page costs the same with 10,000 runs as with 10: one indexed page of rows
and one count. Filters: status, pipeline name, repository (the `repo` input) and issue (the
`issue` input)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from runner.store import RunRecord, _run

PAGE_SIZE = 50
_QUERY = (
    "SELECT runs.*, pipelines.name AS pipeline_name, pipelines.path AS pipeline_path"
    " FROM runs JOIN pipelines ON pipelines.id = runs.pipeline_id"
)


@dataclass(frozen=True)
class Filters:
    """What the runs list is narrowed to; empty strings mean any. `page` counts from 1."""

    status: str = ""
    pipeline: str = ""
    repository: str = ""
    issue: str = ""
    page: int = 1


def _where(filters: Filters) -> tuple[str, list[str]]:
    clauses, params = [], []
    for clause, value in (
        ("runs.status = ?", filters.status),
        ("pipelines.name = ?", filters.pipeline),
        ("CAST(json_extract(runs.inputs, '$.repo') AS TEXT) = ?", filters.repository),
        ("CAST(json_extract(runs.inputs, '$.issue') AS TEXT) = ?", filters.issue),
    ):
        if value:
            clauses.append(clause)
            params.append(value)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def list_runs(state_dir: Path, filters: Filters) -> tuple[list[RunRecord], int, list[str]]:
    """(the page of runs, newest first; how many match in all; every pipeline name, for the filter).
    An empty list when there is no state database yet."""
    path = state_dir / "state.db"
    if not path.exists():
        return [], 0, []
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    db.row_factory = sqlite3.Row
    try:
        where, params = _where(filters)
        total = int(
            db.execute(
                f"SELECT COUNT(*) FROM runs JOIN pipelines ON pipelines.id = runs.pipeline_id{where}", params
            ).fetchone()[0]
        )
        offset = (max(filters.page, 1) - 1) * PAGE_SIZE
        rows = db.execute(
            f"{_QUERY}{where} ORDER BY runs.created_at DESC LIMIT ? OFFSET ?", [*params, PAGE_SIZE, offset]
        )
        runs = [_run(row) for row in rows]
        names = [row[0] for row in db.execute("SELECT DISTINCT name FROM pipelines ORDER BY name")]
    finally:
        db.close()
    return runs, total, names
