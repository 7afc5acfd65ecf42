"""The runs list of `pipe ui`: the filters a page is asked for, and its page of runs (the query
itself is the store's, runner/store/listing.py: one indexed page of rows and one count, so a page
costs the same with 10,000 runs as with 10). Filters: status, pipeline name, repository (the `repo`
input) and issue (the `issue` input)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from runner.statedir import StateDir
from runner.store import RunFilter, RunRecord
from runner.store import list_runs as store_runs

PAGE_SIZE = 50


@dataclass(frozen=True)
class Filters:
    """What the runs list is narrowed to; empty strings mean any. `page` counts from 1."""

    status: str = ""
    pipeline: str = ""
    repository: str = ""
    issue: str = ""
    page: int = 1


def list_runs(state_dir: Path, filters: Filters) -> tuple[list[RunRecord], int, list[str]]:
    """(the page of runs, newest first; how many match in all; every pipeline name, for the filter).
    An empty list when there is no state database yet."""
    wanted = RunFilter(filters.status, filters.pipeline, filters.repository, filters.issue)
    offset = (max(filters.page, 1) - 1) * PAGE_SIZE
    page = store_runs(StateDir(state_dir), wanted, limit=PAGE_SIZE, offset=offset)
    return page.runs, page.total, page.pipelines
