"""Claims wait for a concurrent writer and then see what it wrote, deterministically: while one
store's transaction holds an uncommitted lease or decision, a second store's claim of the same row
blocks (PostgreSQL: SELECT ... FOR UPDATE; SQLite: the write lock) and, once that commits, loses.
Without the row lock, PostgreSQL would read the old row and overwrite the first writer's claim."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from runner.errors import UsageError
from runner.store import Store
from runner.store.tables import approvals, runs

pytestmark = pytest.mark.usefixtures("store_backend")  # each test on SQLite, then PostgreSQL


def _while_held(first: Store, change: Any, claim: Callable[[], object]) -> object:
    """Run `change` in a transaction of `first` left open while `claim` runs in a thread; check the
    claim waits for it, commit, and return what the claim returned (or raised)."""
    outcome: list[object] = []

    def contender() -> None:
        try:
            outcome.append(claim())
        except UsageError as error:
            outcome.append(error)

    thread = threading.Thread(target=contender)
    with first.transaction() as db:
        db.execute(change)
        thread.start()
        time.sleep(0.5)
        assert thread.is_alive(), "the claim did not wait for the open transaction"
    thread.join(30)
    assert not thread.is_alive()
    return outcome[0]


def test_a_lease_claim_waits_for_a_concurrent_claim_and_loses(tmp_path: Path) -> None:
    first, second = Store(tmp_path), Store(tmp_path)
    try:
        run_id = first.create_run(first.add_pipeline("p", "p.yml", "d", "version: 1"), {})
        taken = update(runs).where(runs.c.id == run_id).values(lease_owner="a", lease_until=time.time() + 60, host="h1")
        found = _while_held(first, taken, lambda: second.acquire_lease(run_id, "b", "h2", 60.0, lambda _pid: True))
        assert isinstance(found, str) and found.startswith("a (until")
        assert second.lease(run_id).owner == "a"
    finally:
        first.close()
        second.close()


def test_a_decision_waits_for_a_concurrent_decision_and_finds_none_open(tmp_path: Path) -> None:
    first, second = Store(tmp_path), Store(tmp_path)
    try:
        run_id = first.create_run(first.add_pipeline("p", "p.yml", "d", "version: 1"), {})
        first.request_approval(run_id, "gate", 0, 0)
        decided = update(approvals).where(approvals.c.run_id == run_id).values(decision="rejected", decided_by="a")
        found = _while_held(first, decided, lambda: second.decide(run_id, "approved", None, "b"))
        assert isinstance(found, UsageError) and "not waiting for an approval" in str(found)
        approval = second.approval(run_id, "gate", 0)
        assert approval is not None and (approval.decision, approval.decided_by) == ("rejected", "a")
    finally:
        first.close()
        second.close()
