"""Attacks on change recording and child runs: a secret a step writes into a workspace file must not
reach the state directory unmasked, a file over 256 MiB must be recorded (and rolled back), and a
child run gets its parent's secrets without them showing in any process's argv or its stored inputs."""

from __future__ import annotations

import base64
import contextlib
import os
import resource
import threading
from pathlib import Path

import pytest

from runner.changes.rollback import fits_masked
from runner.masking import ByteMasker, Masker
from runner.store import Store
from tests.support.cli import Cli
from tests.support.leaks import forms, leaks
from tests.support.pipelines import write_pipeline

pytestmark = pytest.mark.docker

SECRET = "s3cr3t-Value-9f8e7d6c"


def secret_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "secrets.env"
    path.write_text(text)
    path.chmod(0o600)
    return path


LEAK = """\
version: 1
name: leak
secrets: {MYSECRET: {required: true}}
sandbox: {network: none}
steps:
  - id: leak
    env: {MYSECRET: "{{ secrets.MYSECRET }}"}
    run: |
      echo "$MYSECRET" > leak.txt
      printf '%s' "$MYSECRET" | base64 > leak64.txt
      echo "token=$MYSECRET" >> notes.txt
"""


def test_a_secret_written_to_a_workspace_file_never_reaches_the_state_dir(cli: Cli, tmp_path: Path) -> None:
    pipeline = write_pipeline(tmp_path, LEAK)
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "notes.txt").write_text("kept\n")
    state = ["--state-dir", str(tmp_path / "state")]
    secrets = secret_file(tmp_path, f"MYSECRET={SECRET}\n")
    result = cli("run", str(pipeline), "--secret-file", str(secrets), "--workspace", str(workspace), *state)
    assert result.code == 0, result.out + result.err
    assert SECRET in (workspace / "leak.txt").read_text(), "the step did write it"
    run_id = Store(tmp_path / "state").run("latest").id

    assert leaks(tmp_path / "state", SECRET) == []
    shown = cli("show", run_id, "--changes", *state)
    assert shown.code == 0, shown.err
    assert "      +***" in shown.out
    assert "      +token=***" in shown.out
    assert SECRET not in shown.out and "secret masked" in shown.out

    rollback = cli("rollback", run_id, "--hard", *state)
    assert rollback.code == 0, rollback.out + rollback.err
    assert sorted(p.name for p in workspace.iterdir()) == ["notes.txt"]
    assert (workspace / "notes.txt").read_text() == "kept\n"
    assert leaks(tmp_path / "state", SECRET) == []


def test_a_file_over_256_mib_is_recorded_and_rolled_back_in_bounded_memory(cli: Cli, tmp_path: Path) -> None:
    pipeline = write_pipeline(
        tmp_path,
        """\
        version: 1
        name: big
        sandbox: {network: none}
        steps:
          - id: big
            run: truncate -s 300M big.bin && printf end >> big.bin
        """,
    )
    workspace = tmp_path / "ws"
    workspace.mkdir()
    state = ["--state-dir", str(tmp_path / "state")]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = cli("run", str(pipeline), "--workspace", str(workspace), *state)
    assert result.code == 0, result.out + result.err
    assert (workspace / "big.bin").stat().st_size == 300 * 1024 * 1024 + 3
    run_id = Store(tmp_path / "state").run("latest").id
    shown = cli("show", run_id, "--changes", *state)
    assert f"file_create big.bin: created file 644, {300 * 1024 * 1024 + 3} bytes" in shown.out

    rollback = cli("rollback", run_id, "--hard", *state)
    assert rollback.code == 0, rollback.out + rollback.err
    assert list(workspace.iterdir()) == []
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 100 * 1024, f"recording took {grown_kib} KiB more memory"


CHILD = """\
version: 1
name: child
inputs: {token: {type: string, required: true}}
secrets: {TOKEN: {required: true}}
sandbox: {network: none}
steps:
  - id: echo
    env: {TOKEN: "{{ secrets.TOKEN }}"}
    run: |
      echo "env $TOKEN"
      echo "input {{ inputs.token }}"
      sleep 2
"""

PARENT = """\
version: 1
name: parent
secrets: {TOKEN: {required: true}}
sandbox: {network: none}
steps:
  - id: children
    uses: pipeline
    with:
      pipeline: child.yml
      inputs: {token: "{{ secrets.TOKEN }}"}
"""


def _argv_watcher(seen: list[bytes], stop: threading.Event) -> None:
    """Collect the command line of every process until `stop` is set."""
    while not stop.is_set():
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    seen.append(Path(entry.path, "cmdline").read_bytes())
        stop.wait(0.05)


def test_a_child_run_gets_the_parents_secrets_never_through_argv_or_stored_inputs(cli: Cli, tmp_path: Path) -> None:
    write_pipeline(tmp_path, CHILD, "child.yml")
    parent = write_pipeline(tmp_path, PARENT, "parent.yml")
    secrets = secret_file(tmp_path, f"TOKEN={SECRET}\n")
    seen: list[bytes] = []
    stop = threading.Event()
    watcher = threading.Thread(target=_argv_watcher, args=(seen, stop), daemon=True)
    watcher.start()
    try:
        result = cli("run", str(parent), "--secret-file", str(secrets), "--state-dir", str(tmp_path / "state"))
    finally:
        stop.set()
        watcher.join()
    assert result.code == 0, result.out + result.err
    store = Store(tmp_path / "state")
    parent_run = next(r for r in store.runs() if r.parent_id is None)
    (child,) = store.children(parent_run.id)
    assert child.status == "succeeded"
    assert child.inputs == {"token": "***"}
    logs = "".join(p.read_text() for p in (tmp_path / "state" / "runs" / child.id / "logs").iterdir())
    assert "env ***" in logs and "input ***" in logs
    assert any(b"--parent" in argv for argv in seen), "the watcher saw the child process"
    assert [argv for argv in seen if any(form in argv for form in forms(SECRET))] == []
    assert leaks(tmp_path / "state", SECRET) == []


def test_a_file_whose_earlier_content_held_a_secret_is_not_restored_and_edits_are_seen(
    cli: Cli, tmp_path: Path
) -> None:
    text = (
        LEAK
        + """\
  - id: rewrite
    run: echo clean > leak.txt
"""
    )
    pipeline = write_pipeline(tmp_path, text)
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "notes.txt").write_text("kept\n")
    state = ["--state-dir", str(tmp_path / "state")]
    secrets = secret_file(tmp_path, f"MYSECRET={SECRET}\n")
    result = cli("run", str(pipeline), "--secret-file", str(secrets), "--workspace", str(workspace), *state)
    assert result.code == 0, result.out + result.err
    run_id = Store(tmp_path / "state").run("latest").id
    assert leaks(tmp_path / "state", SECRET) == []

    refused = cli("rollback", run_id, "--hard", *state)
    assert refused.code == 1
    assert refused.err.startswith(
        "rollback stopped: cannot restore leak.txt: its recorded content held a secret, so only a masked copy"
        " was kept; put it back by hand (0 change(s) were undone before it)"
    ), refused.err
    assert (workspace / "leak.txt").read_text() == "clean\n", "nothing was overwritten"

    (workspace / "leak.txt").write_text(f"{SECRET}\n")  # as the leak step left it: the rest is undone
    undone = cli("rollback", run_id, "--hard", *state)
    assert undone.code == 0, undone.out + undone.err
    assert sorted(p.name for p in workspace.iterdir()) == ["notes.txt"]

    again = write_pipeline(tmp_path / "again", LEAK)
    result = cli("run", str(again), "--secret-file", str(secrets), "--workspace", str(workspace), *state)
    run_id = Store(tmp_path / "state").run("latest").id
    (workspace / "notes.txt").write_text("kept\ntoken=not-the-secret\n")  # same size, other text
    conflict = cli("rollback", run_id, "--hard", *state)
    assert conflict.code == 1
    assert (
        "rollback stopped at file_modify notes.txt (step 'leak'): expected a file (644, sha256 masked-" in conflict.err
    )


def test_masking_a_stream_in_chunks_equals_masking_it_whole() -> None:
    masker = Masker([SECRET, "pässwört-1"])
    data = (b"x" * 999 + SECRET.encode() + "pässwört-1".encode() + base64.b64encode(b"ab " + SECRET.encode())) * 40
    pattern = masker.byte_pattern()
    assert pattern is not None
    whole = pattern.sub(b"***", data)
    for size in (1, 2, 7, 64, 1000, 1 << 20):
        stream = ByteMasker(masker)
        pieces = [stream.feed(data[i : i + size]) for i in range(0, len(data), size)]
        assert b"".join(pieces) + stream.flush() == whole, size
        assert stream.masked


def test_a_masked_copy_fits_only_content_that_differs_inside_the_secrets() -> None:
    assert fits_masked(b"a SECRET b\n", b"a *** b\n")
    assert fits_masked(b"S1 and S2", b"*** and ***")
    assert not fits_masked(b"a SECRET c\n", b"a *** b\n")
    assert not fits_masked(b"a  b\n", b"a *** b\n")
    assert fits_masked(b"same", b"same") and not fits_masked(b"other", b"same")
