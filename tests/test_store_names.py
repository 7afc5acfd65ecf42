"""The statuses the database accepts (its `CHECK` lists) are exactly the enums' values, read from
the CHECK constraints a fresh store reflects (SQLite and PostgreSQL)."""

from __future__ import annotations

import enum
from pathlib import Path

import pytest

from runner.names import AttemptStatus, Decision, RunStatus
from runner.store import Store
from tests.support.stores import check_list

pytestmark = pytest.mark.usefixtures("store_backend")  # each test on SQLite, then PostgreSQL


@pytest.mark.parametrize(
    ("table", "column", "names"),
    [("runs", "status", RunStatus), ("attempts", "status", AttemptStatus), ("approvals", "decision", Decision)],
)
def test_check_lists_equal_the_enums(tmp_path: Path, table: str, column: str, names: type[enum.StrEnum]) -> None:
    store = Store(tmp_path)
    try:
        assert check_list(store, table, column) == {name.value for name in names}
    finally:
        store.close()


def test_a_status_outside_the_enum_is_refused_on_write(tmp_path: Path) -> None:
    store = Store(tmp_path)
    try:
        run_id = store.create_run(store.add_pipeline("p", "p.yml", "d", "version: 1"), {})
        with pytest.raises(ValueError):
            store.update_run(run_id, status="finished")
        attempt = store.start_attempt(run_id, "s", 0, 1, tmp_path / "s.log", 1.0)
        with pytest.raises(ValueError):
            store.finish_attempt(attempt, "done", 0, 2.0, {}, None)
        assert store.run(run_id).status is RunStatus.PENDING
        assert store.attempts(run_id)[0].status is AttemptStatus.RUNNING
    finally:
        store.close()
