"""A live runner that lost its run's lease (another process took the run over while its renewals
were failing) stops: no further attempt, nothing recorded of the attempt under way, no end written
over the new owner's; it exits 2 with one line saying so (runner/engine/lease.py)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import update

from runner.names import AttemptStatus, EventKind, RunStatus
from runner.store import Store
from runner.store.tables import runs
from tests.support.pipelines import write_pipeline

pytestmark = pytest.mark.docker

THREE = """\
version: 1
name: three-steps
sandbox: {network: none}
steps:
  - id: slow
    run: sleep 9 && echo slow > slow.txt
  - id: second
    run: echo second > second.txt
  - id: third
    run: echo third
"""


def test_a_runner_whose_lease_was_taken_stops_and_writes_nothing_more(tmp_path: Path) -> None:
    state = tmp_path / "state"
    path = write_pipeline(tmp_path, THREE)
    command = [sys.executable, "-m", "runner", "run", str(path), "--state-dir", str(state)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run_id = ""
    deadline = time.monotonic() + 60
    while not run_id:
        assert time.monotonic() < deadline, "the run did not start its first step"
        store = Store(state)
        try:
            found = [r for r in store.runs() if any(a.step_id == "slow" for a in store.attempts(r.id))]
            run_id = found[0].id if found else ""
        finally:
            store.close()
        time.sleep(0.2)
    store = Store(state)
    try:  # another process takes the run over, as a worker would after the lease expired
        with store.transaction() as db:
            db.execute(
                update(runs)
                .where(runs.c.id == run_id)
                .values(lease_owner="elsewhere:1:x", lease_until=time.time() + 600)
            )
    finally:
        store.close()
    out, err = process.communicate(timeout=120)
    assert process.returncode == 2, out + err
    assert "another process took it over" in err and "Traceback" not in err
    store = Store(state)
    try:
        record = store.run(run_id)
        assert record.status == RunStatus.RUNNING  # the new owner's to end, not this one's
        attempts = store.attempts(run_id)
        assert [a.step_id for a in attempts] == ["slow"] and attempts[0].status == AttemptStatus.RUNNING
        assert store.changes(run_id) == []  # nothing of the attempt under way was recorded
        assert not [e for e in store.events(run_id) if e.kind == EventKind.RUN_FINISHED.value]
        assert store.lease(run_id).owner == "elsewhere:1:x"
    finally:
        store.close()
