"""Change recording, rollback and resume for real: containers change a real git workspace, the host
records and undoes it, and kill -9 at awkward moments loses nothing."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from runner.engine import Engine, RunOptions
from runner.engine.lease import Lease
from runner.pipeline.spec import load_pipeline
from runner.store import Store
from sandbox import backend as make_backend
from tests.support.cli import Cli
from tests.support.pipelines import containers_left, write_pipeline
from tests.support.trees import TreeRecorder, fingerprint, git_repository

pytestmark = pytest.mark.docker

CHANGES = """\
version: 1
name: changes
sandbox: {network: none}
steps:
  - id: create
    run: |
      printf '#!/bin/sh\\necho hi\\n' > tool.sh && chmod 755 tool.sh
      mkdir -p new/deep && echo x > new/deep/f && ln -s tool.sh link
  - id: modify
    run: printf 'two\\n' >> a.txt && chmod 600 b.txt
  - id: delete
    run: rm -rf docs b.txt
  - id: commit
    run: git checkout -q -b feature && git add -A && git -c user.name=t -c user.email=t@e commit -qm work
  - id: fail
    run: echo partial > partial.txt; exit 1
"""


def run_engine(tmp_path: Path, text: str, workspace: Path | None = None) -> tuple[str, TreeRecorder, Store]:
    """Run a pipeline in-process with a reporter that fingerprints the workspace after each step."""
    path = write_pipeline(tmp_path, text)
    trees = TreeRecorder()
    store = Store(tmp_path / "state")
    backend = make_backend("docker")
    try:
        options = RunOptions(state_dir=tmp_path / "state", workspace=workspace)
        result = Engine(load_pipeline(path), store, backend, trees, options).run({})
    finally:
        backend.close()
    return result.run_id, trees, store


def state(tmp_path: Path) -> list[str]:
    return ["--state-dir", str(tmp_path / "state")]


def test_rollback_steps_then_hard_restore_exact_trees_and_refs(cli: Cli, tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    git_repository(workspace, {"a.txt": "one\n", "b.txt": "keep\n", "docs/d.md": "doc\n"})
    run_id, trees, _ = run_engine(tmp_path, CHANGES, workspace)
    assert (workspace / ".git/refs/heads/feature").exists()

    shown = cli("show", run_id, "--changes", *state(tmp_path))
    assert "  file_create tool.sh: created file 755, 18 bytes" in shown.out
    assert "  file_modify b.txt: mode 644 -> 600" in shown.out
    assert "      +two" in shown.out
    assert "  branch_create .git/refs/heads/feature: none -> " in shown.out

    plan = cli("rollback", run_id, "--steps", "2", "--dry-run", *state(tmp_path))
    assert plan.code == 0
    assert "the last 2 completed step(s) (delete, commit) and everything after them" in plan.out
    assert fingerprint(workspace) == trees.trees["fail"], "--dry-run must change nothing"

    result = cli("rollback", run_id, "--steps", "2", *state(tmp_path))
    assert result.code == 0, result.out + result.err
    assert fingerprint(workspace) == trees.trees["modify"]

    result = cli("rollback", run_id, "--hard", *state(tmp_path))
    assert result.code == 0, result.out + result.err
    assert fingerprint(workspace) == trees.trees["(start)"]
    assert not (workspace / ".git/refs/heads/feature").exists()


def test_rollback_to_a_step(cli: Cli, tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    git_repository(workspace, {"a.txt": "one\n", "b.txt": "keep\n", "docs/d.md": "doc\n"})
    run_id, trees, _ = run_engine(tmp_path, CHANGES, workspace)
    result = cli("rollback", run_id, "--to", "create", *state(tmp_path))
    assert result.code == 0, result.out + result.err
    assert fingerprint(workspace) == trees.trees["create"]


def test_on_failure_soft_keeps_earlier_steps_and_hard_undoes_all(tmp_path: Path) -> None:
    soft = """\
    version: 1
    name: soft
    sandbox: {network: none}
    on-failure: {rollback: soft}
    steps:
      - id: keep
        run: echo kept > kept.txt
      - id: broken
        run: echo partial > partial.txt && mkdir half && exit 3
    """
    run_id, trees, store = run_engine(tmp_path / "soft", soft)
    workspace = Path(store.run(run_id).workspace)
    assert fingerprint(workspace) == trees.trees["keep"]
    assert store.run(run_id).status == "failed"

    hard = soft.replace("rollback: soft", "rollback: hard")
    run_id, trees, store = run_engine(tmp_path / "hard", hard)
    assert fingerprint(Path(store.run(run_id).workspace)) == trees.trees["(start)"] == {}


def test_rollback_stops_at_a_state_it_did_not_record(cli: Cli, tmp_path: Path) -> None:
    text = """\
    version: 1
    name: conflict
    sandbox: {network: none}
    steps:
      - id: write
        run: echo from-step > notes.txt && echo other > other.txt
      - id: fail
        run: exit 1
    """
    run_id, _, store = run_engine(tmp_path, text)
    workspace = Path(store.run(run_id).workspace)
    (workspace / "notes.txt").write_text("edited by a person\n")
    result = cli("rollback", run_id, "--hard", *state(tmp_path))
    assert result.code == 1
    assert result.err.startswith(
        "rollback stopped at file_create notes.txt (step 'write'): expected a file (644, sha256 "
    )
    assert "found a file (644, sha256 " in result.err
    assert (workspace / "notes.txt").read_text() == "edited by a person\n"


WRITER = """\
version: 1
name: writer
sandbox: {network: none}
steps:
  - id: first
    run: echo base > base.txt
  - id: writer
    run: |
      for i in $(seq 1 30); do echo "line $i" >> out.txt; echo "$i" > "part-$i"; sleep 0.05; done
      rm part-*
      echo done >> out.txt
  - id: last
    run: wc -l < out.txt > count.txt
"""


def _wait_for(predicate: Callable[[], bool], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_kill_9_during_a_step_then_resume_equals_an_uninterrupted_run(cli: Cli, tmp_path: Path) -> None:
    reference_id, _, reference_store = run_engine(tmp_path / "reference", WRITER)
    expected = fingerprint(Path(reference_store.run(reference_id).workspace))

    path = write_pipeline(tmp_path, WRITER)
    workspace = tmp_path / "ws"
    argv = [sys.executable, "-m", "runner", "run", str(path), "--workspace", str(workspace), *state(tmp_path)]
    with subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as process:
        _wait_for((workspace / "part-5").exists)
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert (workspace / "part-5").exists(), "the step was killed while writing"

    store = Store(tmp_path / "state")
    run_id = store.run("latest").id
    assert store.run(run_id).status == "running"
    result = cli("resume", run_id, *state(tmp_path))
    assert result.code == 0, result.out + result.err
    assert fingerprint(workspace) == expected
    assert (workspace / "out.txt").read_text().count("line 1\n") == 1
    statuses: list[tuple[str, str]] = [(a.step_id, a.status) for a in store.attempts(run_id)]
    assert ("writer", "interrupted") in statuses and statuses.count(("first", "succeeded")) == 1
    if store.sqlite:  # PostgreSQL (PIPE_TEST_STORE=postgresql) keeps its own integrity
        with sqlite3.connect(tmp_path / "state" / "state.db") as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert containers_left("pipe.run", run_id) == []


def test_kill_9_during_a_rollback_then_the_same_rollback_completes(cli: Cli, tmp_path: Path) -> None:
    text = """\
    version: 1
    name: many
    sandbox: {network: none}
    steps:
      - id: many
        run: mkdir -p data && for i in $(seq 1 3000); do echo "$i" > "data/f$i"; done && echo x > top.txt
      - id: fail
        run: exit 1
    """
    run_id, trees, store = run_engine(tmp_path, text)
    workspace = Path(store.run(run_id).workspace)
    argv = [sys.executable, "-m", "runner", "rollback", run_id, "--hard", *state(tmp_path)]
    with subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as process:
        _wait_for(lambda: sum(1 for c in store.changes(run_id) if c.undone_at) > 100)
        process.send_signal(signal.SIGKILL)
        process.wait()
    pending = len(store.changes(run_id, pending_only=True))
    assert pending > 0, "the rollback was killed part way"
    result = cli("rollback", run_id, "--hard", *state(tmp_path))
    assert result.code == 0, result.out + result.err
    assert fingerprint(workspace) == trees.trees["(start)"]
    assert store.changes(run_id, pending_only=True) == []


def test_symlinks_to_host_files_are_never_read_or_written(cli: Cli, tmp_path: Path) -> None:
    host = tmp_path / "host"
    host.mkdir()
    secret = host / "secret.txt"
    marker = f"HOST-SECRET-{os.getpid()}-{time.time_ns()}"
    secret.write_text(marker)
    host_dir = tmp_path / "hostdir"
    host_dir.mkdir()
    (host_dir / "keep.txt").write_text("host file\n")
    workspace = tmp_path / "ws"
    git_repository(workspace, {"data.txt": "original data\n", "conf/app.ini": "[app]\n"})
    text = f"""\
    version: 1
    name: links
    sandbox: {{network: none}}
    steps:
      - id: swap
        run: rm data.txt && ln -s {secret} data.txt && rm -rf conf && ln -s {host_dir} conf
      - id: fail
        run: exit 1
    """
    run_id, trees, _ = run_engine(tmp_path, text, workspace)
    assert os.readlink(workspace / "data.txt") == str(secret)
    result = cli("rollback", run_id, "--hard", *state(tmp_path))
    assert result.code == 0, result.out + result.err
    assert fingerprint(workspace) == trees.trees["(start)"]
    assert (workspace / "data.txt").read_text() == "original data\n" and not (workspace / "data.txt").is_symlink()
    assert (workspace / "conf/app.ini").read_text() == "[app]\n"
    assert secret.read_text() == marker
    assert sorted(p.name for p in host_dir.iterdir()) == ["keep.txt"]
    for path in (tmp_path / "state").rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert marker.encode() not in path.read_bytes(), path


def test_hooks_and_fsmonitor_written_by_a_step_never_run_on_the_host(cli: Cli, tmp_path: Path) -> None:
    markers = [tmp_path / f"marker-{name}" for name in ("hook", "fsmonitor", "filter")]
    workspace = tmp_path / "ws"
    git_repository(workspace, {"a.txt": "one\n"})
    hooks = " ".join(
        ["pre-commit", "post-commit", "post-checkout", "pre-push", "reference-transaction", "post-index-change"]
    )
    text = f"""\
    version: 1
    name: hooks
    sandbox: {{network: none}}
    steps:
      - id: plant
        run: |
          for hook in {hooks}; do
            printf '#!/bin/sh\\ntouch {markers[0]} 2>/dev/null || true\\n' > .git/hooks/$hook
            chmod +x .git/hooks/$hook
          done
          git config core.fsmonitor "touch {markers[1]}"
          git config filter.evil.clean "touch {markers[2]}; cat"
          echo '*.txt filter=evil' > .gitattributes
      - id: commit
        run: |
          echo two >> a.txt && git -c core.fsmonitor= add -A
          git -c core.fsmonitor= -c user.name=t -c user.email=t@e commit -qm hooked
      - id: fail
        run: exit 1
    """
    run_id, _, _ = run_engine(tmp_path, text, workspace)
    assert cli("show", run_id, "--changes", *state(tmp_path)).code == 0
    assert cli("rollback", run_id, "--steps", "1", *state(tmp_path)).code == 0
    assert cli("rollback", run_id, "--hard", *state(tmp_path)).code == 0
    assert [m for m in markers if m.exists()] == []


def test_a_second_resume_of_a_run_in_use_is_refused(cli: Cli, tmp_path: Path) -> None:
    text = "version: 1\nname: busy\nsandbox: {network: none}\nsteps:\n  - id: a\n    run: exit 1\n"
    run_id, _, _ = run_engine(tmp_path, text)
    holder = Lease(tmp_path / "state", run_id)
    assert holder.acquire() is None
    try:
        result = cli("resume", run_id, *state(tmp_path))
    finally:
        holder.release()
    assert result.code == 2
    assert result.err.startswith(f"run {run_id} is in use by {holder.owner} (until ")
    assert result.err.rstrip().endswith("wait for it to finish or stop that process")
