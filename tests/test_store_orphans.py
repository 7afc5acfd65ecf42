"""Runs that lost their worker or their task (Store.orphaned_runs, Store.stale_pending_runs) and
the workers' look for them (OrphanWatch), on SQLite and PostgreSQL: a run is an orphan when a worker
executed it, it is still `running` and nobody holds its lease; a pending run is stale after
STALE_PENDING seconds without a lease holder. Across workers, a run is enqueued again at most once
per REENQUEUE_AFTER (Store.claim_requeue), and again at once after someone took its lease."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from runner.names import RunStatus
from runner.store import Store
from runner.workers.orphans import REENQUEUE_AFTER, STALE_PENDING, OrphanWatch

pytestmark = pytest.mark.usefixtures("store_backend")  # each test on SQLite, then PostgreSQL


def make_runs(store: Store) -> dict[str, str]:
    pipeline = store.add_pipeline("p", "p.yml", "d", "version: 1")
    made = {name: store.create_run(pipeline, {}, queue="pipe") for name in ("orphan", "leased", "pending", "ended")}
    made["local"] = store.create_run(pipeline, {})  # `pipe run` here: never submitted to a queue
    made["gpu"] = store.create_run(pipeline, {}, queue="gpu")
    made["local pending"] = store.create_run(pipeline, {})
    for name in ("orphan", "leased", "local", "gpu"):
        store.update_run(made[name], status=RunStatus.RUNNING.value)
    for name in ("orphan", "leased", "ended", "gpu"):
        store.update_run(made[name], worker="pipe.1@gone")
    assert store.acquire_lease(made["gpu"], "gone:1:g", "gone", 10 * REENQUEUE_AFTER, lambda _pid: True) is None
    store.update_run(made["ended"], status=RunStatus.FAILED.value)
    assert store.acquire_lease(made["orphan"], "gone:1:a", "gone", -1.0, lambda _pid: True) is None
    assert store.acquire_lease(made["leased"], "alive:2:b", "alive", 10 * REENQUEUE_AFTER, lambda _pid: True) is None
    return made


def test_only_running_runs_of_workers_with_no_lease_are_orphans(tmp_path: Path) -> None:
    store = Store(tmp_path)
    try:
        made = make_runs(store)
        assert store.orphaned_runs() == [made["orphan"]]
        assert store.submitted_queues() == ["gpu", "pipe"]
        store.release_lease(made["leased"], "alive:2:b")  # released without ending: its worker stopped
        assert store.orphaned_runs() == [made["orphan"], made["leased"]]
        assert store.stale_pending_runs(STALE_PENDING) == []
        # a pending run that `pipe run` left here (killed before it started) is resumed by a person
        assert store.stale_pending_runs(STALE_PENDING, time.time() + STALE_PENDING + 1) == [made["pending"]]
    finally:
        store.close()


def test_across_workers_a_run_is_enqueued_again_once_per_period(tmp_path: Path) -> None:
    store = Store(tmp_path)
    try:
        made = make_runs(store)
    finally:
        store.close()
    sent: list[str] = []

    def send(run_id: str, queue: str | None) -> None:
        assert queue == "pipe"
        sent.append(run_id)

    one, other = OrphanWatch(tmp_path, send, 0), OrphanWatch(tmp_path, send, 0)
    start = time.time()
    assert one.look(now=start) == [made["orphan"]]
    assert other.look(now=start + 1) == []  # the other worker finds it claimed
    later = start + REENQUEUE_AFTER
    assert sorted(other.look(now=later)) == sorted([made["orphan"], made["pending"]])  # stale by now too
    assert one.look(now=later) == []
    store = Store(tmp_path)
    try:  # a worker takes the orphan's lease, then dies too: it is enqueued again at once
        assert store.acquire_lease(made["orphan"], "w2:3:c", "w2", -1.0, lambda _pid: True) is None
    finally:
        store.close()
    assert one.look(now=later + 2) == [made["orphan"]]
    assert sorted(sent) == sorted([made["orphan"]] * 3 + [made["pending"]])


def test_a_run_is_enqueued_again_on_the_queue_it_was_submitted_to(tmp_path: Path) -> None:
    store = Store(tmp_path)
    try:
        made = make_runs(store)
        store.release_lease(made["gpu"], "gone:1:g")  # its worker stopped
    finally:
        store.close()
    sent: list[tuple[str, str | None]] = []
    assert made["gpu"] in OrphanWatch(tmp_path, lambda run, queue: sent.append((run, queue)), 0).look()
    assert (made["gpu"], "gpu") in sent and (made["orphan"], "pipe") in sent
