"""Runs of dead workers (Store.orphaned_runs) and the worker's look for them (OrphanWatch), on
SQLite and PostgreSQL: a run is an orphan when a worker executed it, it is still `running` and
nobody holds its lease; each worker enqueues one again at most once per REENQUEUE_AFTER."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.names import RunStatus
from runner.store import Store
from runner.workers.orphans import REENQUEUE_AFTER, OrphanWatch

pytestmark = pytest.mark.usefixtures("store_backend")  # each test on SQLite, then PostgreSQL


def make_runs(store: Store) -> dict[str, str]:
    pipeline = store.add_pipeline("p", "p.yml", "d", "version: 1")
    made = {name: store.create_run(pipeline, {}) for name in ("orphan", "leased", "local", "pending", "ended")}
    for name in ("orphan", "leased", "local"):
        store.update_run(made[name], status=RunStatus.RUNNING.value)
    for name in ("orphan", "leased", "ended"):
        store.update_run(made[name], worker="pipe.1@gone")
    store.update_run(made["ended"], status=RunStatus.FAILED.value)
    assert store.acquire_lease(made["orphan"], "gone:1:a", "gone", -1.0, lambda _pid: True) is None
    assert store.acquire_lease(made["leased"], "alive:2:b", "alive", 60.0, lambda _pid: True) is None
    return made


def test_only_running_runs_of_workers_with_no_lease_are_orphans(tmp_path: Path) -> None:
    store = Store(tmp_path)
    try:
        made = make_runs(store)
        assert store.orphaned_runs() == [made["orphan"]]
        store.release_lease(made["leased"], "alive:2:b")  # released without ending: its worker stopped
        assert store.orphaned_runs() == [made["orphan"], made["leased"]]
    finally:
        store.close()


def test_a_worker_enqueues_an_orphan_once_per_period(tmp_path: Path) -> None:
    store = Store(tmp_path)
    try:
        made = make_runs(store)
    finally:
        store.close()
    sent: list[str] = []
    watch = OrphanWatch(tmp_path, sent.append, 0)
    assert watch.look(now=1000.0) == [made["orphan"]]
    assert watch.look(now=1000.0 + REENQUEUE_AFTER - 1) == []
    assert watch.look(now=1000.0 + REENQUEUE_AFTER) == [made["orphan"]]
    assert sent == [made["orphan"], made["orphan"]]
