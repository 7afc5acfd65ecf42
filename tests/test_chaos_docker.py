"""Chaos, the CI subset: pipe killed (SIGKILL, SIGTERM) at seeded random moments of a run that
writes, commits, pushes and comments, then resumed, ends exactly as a run nobody interrupted. The
full 30 + 10 trials are `python benchmarks/chaos.py`."""

from __future__ import annotations

import random
import signal
import subprocess
from pathlib import Path

import pytest

from runner.store import Store
from tests.support.chaos import PIPE, Outcome, trial, wait_recorded
from tests.support.github import TOKEN
from tests.support.github_server import GitHubServer

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    outcome = trial(tmp_path_factory.mktemp("reference"), None)
    assert outcome.problems == []
    assert outcome.comparable["commits on the branch"] == "1"
    assert len(outcome.comparable["pull requests"]) == 1  # type: ignore[arg-type]
    return outcome


@pytest.mark.parametrize(
    ("seed", "signal_number", "after_recorded"),
    [
        (1, signal.SIGKILL, False),
        (2, signal.SIGKILL, False),
        (3, signal.SIGKILL, False),
        (4, signal.SIGTERM, False),
        (5, signal.SIGKILL, True),  # at start-up: within half a second of the run being stored
    ],
)
def test_killed_at_a_random_moment_then_resumed_ends_as_an_uninterrupted_run(
    reference: Outcome, tmp_path: Path, seed: int, signal_number: int, after_recorded: bool
) -> None:
    rng = random.Random(seed)
    delay = rng.uniform(0.0, 0.5) if after_recorded else rng.uniform(0.2, reference.seconds)
    outcome = trial(tmp_path, delay, signal_number, after_recorded=after_recorded)
    assert outcome.problems == [], f"killed after {delay:.2f}s"
    assert outcome.comparable == reference.comparable, f"killed after {delay:.2f}s"


EARLY = """\
version: 1
name: early
credentials: [github]
sandbox: {network: none}
steps:
  - id: issue
    uses: github/issue
    with: {number: 1}
  - id: use
    run: echo "title={{ steps.issue.outputs.title }}" >> "$PIPE_OUTPUT"
"""


def test_killed_before_its_first_step_then_resumed_still_has_its_forge(
    github: GitHubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CI failure of 2026-11-23 (seed 4, SIGTERM after 1.37 s): a run killed after it was
    recorded but before its resume state was, resumed without the forge it was started with, and
    its `github/issue` step failed on every resume. The workspace is large so that the baseline
    scan holds the run in that window long enough to kill it there."""
    repo = github.create_repo("octo/early", {"README.md": "# early\n"})
    repo.add_issue("the early title", "body", ())
    workspace = tmp_path / "ws"
    for top in range(8):
        directory = workspace / f"d{top}"
        directory.mkdir(parents=True)
        for n in range(500):
            (directory / f"f{n}").write_text(f"{top} {n}\n")
    pipeline = tmp_path / "early.yml"
    pipeline.write_text(EARLY)
    state = tmp_path / "state"
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    argv = [
        *PIPE, "run", str(pipeline), "--repo", "octo/early", "--api-url", github.api_url,
        "--workspace", str(workspace), "--state-dir", str(state),
    ]  # fmt: skip
    with subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as process:
        assert wait_recorded(state, process, status="running"), "the run was never recorded"
        process.send_signal(signal.SIGKILL)
    store = Store(state)
    try:
        run_id = store.run("latest").id
        started = [e for e in store.events(run_id) if e.kind == "run_started"]
        assert started == [], "killed too late: the run had started its steps"
        resumed = subprocess.run(
            [*PIPE, "resume", run_id, "--state-dir", str(state)], capture_output=True, text=True, check=False
        )
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        outputs = {s.step_id: s.outputs for s in store.steps(run_id)}
        assert outputs["use"] == {"title": "the early title"}
    finally:
        store.close()
