"""Run leases in the store: which process owns a run (columns of `runs`; the heartbeat that renews
a lease is runner/engine/lease.py)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from runner.store.connection import Connection
from runner.store.records import LeaseRecord


class LeaseTables(Connection):
    """The lease columns of `runs`: lease_owner, lease_until (epoch seconds), host, pid."""

    def acquire_lease(
        self, run_id: str, owner: str, host: str, seconds: float, is_alive: Callable[[int], bool]
    ) -> str | None:
        """Take the run's lease for `owner` for `seconds`. Returns None on success, else who holds
        it. A lease that expired, or whose process on this host is dead (`is_alive(pid)`), is free."""
        now = time.time()
        with self.transaction() as db:
            row = db.execute("SELECT lease_owner, lease_until, host, pid FROM runs WHERE id = ?", (run_id,)).fetchone()
            holder, until = row["lease_owner"], row["lease_until"]
            if holder and holder != owner and until and until > now:
                pid = row["pid"]
                if row["host"] != host or (pid and is_alive(pid)):
                    return f"{holder} (until {time.strftime('%H:%M:%S', time.localtime(until))})"
            db.execute(
                "UPDATE runs SET lease_owner = ?, lease_until = ?, host = ?, pid = ?, heartbeat_at = ? WHERE id = ?",
                (owner, now + seconds, host, os.getpid(), now, run_id),
            )
        return None

    def renew_lease(self, run_id: str, owner: str, seconds: float) -> None:
        """Extend `owner`'s lease to `seconds` from now (nothing if another owner took it)."""
        now = time.time()
        with self.transaction() as db:
            db.execute(
                "UPDATE runs SET lease_until = ?, heartbeat_at = ? WHERE id = ? AND lease_owner = ?",
                (now + seconds, now, run_id, owner),
            )

    def release_lease(self, run_id: str, owner: str) -> None:
        """Give up `owner`'s lease (nothing if another owner holds it)."""
        with self.transaction() as db:
            db.execute(
                "UPDATE runs SET lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_owner = ?",
                (run_id, owner),
            )

    def lease(self, run_id: str) -> LeaseRecord:
        """Who holds a run's lease now. Raises KeyError for an unknown run id."""
        row = self._one("SELECT lease_owner, lease_until, host, pid FROM runs WHERE id = ?", (run_id,))
        if row is None:
            raise KeyError(run_id)
        return LeaseRecord(row["lease_owner"], row["lease_until"], row["host"], row["pid"])
