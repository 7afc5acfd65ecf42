"""Chaos, the CI subset: pipe killed (SIGKILL, SIGTERM) at seeded random moments of a run that
writes, commits, pushes and comments, then resumed, ends exactly as a run nobody interrupted. The
full 30 + 10 trials are `python benchmarks/chaos.py`."""

from __future__ import annotations

import random
import signal
from pathlib import Path

import pytest

from tests.support.chaos import Outcome, trial

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    outcome = trial(tmp_path_factory.mktemp("reference"), None)
    assert outcome.problems == []
    assert outcome.comparable["commits on the branch"] == "1"
    assert len(outcome.comparable["pull requests"]) == 1  # type: ignore[arg-type]
    return outcome


@pytest.mark.parametrize(
    ("seed", "signal_number"),
    [(1, signal.SIGKILL), (2, signal.SIGKILL), (3, signal.SIGKILL), (4, signal.SIGTERM)],
)
def test_killed_at_a_random_moment_then_resumed_ends_as_an_uninterrupted_run(
    reference: Outcome, tmp_path: Path, seed: int, signal_number: int
) -> None:
    delay = random.Random(seed).uniform(0.2, reference.seconds)
    outcome = trial(tmp_path, delay, signal_number)
    assert outcome.problems == [], f"killed after {delay:.2f}s"
    assert outcome.comparable == reference.comparable, f"killed after {delay:.2f}s"
