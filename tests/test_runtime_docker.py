"""The container runtime (issue 21): `auto` takes crun when the engine offers it, a name is checked
against what the engine offers, the one used is recorded per attempt and shown by `pipe show`; and
a sandbox that ends by itself is not killed, while one that lies about its end still is."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.store import RunRecord, Store
from sandbox.docker import DockerBackend
from tests.support.cli import Cli, CliResult
from tests.support.pipelines import containers_left, write_pipeline

pytestmark = pytest.mark.docker


def offered() -> frozenset[str]:
    backend = DockerBackend()
    try:
        return backend.runtimes()[0]
    finally:
        backend.close()


def run(cli: Cli, tmp_path: Path, text: str, *args: str) -> tuple[CliResult, Store, RunRecord]:
    path = write_pipeline(tmp_path, text)
    result = cli("run", str(path), "--state-dir", str(tmp_path / "state"), *args)
    store = Store(tmp_path / "state")
    return result, store, store.run("latest")


def test_auto_takes_crun_when_offered_and_records_it(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PIPE_SANDBOX_RUNTIME", raising=False)
    result, store, record = run(
        cli, tmp_path, "version: 1\nname: rt\nsteps:\n  - id: one\n    run: 'true'\n  - id: two\n    run: 'true'\n"
    )
    assert result.code == 0, result.out + result.err
    expected = "crun" if "crun" in offered() else DockerBackend().runtimes()[1]
    assert [a.runtime for a in store.attempts(record.id)] == [expected, expected]
    shown = cli("show", record.id, "--state-dir", str(tmp_path / "state"))
    assert f"runtime {expected}" in shown.out


def test_a_named_runtime_and_the_person_default(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPE_SANDBOX_RUNTIME", "runc")
    result, store, record = run(cli, tmp_path, "version: 1\nname: rt\nsteps:\n  - id: one\n    run: 'true'\n")
    assert result.code == 0, result.out + result.err
    assert [a.runtime for a in store.attempts(record.id)] == ["runc"]


def test_a_runtime_the_engine_does_not_offer_is_a_clear_error(cli: Cli, tmp_path: Path) -> None:
    if "runsc" in offered():
        pytest.skip("this engine offers runsc")
    result, store, record = run(
        cli, tmp_path, "version: 1\nname: rt\nsandbox: {runtime: runsc}\nsteps:\n  - id: one\n    run: 'true'\n"
    )
    assert result.code == 1
    assert record.error is not None
    assert record.error.startswith("sandbox.runtime: the Docker engine does not offer runtime 'runsc' (it offers ")
    assert store.attempts(record.id) == []  # refused before the first step


def test_a_sandbox_that_reports_early_is_still_stopped(cli: Cli, tmp_path: Path) -> None:
    """A step that writes a result itself and keeps running must not outlive its step: the
    container did not end by itself, so it is killed before the next step starts."""
    result, _, record = run(
        cli,
        tmp_path,
        """\
        version: 1
        name: liar
        sandbox: {network: none}
        steps:
          - id: liar
            run: |
              (while :; do echo tick >> ticks; sleep 0.02; done) </dev/null >/dev/null 2>&1 &
              sleep 0.1
              printf '0\\n' > /run/pipe/result
              sleep 5
          - id: after
            run: |
              before=$(wc -l < ticks); sleep 1; after=$(wc -l < ticks)
              echo "ticks $before $after"; test "$before" = "$after"
        """,
    )
    assert result.code == 0, result.out + result.err
    assert containers_left("pipe.run", record.id) == []
