"""Run leases: which process owns a run. The owner renews its lease from a heartbeat thread; a
lease that is not renewed (the process was killed) expires, so a run whose process died can be
detected and resumed, while two live processes can never work on one run at once.

A live owner can still lose its lease: its renewals failed for longer than the lease (the store
was unreachable, the machine was suspended) and a worker took the run over meanwhile. The heartbeat
thread notices (a renewal that changes nothing) and sets `lost`; the engine then stops before its
next attempt or recording and leaves the run to its new owner (LeaseLost), writing nothing more.
A renewal that fails (the store does not answer) is retried at the next beat, not given up."""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from pathlib import Path

from runner.store import Store

LEASE_SECONDS = 30.0
RENEW_EVERY = 5.0
log = logging.getLogger("pipe.lease")


class LeaseLost(BaseException):
    """This process no longer holds the run's lease: another process took the run over. A
    BaseException, as KeyboardInterrupt is, so that no step's error handling takes it for the
    step's failure; the engine stops without writing the run's end (runner/engine/engine.py)."""


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
        self.lost = threading.Event()  # set by the heartbeat once another process holds the lease
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
                try:
                    held = store.renew_lease(self.run_id, self.owner, LEASE_SECONDS)
                except Exception as problem:  # the store does not answer: try again at the next beat
                    log.warning("run %s: renewing its lease failed: %s", self.run_id, problem)
                    continue
                if not held:
                    log.warning("run %s: another process took its lease; this one stops", self.run_id)
                    self.lost.set()
                    return
        finally:
            store.close()

    def check(self) -> None:
        """Raise LeaseLost when another process took the run's lease."""
        if self.lost.is_set():
            raise LeaseLost(f"run {self.run_id}: another process took it over; this one stops")

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
