"""The CI subset of the real-input suite (benchmarks/real_projects.py, which runs all eight projects
and times a cached second run): idna 3.7 taken from the package index, 3.8's change proposed in an
issue, run through the shipped issue-to-pr.yml with no pipeline edits. The pull request's test counts
must be those of the project's own test command run by hand in the same image, and the branch must
hold exactly the upstream change."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from benchmarks.real_projects import PROJECTS, outcome

pytestmark = pytest.mark.docker


def test_idna_counts_equal_those_of_its_own_test_command_by_hand(tmp_path: Path) -> None:
    idna = next(p for p in PROJECTS if p.name == "idna")
    got = outcome(idna, tmp_path, cached=False)
    assert got.code == 0
    assert re.match(r"[1-9]\d* passed, 0 failed$", got.hand), got.hand  # idna's suite ran and passed
    assert got.pipe == got.hand, f"pipe says {got.pipe!r}, by hand {got.hand!r}"
    assert got.same, "the branch does not hold the upstream change"
