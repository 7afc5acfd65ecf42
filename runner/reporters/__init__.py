"""Reporters: where a run's progress goes. Each receives the engine's events (`event`) and the
masked output of steps (`output`). Listed in REPORTERS; `Fanout` sends to several.

Event kinds: run_started, image, step_started, step_skipped, step_error, attempt_started,
retrying, attempt_finished, step_finished, run_finished (payloads: see runner/engine.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class Reporter(Protocol):
    def event(self, kind: str, data: Mapping[str, Any]) -> None:
        """One engine event; data is JSON-serialisable and already masked."""
        ...

    def output(self, step: str, text: str) -> None:
        """Masked output of a step: whole lines (the last may lack its newline at the end)."""
        ...

    def close(self) -> None:
        """The run is over; release the terminal."""
        ...


class Fanout:
    """Sends everything to each of `reporters` in order."""

    def __init__(self, *reporters: Reporter) -> None:
        self.reporters = reporters

    def event(self, kind: str, data: Mapping[str, Any]) -> None:
        for reporter in self.reporters:
            reporter.event(kind, data)

    def output(self, step: str, text: str) -> None:
        for reporter in self.reporters:
            reporter.output(step, text)

    def settle(self) -> None:
        settle(*self.reporters)

    def close(self) -> None:
        for reporter in self.reporters:
            reporter.close()


def settle(*reporters: Reporter) -> None:
    """Let each reporter that writes in the background (it has a `settle()`) deliver what is
    pending, within its own grace: called before a run's end is stored."""
    for reporter in reporters:
        method = getattr(reporter, "settle", None)
        if callable(method):
            method()
