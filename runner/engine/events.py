"""A run's events: each is masked, stored in the run's `events` table and sent to its reporter.
The kinds and their payloads are listed in runner/names.py (`EventKind`)."""

from __future__ import annotations

from typing import Any

from runner.masking import Masker
from runner.names import EventKind
from runner.reporters import Reporter
from runner.store import Store


class Events:
    """Where one run's events go: the store (under `run_id`) and the reporter."""

    def __init__(self, run_id: str, store: Store, reporter: Reporter, masker: Masker) -> None:
        self.run_id = run_id
        self.store = store
        self.reporter = reporter
        self.masker = masker

    def emit(self, kind: EventKind, step: str | None = None, **data: Any) -> None:
        """Mask `data` (JSON-serialisable), store it as a `kind` event of `step` (None: of the
        run), and send it to the reporter with `run` (and `step`) added."""
        data = self.masker.mask_value(data)
        self.store.add_event(self.run_id, kind.value, step, data)
        payload = {"run": self.run_id, "step": step, **data} if step else {"run": self.run_id, **data}
        self.reporter.event(kind.value, payload)

    def tell(self, kind: EventKind, step: str | None = None, **data: Any) -> None:
        """Send an event to the reporter only (not stored): a resumed run's recalled steps."""
        payload = {"run": self.run_id, "step": step, **data} if step else {"run": self.run_id, **data}
        self.reporter.event(kind.value, self.masker.mask_value(payload))
