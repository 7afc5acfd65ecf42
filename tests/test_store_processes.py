"""What must hold across processes (on PostgreSQL, across machines): of several processes racing
at once for a concurrency group, a run's lease or an open approval, exactly one gets it. Each race
runs on SQLite (its write lock) and on PostgreSQL (row locks: SELECT ... FOR UPDATE)."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from runner.store import Store
from tests.support.stores import race

pytestmark = pytest.mark.usefixtures("store_backend")  # each test on SQLite, then PostgreSQL

RACERS = 4


def _race(state: Path, what: str, key: str) -> list[str]:
    """Start RACERS processes, release them at once, and return their outcomes by index."""
    context = multiprocessing.get_context("spawn")
    start, results = context.Event(), context.Queue()
    processes = [
        context.Process(target=race, args=(str(state), what, key, index, start, results)) for index in range(RACERS)
    ]
    for process in processes:
        process.start()
    start.set()
    outcomes = dict(results.get(timeout=60) for _ in processes)
    for process in processes:
        process.join(30)
        assert process.exitcode == 0
    return [outcomes[index] for index in range(RACERS)]


def test_one_process_of_many_takes_a_concurrency_group(tmp_path: Path) -> None:
    Store(tmp_path).close()  # the schema exists before the racers start
    outcomes = _race(tmp_path, "group", "deploy")
    assert outcomes.count("won") == 1, outcomes
    assert all("concurrency group 'deploy' is busy" in outcome for outcome in outcomes if outcome != "won")
    store = Store(tmp_path)
    try:
        assert len(store.runs()) == 1  # the losers' runs were rolled back with their group claim
    finally:
        store.close()


def test_one_process_of_many_takes_a_runs_lease(tmp_path: Path) -> None:
    store = Store(tmp_path)
    try:
        run_id = store.create_run(store.add_pipeline("p", "p.yml", "d", "version: 1"), {})
    finally:
        store.close()
    outcomes = _race(tmp_path, "lease", run_id)
    assert outcomes.count("won") == 1, outcomes
    winner = f"racer-{outcomes.index('won')}"
    assert all(outcome.startswith(f"lost: {winner} (until") for outcome in outcomes if outcome != "won")
    store = Store(tmp_path)
    try:
        assert store.lease(run_id).owner == winner
    finally:
        store.close()


def test_one_process_of_many_decides_an_approval(tmp_path: Path) -> None:
    store = Store(tmp_path)
    try:
        run_id = store.create_run(store.add_pipeline("p", "p.yml", "d", "version: 1"), {})
        store.request_approval(run_id, "gate", 0, 0)
    finally:
        store.close()
    outcomes = _race(tmp_path, "approve", run_id)
    assert outcomes.count("won") == 1, outcomes
    assert all("is not waiting for an approval" in outcome for outcome in outcomes if outcome != "won")
    store = Store(tmp_path)
    try:
        approval = store.approval(run_id, "gate", 0)
        assert approval is not None and approval.decided_by == f"racer-{outcomes.index('won')}"
    finally:
        store.close()
