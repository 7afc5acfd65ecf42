"""Runs continued by another worker than the one that executed them.

A worker killed with SIGKILL in the middle of a child run's writing step: another worker takes
the child over (runner/workers/orphans.py finds it once its lease expires, runner/workers/resume.py
rebuilds its workspace in the new worker's own work directory from the manifest and the shared
objects) and finishes it. Its pushed tree equals an uninterrupted child's, and the test GitHub
server holds exactly one pull request and one comment per child. And a run that waits at a wait
point after its worker left is continued by `pipe approve` on another worker, in a workspace
rebuilt there."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runner.names import AttemptStatus, EventKind, RunStatus
from runner.store import Store
from runner.workers.app import make_app
from tests.support.cli import Cli
from tests.support.github import TOKEN
from tests.support.github_server import GitHubServer
from tests.support.pipelines import write_pipeline
from tests.support.workers import broker, flush_broker, worker_env, workers

pytestmark = [pytest.mark.docker, pytest.mark.redis]

CHILD = """\
version: 1
name: takeover-child
inputs:
  issue: {type: integer, required: true}
  pause: {type: integer, default: 0}
credentials: [github]
steps:
  - id: issue
    uses: github/issue
    with: {number: "{{ inputs.issue }}"}
  - id: checkout
    uses: git/checkout
    with: {branch: "fix/issue-{{ inputs.issue }}"}
  - id: notes
    credentials: []
    sandbox: {network: none}
    run: |
      mkdir -p docs && printf 'notes\\n' > docs/notes.md && ln -s docs/notes.md NOTES && chmod 0750 docs
  - id: change
    credentials: []
    sandbox: {network: none}
    run: |
      sed -i 's/a - b/a + b/' calc.py
      echo "half written" > half.txt
      echo "fixed" >> docs/notes.md
      sleep {{ inputs.pause }}
      rm half.txt
  - id: commit
    uses: git/commit
    with: {message: "Fix add()"}
  - id: push
    uses: git/push
  - id: pr
    uses: github/pull-request
    with: {title: "Fix #{{ inputs.issue }}", body: "Fixes #{{ inputs.issue }}"}
  - id: comment
    uses: github/comment
    with: {issue: "{{ inputs.issue }}", body: "Opened {{ steps.pr.outputs.url }}"}
"""

PARENT = """\
version: 1
name: takeover-parent
steps:
  - id: children
    uses: pipeline
    with:
      pipeline: child.yml
      for-each: [{issue: 1, pause: 12}, {issue: 2, pause: 0}]
      parallelism: 2
"""


def wait_for_change(state: Path, seconds: float) -> tuple[str, str]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if (found := running_change(state)) is not None:
            return found
        time.sleep(0.3)
    pytest.fail("the slow child's writing step never started")


def running_change(state: Path) -> tuple[str, str] | None:
    """(child run id, its worker) once the slow child's `change` step has an attempt running."""
    store = Store(state)
    try:
        for run in store.runs():
            if run.pipeline_name != "takeover-child" or run.inputs.get("pause") != 12 or run.worker is None:
                continue
            if any(a.step_id == "change" and a.status == AttemptStatus.RUNNING for a in store.attempts(run.id)):
                return run.id, run.worker
    finally:
        store.close()
    return None


def test_a_child_of_a_killed_worker_is_finished_by_another(
    tmp_path: Path, github: GitHubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    flush_broker()
    repo = github.create_repo("octo/demo", {"README.md": "# demo\n", "calc.py": "def add(a, b):\n    return a - b\n"})
    for number in (1, 2):
        repo.add_issue(f"add() subtracts ({number})", "`add(2, 3)` returns -1.", ("bug",))
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    state = tmp_path / "state"
    write_pipeline(tmp_path, CHILD, "child.yml")
    parent_file = write_pipeline(tmp_path, PARENT, "parent.yml")
    extra = {"PIPE_ORPHAN_CHECK_INTERVAL": "2"}
    with workers(tmp_path, state, count=2, concurrency=1, work_dirs=True, env=extra) as started:
        command = [sys.executable, "-m", "runner", "run", str(parent_file), "--state-dir", str(state)]
        command += ["--repo", "octo/demo", "--api-url", github.api_url]
        with open(tmp_path / "parent.log", "wb") as log:
            parent = subprocess.Popen(command, env=worker_env(state), stdout=log, stderr=subprocess.STDOUT)
            child_id, doomed = wait_for_change(state, 240)
            time.sleep(3)  # the step is writing: half.txt and the edits exist, unrecorded
            (victim,) = [p for p in started if doomed.startswith(f"pipe.{p.pid}@")]
            os.killpg(victim.pid, signal.SIGKILL)
            victim.wait()
            code = parent.wait(timeout=600)
    assert code == 0, (tmp_path / "parent.log").read_text()[-4000:]
    store = Store(state)
    try:
        child = store.run(child_id)
        assert child.status == RunStatus.SUCCEEDED
        assert child.worker is not None and child.worker != doomed, (child.worker, doomed)
        adopted = [e for e in store.events(child_id) if e.kind == EventKind.RUN_ADOPTED.value]
        assert len(adopted) == 1 and adopted[0].data["worker"] == doomed
        workspace, previous = Path(child.workspace), Path(adopted[0].data["previous"])
        homes = {path.relative_to(tmp_path).parts[0] for path in (workspace, previous)}
        assert homes == {"w1", "w2"}, (workspace, previous)  # rebuilt in the other worker's work directory
        # the rebuilt workspace is what the finished steps left, plus the change step run once
        assert (workspace / "docs" / "notes.md").read_text() == "notes\nfixed\n"
        assert os.readlink(workspace / "NOTES") == "docs/notes.md"
        assert (workspace / "docs").stat().st_mode & 0o777 == 0o750
        assert not (workspace / "half.txt").exists()
        changes = [a for a in store.attempts(child_id) if a.step_id == "change"]
        assert [a.status for a in changes] == [AttemptStatus.INTERRUPTED, AttemptStatus.SUCCEEDED]
    finally:
        store.close()
    # the forge: the same tree as the uninterrupted child, one pull request and one comment each
    assert repo.git("rev-parse", "fix/issue-1^{tree}") == repo.git("rev-parse", "fix/issue-2^{tree}")
    assert repo.git("show", "fix/issue-1:calc.py") == "def add(a, b):\n    return a + b\n"
    assert repo.git("rev-list", "--count", "main..fix/issue-1") == "1\n"
    assert sorted(pull["head"]["ref"] for pull in repo.pulls.values()) == ["fix/issue-1", "fix/issue-2"]
    bodies = sorted(comment["body"].split(" ")[0] for comment in repo.comments.values())
    assert bodies == ["Opened", "Opened"], json.dumps(list(repo.comments.values()))[:2000]
    assert github.count("POST", r"/pulls$") == 2


GATED = """\
version: 1
name: gated-on-workers
steps:
  - id: before
    sandbox: {network: none}
    run: mkdir -p out && echo before > out/a.txt
  - id: gate
    uses: wait/approval
  - id: after
    sandbox: {network: none}
    run: cat out/a.txt > out/b.txt && echo after >> out/b.txt
"""


def test_an_approval_continues_a_workers_run_on_another_worker(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flush_broker()
    monkeypatch.setenv("PIPE_BROKER_URL", broker())
    state = tmp_path / "state"
    path = write_pipeline(tmp_path, GATED, "gated.yml")
    with workers(tmp_path, state, count=1, work_dirs=True):
        waited = cli("submit", str(path), "--wait", "--state-dir", str(state))
        assert waited.code == 3, waited.out + waited.err  # waiting at the gate
    run_id = waited.out.splitlines()[0]
    first = Store(state).run(run_id)
    assert first.status == RunStatus.WAITING and Path(first.workspace).is_relative_to(tmp_path / "w1")
    with workers(tmp_path / "later", state, count=1, work_dirs=True):  # the first worker is gone
        make_app(broker()).send_task("pipe.execute_run", args=[run_id], queue="pipe")  # before any decision
        log = tmp_path / "later" / "w1.log"
        deadline = time.monotonic() + 30
        while f"run {run_id}: not run" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.3)
        assert Store(state).run(run_id).workspace == first.workspace  # an undecided wait point stays put
        approved = cli("approve", run_id, "--state-dir", str(state))
        assert approved.code == 0, approved.out + approved.err
    assert f"run {run_id} succeeded" in approved.out
    store = Store(state)
    try:
        record = store.run(run_id)
        assert record.status == RunStatus.SUCCEEDED and record.worker != first.worker
        workspace = Path(record.workspace)
        assert workspace.is_relative_to(tmp_path / "later" / "w1")
        assert (workspace / "out" / "b.txt").read_text() == "before\nafter\n"
        (adopted,) = [e for e in store.events(run_id) if e.kind == EventKind.RUN_ADOPTED.value]
        assert adopted.data["worker"] == first.worker and adopted.data["previous"] == first.workspace
        assert len([a for a in store.attempts(run_id) if a.step_id == "before"]) == 1  # not run again
    finally:
        store.close()


QUICK = """\
version: 1
name: never-enqueued
steps:
  - id: say
    sandbox: {network: none}
    run: echo found
"""


def test_a_run_whose_submitter_died_before_enqueueing_it_still_runs_on_its_queue(tmp_path: Path) -> None:
    """The run was submitted to queue `side`: the worker that finds it (consuming only the
    default queue) enqueues it there, and the worker consuming `side` (which does not look
    itself) executes it."""
    from runner.pipeline.spec import load_pipeline
    from runner.workers.submit import create_pending

    flush_broker()
    state = tmp_path / "state"
    path = write_pipeline(tmp_path, QUICK, "quick.yml")
    store = Store(state)
    try:  # `pipe submit --queue side`'s first half only: the run is created pending, its task never sent
        pipeline = load_pipeline(path)
        run_id = create_pending(store, pipeline, {}, forge=None, publish=True, default_image=None, queue="side")
    finally:
        store.close()
    looks: tuple[list[str], dict[str, str]] = ([], {"PIPE_ORPHAN_CHECK_INTERVAL": "1", "PIPE_STALE_PENDING": "3"})
    side: tuple[list[str], dict[str, str]] = (["side"], {"PIPE_ORPHAN_CHECK_INTERVAL": "0"})
    with workers(tmp_path, state, count=2, each=[looks, side]) as started:
        deadline = time.monotonic() + 90
        while not Store(state).run(run_id).status.finished:
            assert time.monotonic() < deadline, "the pending run was never executed"
            time.sleep(0.5)
    store = Store(state)
    try:
        record = store.run(run_id)
        assert record.status == RunStatus.SUCCEEDED and record.queue == "side"
        assert record.worker is not None and record.worker.startswith(f"pipe.{started[1].pid}@")
        assert sum(1 for e in store.events(run_id) if e.kind == EventKind.RUN_STARTED.value) == 1
    finally:
        store.close()
