"""Change recording reads a file's data, never its holes, and caps what one attempt records: a file
over the cap fails the step, is still recorded by its metadata, and rollback removes it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runner.changes.objects import ObjectStore, hash_blocks, nonzero_blocks
from runner.changes.recording import Recorder
from runner.changes.rollback import RollbackConflict, Undoer, plan_rollback
from runner.changes.snapshot import Workspace
from runner.store import Store
from tests.support.cli import Cli
from tests.support.pipelines import write_pipeline
from tests.test_changes_docker import state

MIB = 1 << 20
SPARSE = """\
version: 1
name: sparse
sandbox: {network: none}
steps:
  - id: sparse
    timeout: 60s
    run: |
      truncate -s 8G big
      head -c 1048576 /dev/urandom | dd of=big bs=1M seek=4096 conv=notrunc status=none
"""
DENSE = """\
version: 1
name: dense
sandbox: {network: none}
steps:
  - id: dense
    run: head -c 6291456 /dev/urandom > big.bin
"""


def run(cli: Cli, tmp_path: Path, text: str, workspace: Path) -> tuple[str, Store]:
    """Run a pipeline through the CLI (no reporter reading the workspace); (run id, store)."""
    cli("run", str(write_pipeline(tmp_path, text)), "--workspace", str(workspace), *state(tmp_path))
    store = Store(tmp_path / "state")
    [record] = store.runs()
    return record.id, store


def allocated(root: Path) -> int:
    return sum(p.lstat().st_blocks * 512 for p in root.rglob("*") if p.is_file())


@pytest.mark.docker
def test_a_sparse_file_is_recorded_by_its_data_and_rollback_removes_it(cli: Cli, tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    run_id, store = run(cli, tmp_path, SPARSE, workspace)
    assert store.run(run_id).status == "succeeded"
    assert (workspace / "big").stat().st_size == 8 << 30
    assert allocated(tmp_path / "state" / "objects") < 8 * MIB, "the holes were stored as data"
    result = cli("rollback", run_id, "--hard", *state(tmp_path))
    assert result.code == 0, result.out + result.err
    assert not (workspace / "big").exists()


@pytest.mark.docker
def test_a_file_over_the_cap_fails_the_step_and_rollback_removes_it(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIPE_MAX_RECORD", "4M")
    workspace = tmp_path / "ws"
    workspace.mkdir()
    run_id, store = run(cli, tmp_path, DENSE, workspace)
    assert store.run(run_id).status == "failed"
    [attempt] = store.attempts(run_id)
    assert attempt.error == (
        "big.bin holds 6 MiB of data, more than pipe records for rollback (4 MiB);"
        " remove it in the same step or raise PIPE_MAX_RECORD"
    )
    assert allocated(tmp_path / "state" / "objects") < MIB, "content over the cap was kept"
    shown = cli("show", run_id, "--changes", *state(tmp_path))
    assert "file_create big.bin" in shown.out
    result = cli("rollback", run_id, "--hard", *state(tmp_path))
    assert result.code == 0, result.out + result.err
    assert not (workspace / "big.bin").exists()


def _recorder(tmp_path: Path, workspace: Path) -> tuple[Store, ObjectStore, Recorder]:
    store = Store(tmp_path / "state")
    objects = ObjectStore(tmp_path / "state" / "objects")
    run_id = store.create_run(store.add_pipeline("t", "t.yml", "d", ""), {})
    return store, objects, Recorder(store, objects, Workspace(workspace), run_id)


def test_the_digest_depends_on_the_bytes_not_on_where_the_holes_are(tmp_path: Path) -> None:
    holes, zeros = tmp_path / "holes", tmp_path / "zeros"
    with open(holes, "wb") as stream:
        stream.truncate(4 * MIB)
        stream.seek(MIB + 5)
        stream.write(b"data")
    zeros.write_bytes(bytes(MIB + 5) + b"data" + bytes(3 * MIB - 9))
    digests = set()
    for path in (holes, zeros):
        descriptor = os.open(path, os.O_RDONLY)
        try:
            digests.add(hash_blocks(nonzero_blocks(descriptor, 4 * MIB), 4 * MIB))
        finally:
            os.close(descriptor)
    assert len(digests) == 1


def test_rollback_puts_a_sparse_file_back_sparse(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    sparse = workspace / "sparse"
    data = os.urandom(MIB)
    with open(sparse, "wb") as stream:
        stream.truncate(8 << 30)
        stream.seek(4 << 30)
        stream.write(data)
    store, objects, recorder = _recorder(tmp_path, workspace)
    recorder.baseline()
    with open(sparse, "r+b") as stream:
        stream.seek(2 << 30)
        stream.write(b"changed")
    recorder.record("modify", 0, 1)
    assert recorder.refused is None
    Undoer(store, objects, Workspace(workspace)).apply(plan_rollback(store, recorder.run_id, "hard"))
    assert sparse.stat().st_size == 8 << 30
    assert sparse.stat().st_blocks * 512 < 8 * MIB, "the holes were written as zeros"
    with open(sparse, "rb") as stream:
        stream.seek(2 << 30)
        assert stream.read(7) == bytes(7)
        stream.seek(4 << 30)
        assert stream.read(MIB) == data


def test_a_modified_file_over_the_cap_is_not_put_back_but_said_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIPE_MAX_RECORD", "4M")
    workspace = tmp_path / "ws"
    workspace.mkdir()
    store, objects, recorder = _recorder(tmp_path, workspace)
    recorder.baseline()
    big = workspace / "big.bin"
    big.write_bytes(os.urandom(6 * MIB))
    recorder.record("create", 0, 1)
    assert recorder.refused is not None and recorder.refused.startswith("big.bin holds 6 MiB of data")
    big.write_bytes(os.urandom(5 * MIB))
    recorder.record("modify", 0, 1)
    assert recorder.refused is not None
    with pytest.raises(RollbackConflict, match=r"cannot restore big\.bin: it held more data than pipe records"):
        Undoer(store, objects, Workspace(workspace)).apply(plan_rollback(store, recorder.run_id, "hard"))
    assert big.stat().st_size == 5 * MIB, "refused, and left as it was"
