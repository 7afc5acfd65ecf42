"""Run leases in the store: which process owns a run (columns of `runs`; the heartbeat that renews
a lease is runner/engine/lease.py)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from sqlalchemy import ColumnElement, select, update

from runner.names import RunStatus
from runner.store.connection import Connection
from runner.store.records import LeaseRecord
from runner.store.tables import runs

_LEASE = (runs.c.lease_owner, runs.c.lease_until, runs.c.host, runs.c.pid)


def _free(moment: float) -> ColumnElement[bool]:
    """Nobody holds the run's lease at `moment`: none, or expired."""
    return runs.c.lease_owner.is_(None) | runs.c.lease_until.is_(None) | (runs.c.lease_until < moment)


class LeaseTables(Connection):
    """The lease columns of `runs`: lease_owner, lease_until (epoch seconds), host, pid."""

    def acquire_lease(
        self, run_id: str, owner: str, host: str, seconds: float, is_alive: Callable[[int], bool]
    ) -> str | None:
        """Take the run's lease for `owner` for `seconds`. Returns None on success, else who holds
        it. A lease that expired, or whose process on this host is dead (`is_alive(pid)`), is free.
        The run's row is locked while deciding (`FOR UPDATE`): of two processes on any machines,
        one takes it. Raises KeyError for an unknown run id."""
        now = time.time()
        with self.transaction() as db:
            row = db.execute(select(*_LEASE).where(runs.c.id == run_id).with_for_update()).mappings().first()
            if row is None:
                raise KeyError(run_id)
            holder, until = row["lease_owner"], row["lease_until"]
            if holder and holder != owner and until and until > now:
                pid = row["pid"]
                if row["host"] != host or (pid and is_alive(pid)):
                    return f"{holder} (until {time.strftime('%H:%M:%S', time.localtime(until))})"
            db.execute(
                update(runs)
                .where(runs.c.id == run_id)
                .values(
                    lease_owner=owner,
                    lease_until=now + seconds,
                    host=host,
                    pid=os.getpid(),
                    heartbeat_at=now,
                    requeued_at=None,  # someone executes it: a later loss is enqueued again at once
                )
            )
        return None

    def renew_lease(self, run_id: str, owner: str, seconds: float) -> bool:
        """Extend `owner`'s lease to `seconds` from now; False (nothing changed) when `owner` no
        longer holds it: another process took the run over after it expired."""
        now = time.time()
        with self.transaction() as db:
            done = db.execute(
                update(runs)
                .where(runs.c.id == run_id, runs.c.lease_owner == owner)
                .values(lease_until=now + seconds, heartbeat_at=now)
            )
        return bool(done.rowcount)

    def release_lease(self, run_id: str, owner: str) -> None:
        """Give up `owner`'s lease (nothing if another owner holds it)."""
        with self.transaction() as db:
            db.execute(
                update(runs)
                .where(runs.c.id == run_id, runs.c.lease_owner == owner)
                .values(lease_owner=None, lease_until=None)
            )

    def orphaned_runs(self, now: float | None = None) -> list[str]:
        """The ids of the runs a Celery worker was executing (`worker` set) that are still
        `running` while nobody holds their lease (none, or expired before `now`, epoch seconds):
        their worker died. Oldest first."""
        moment = time.time() if now is None else now
        query = (
            select(runs.c.id)
            .where(runs.c.status == RunStatus.RUNNING.value, runs.c.worker.is_not(None), _free(moment))
            .order_by(runs.c.created_at)
        )
        return [str(row["id"]) for row in self._all(query)]

    def stale_pending_runs(self, older_than: float, now: float | None = None) -> list[str]:
        """The ids of the runs submitted to a broker queue (`runs.queue` set: a run `pipe run`
        started here is never one) still `pending`, with nobody holding their lease, created more
        than `older_than` seconds before `now`: their task was lost (the submitter died before it
        enqueued it, the broker lost its queue) or waits behind a long queue. Oldest first."""
        moment = time.time() if now is None else now
        query = (
            select(runs.c.id)
            .where(
                runs.c.status == RunStatus.PENDING.value,
                runs.c.queue.is_not(None),
                runs.c.created_at < moment - older_than,
                _free(moment),
            )
            .order_by(runs.c.created_at)
        )
        return [str(row["id"]) for row in self._all(query)]

    def claim_requeue(self, run_id: str, every: float, now: float | None = None) -> bool:
        """Note that the caller enqueues run `run_id` again, unless some process did so less than
        `every` seconds before `now` or the run is no longer `pending` or `running` without a
        lease holder; returns whether the caller won (one conditional UPDATE: of all workers on
        all machines, one a period)."""
        moment = time.time() if now is None else now
        with self.transaction() as db:
            done = db.execute(
                update(runs)
                .where(
                    runs.c.id == run_id,
                    runs.c.status.in_((RunStatus.PENDING.value, RunStatus.RUNNING.value)),
                    _free(moment),
                    runs.c.requeued_at.is_(None) | (runs.c.requeued_at <= moment - every),
                )
                .values(requeued_at=moment)
            )
        return bool(done.rowcount)

    def lease(self, run_id: str) -> LeaseRecord:
        """Who holds a run's lease now. Raises KeyError for an unknown run id."""
        row = self._one(select(*_LEASE, runs.c.heartbeat_at).where(runs.c.id == run_id))
        if row is None:
            raise KeyError(run_id)
        return LeaseRecord(row["lease_owner"], row["lease_until"], row["host"], row["pid"], row["heartbeat_at"])
