"""Issue 16, item 7: `pipe resume` lists every path it puts back, refuses to delete a file the run did
not create (unless --force), and numbers attempts consistently across resumes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.store import Store
from tests.support.cli import Cli
from tests.support.pipelines import write_pipeline

pytestmark = pytest.mark.docker

FLAKY = """\
version: 1
name: flaky
sandbox: {network: none}
steps:
  - id: make
    run: echo made > made.txt
  - id: flaky
    run: echo partial > partial.txt; exit 1
"""


def _events(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_resume_keeps_a_file_the_person_added_and_lists_what_it_reverts(cli: Cli, tmp_path: Path) -> None:
    path = write_pipeline(tmp_path, FLAKY)
    state = ["--state-dir", str(tmp_path / "state")]
    assert cli("run", str(path), *state).code == 1
    store = Store(tmp_path / "state")
    run = store.run("latest")
    workspace = Path(run.workspace)
    (workspace / "notes.txt").write_text("my notes\n")

    refused = cli("resume", run.id, *state)
    assert refused.code == 2, refused.out + refused.err
    assert "resume would delete 1 path(s) the run did not create: notes.txt" in refused.err
    assert (workspace / "notes.txt").read_text() == "my notes\n"
    assert (workspace / "partial.txt").exists()  # refused before anything was changed
    assert store.run(run.id).status == "failed"
    assert all(a.status != "running" for a in store.attempts(run.id))

    forced = cli("resume", run.id, "--force", "--json", *state)
    assert forced.code == 1, forced.out + forced.err
    events = _events(forced.out)
    prepared = next(e for e in events if e["event"] == "resume_prepared")
    assert prepared["paths"] == ["notes.txt", "partial.txt"]
    assert not (workspace / "notes.txt").exists()
    started = [(e["attempt"], e["of"]) for e in events if e["event"] == "attempt_started" and e["step"] == "flaky"]
    assert started == [(2, 2)]  # the second attempt overall, the last this resume may make: never "2 of 1"
    numbers = [a.number for a in store.attempts(run.id) if a.step_id == "flaky"]
    assert numbers == [1, 2]


def test_the_console_lists_the_reverted_paths(cli: Cli, tmp_path: Path) -> None:
    path = write_pipeline(tmp_path, FLAKY)
    state = ["--state-dir", str(tmp_path / "state")]
    assert cli("run", str(path), *state).code == 1
    run_id = Store(tmp_path / "state").run("latest").id
    result = cli("resume", run_id, *state)
    assert result.code == 1, result.out + result.err
    assert "  reverted partial.txt" in result.out
