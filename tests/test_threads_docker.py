"""Issue 18, threads and specs: issue-to-pr run twice for one issue on a local forge keeps one
thread, whose spec 1 is `initial` and spec 2 an `update` targeting the pull request's branch, and
whose transitions go planning -> working -> waiting_for_feedback once per run; `pipe threads` and
`pipe show THREAD` read them back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.commands.demo import make_forge
from runner.names import RunStatus, SpecKind, ThreadState
from runner.resources import data_path
from runner.store import Store
from tests.support.cli import Cli

pytestmark = pytest.mark.docker

P, W, F = ThreadState.PLANNING, ThreadState.WORKING, ThreadState.WAITING_FOR_FEEDBACK


def test_two_runs_for_one_issue_give_one_thread_with_an_initial_and_an_update_spec(cli: Cli, tmp_path: Path) -> None:
    forge, state = tmp_path / "forge", tmp_path / "state"
    make_forge(forge)
    pipeline = str(data_path("pipelines") / "issue-to-pr.yml")
    args = ("run", pipeline, "-i", "issue=1", "--forge-dir", str(forge), "--state-dir", str(state))
    first = cli(*args)
    assert first.code == 0, first.out + first.err
    second = cli(*args)
    assert second.code == 0, second.out + second.err
    assert "pipe: thread:" not in first.err + second.err

    store = Store(state)
    try:
        (thread,) = store.threads()
        assert (thread.repo, thread.issue, thread.state) == ("forge", 1, F)
        assert thread.branch == "fix/issue-1" and thread.pull_request is not None
        runs = sorted(store.runs(), key=lambda run: run.created_at)
        assert [run.status for run in runs] == [RunStatus.SUCCEEDED, RunStatus.SUCCEEDED]
        specs = store.specs(thread.id)
        assert [(s.version, s.kind, s.target_branch, s.run_id) for s in specs] == [
            (1, SpecKind.INITIAL, None, runs[0].id),
            (2, SpecKind.UPDATE, "fix/issue-1", runs[1].id),
        ]
        assert all(s.instructions and s.instructions.startswith("Issue #1: ") for s in specs)
        moves = [(t.from_state, t.to_state, t.run_id) for t in store.thread_transitions(thread.id)]
        assert moves == [
            (None, P, None),
            (P, W, runs[0].id),
            (W, F, runs[0].id),
            (F, P, runs[1].id),
            (P, W, runs[1].id),
            (W, F, runs[1].id),
        ]
        events = [e.data["to"] for e in store.events(runs[1].id) if e.kind == "thread_transition"]
        assert events == [P, W, F]
    finally:
        store.close()

    listed = cli("threads", "--state", "waiting_for_feedback", "--json", "--state-dir", str(state))
    assert listed.code == 0 and json.loads(listed.out)["id"] == thread.id
    shown = cli("show", "forge#1", "--state-dir", str(state))
    assert shown.code == 0, shown.err
    assert f"thread {thread.id}" in shown.out and "2. update -> fix/issue-1" in shown.out
    assert "waiting_for_feedback -> planning" in shown.out
