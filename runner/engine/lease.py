"""Run leases: which process owns a run. The owner renews its lease from a heartbeat thread; a
lease that is not renewed (the process was killed) expires, so a run whose process died can be
detected and resumed, while two live processes can never work on one run at once."""

from __future__ import annotations

import os
import secrets
import socket
import threading
from pathlib import Path

from runner.store import Store

LEASE_SECONDS = 30.0
RENEW_EVERY = 5.0


def process_alive(pid: int) -> bool:
    """Whether process `pid` exists on this host (a zombie counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


class Lease:
    """The lease on one run, held by this process (owner `host:pid:token`)."""

    def __init__(self, state_dir: Path, run_id: str = "") -> None:
        """A lease for `run_id` (or, with none yet, for the run about to be created: see `bind`)."""
        self.state_dir = state_dir
        self.run_id = run_id
        self.host = socket.gethostname()
        self.owner = f"{self.host}:{os.getpid()}:{secrets.token_hex(4)}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def bind(self, run_id: str) -> None:
        """The run this lease is for, once created (with the lease already set in the store)."""
        self.run_id = run_id

    def acquire(self) -> str | None:
        """Take the lease and start renewing it; returns None, or who holds it instead."""
        store = Store(self.state_dir)
        try:
            holder = store.acquire_lease(self.run_id, self.owner, self.host, LEASE_SECONDS, process_alive)
        finally:
            store.close()
        if holder is None:
            self._thread = threading.Thread(target=self._renew, name="pipe-lease", daemon=True)
            self._thread.start()
        return holder

    def _renew(self) -> None:
        store = Store(self.state_dir)
        try:
            while not self._stop.wait(RENEW_EVERY):
                store.renew_lease(self.run_id, self.owner, LEASE_SECONDS)
        finally:
            store.close()

    def release(self) -> None:
        """Stop renewing and give the lease up."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        store = Store(self.state_dir)
        try:
            store.release_lease(self.run_id, self.owner)
        finally:
            store.close()
