"""verify against real projects in real sandboxes: results of any size read from files (never a
false pass), missing tools, unreadable results, the project's own setup, and output kept in logs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.store import Store
from tests.support.cli import Cli, CliResult
from tests.support.pipelines import write_pipeline

pytestmark = pytest.mark.docker

VERIFY = """
version: 1
name: verify
sandbox: {{network: {network}}}
steps:
  - id: verify
    uses: verify
    with:
      mode: {mode}
      setup: "{setup}"
      checks: {checks}
"""


def run_verify(
    cli: Cli,
    tmp_path: Path,
    files: dict[str, str],
    *,
    mode: str = "fail-fast",
    setup: str = "",
    checks: str = "[{run: auto}]",
    network: str = "none",
    extra: tuple[str, ...] = (),
) -> tuple[CliResult, dict[str, str]]:
    workspace = tmp_path / "workspace"
    for name, text in files.items():
        (workspace / name).parent.mkdir(parents=True, exist_ok=True)
        (workspace / name).write_text(text)
    pipeline = write_pipeline(tmp_path, VERIFY.format(mode=mode, setup=setup, checks=checks, network=network))
    state = tmp_path / "state"
    result = cli("run", str(pipeline), "--workspace", str(workspace), "--state-dir", str(state), *extra)
    store = Store(state)
    record = store.run("latest")
    (step,) = [s for s in store.steps(record.id) if s.step_id == "verify"]
    return result, step.outputs


BIG_SUITE = """
import pytest

@pytest.mark.parametrize("n", range(15000))
def test_many(n):
    assert n != 4321
"""


def test_a_failing_suite_of_15000_tests_is_reported_failed_and_fails_the_step(cli: Cli, tmp_path: Path) -> None:
    # The JUnit report is several MiB: it once went through $PIPE_OUTPUT (1 MiB) and was lost, and
    # the suite was reported "skipped" with the step passing.
    result, outputs = run_verify(
        cli, tmp_path, {"pyproject.toml": "[tool.pytest.ini_options]\n", "tests/test_big.py": BIG_SUITE}
    )
    assert result.code == 1, result.out + result.err
    assert "❌ Tests: 1 failed, 14999 passed" in outputs["markdown"]
    assert json.loads(outputs["tests_counts"]) == {"passed": 14999, "failed": 1, "errors": 0, "skipped": 0}
    assert outputs["ok"] == "false"


def test_a_passing_suite_and_a_missing_linter(cli: Cli, tmp_path: Path) -> None:
    result, outputs = run_verify(
        cli,
        tmp_path,
        {
            "pyproject.toml": "[tool.ruff]\nline-length = 100\n[tool.pytest.ini_options]\n",
            "tests/test_ok.py": "def test_a():\n    pass\n\ndef test_b():\n    pass\n",
        },
    )
    assert result.code == 0, result.out + result.err
    assert outputs["markdown"].splitlines()[1:] == ["✅ Tests: 2 passed, 0 failed", "⚠️ Lint: ruff not installed"]
    assert outputs["ok"] == "true"


def test_a_missing_linter_made_required_fails(cli: Cli, tmp_path: Path) -> None:
    result, outputs = run_verify(
        cli,
        tmp_path,
        {"pyproject.toml": "[tool.ruff]\n"},
        checks="[{run: auto, kind: lint, missing: fail}]",
    )
    assert result.code == 1
    assert "⚠️ Lint: ruff not installed" in outputs["markdown"]
    assert outputs["ok"] == "false"


def test_results_that_cannot_be_read_are_a_failure_never_a_pass(cli: Cli, tmp_path: Path) -> None:
    # The command passes but replaces its JUnit report by a symlink to a host file: the host must
    # not follow it, and must not report the check as passed or skipped.
    command = 'ln -sf /etc/passwd "$PIPE_JUNIT"; true'
    result, outputs = run_verify(cli, tmp_path, {"x": ""}, checks=f"[{{run: '{command}', kind: tests, junit: true}}]")
    assert result.code == 1, result.out
    assert "❌ Tests: not verified (could not read results: " in outputs["markdown"], outputs["markdown"]
    assert "not a regular file" in outputs["markdown"] or "junit-0.xml" in outputs["markdown"]


def test_malformed_junit_is_a_failure(cli: Cli, tmp_path: Path) -> None:
    command = "printf '<testsuite><testcase' > $PIPE_JUNIT"
    result, outputs = run_verify(cli, tmp_path, {"x": ""}, checks=f'[{{run: "{command}", kind: tests, junit: true}}]')
    assert result.code == 1
    assert "could not read results: the JUnit report is not valid XML" in outputs["markdown"]


def test_an_entity_bomb_in_junit_is_refused(cli: Cli, tmp_path: Path) -> None:
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE t [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        '<testsuite tests="1"><testcase name="&b;"/></testsuite>'
    )
    files = {"bomb.xml": bomb}
    result, outputs = run_verify(
        cli, tmp_path, files, checks="[{run: 'cp bomb.xml $PIPE_JUNIT', kind: tests, junit: true}]"
    )
    assert result.code == 1
    assert "could not read results" in outputs["markdown"]


def test_a_check_that_passes_with_failures_in_its_report_is_failed(cli: Cli, tmp_path: Path) -> None:
    report = '<testsuite><testcase name="a"/><testcase name="b"><failure/></testcase></testsuite>'
    result, outputs = run_verify(
        cli, tmp_path, {"r.xml": report}, checks="[{run: 'cp r.xml $PIPE_JUNIT', kind: tests}]"
    )
    assert result.code == 1
    assert "❌ Tests: 1 failed, 1 passed" in outputs["markdown"]


def test_fail_fast_skips_the_rest_and_continue_runs_all(cli: Cli, tmp_path: Path) -> None:
    checks = "[{run: 'exit 3', kind: tests}, {run: 'echo fine', kind: lint}]"
    result, outputs = run_verify(cli, tmp_path, {"x": ""}, checks=checks)
    assert result.code == 1
    assert outputs["markdown"].splitlines()[1:] == ["❌ Tests: failed (exit code 3)", "⏭️ Lint: skipped"]
    result, outputs = run_verify(cli, tmp_path / "2", {"x": ""}, checks=checks, mode="continue-on-error")
    assert outputs["markdown"].splitlines()[1:] == ["❌ Tests: failed (exit code 3)", "✅ Lint: passed"]


def test_a_failing_setup_fails_and_skips_the_checks(cli: Cli, tmp_path: Path) -> None:
    result, outputs = run_verify(cli, tmp_path, {"x": ""}, setup="echo one; false; echo two", checks="[{run: 'true'}]")
    assert result.code == 1
    assert outputs["markdown"].splitlines()[1:] == [
        "❌ Setup: failed (exit code 1)",
        "⏭️ Check (check1): skipped (setup failed)",
    ]


def test_the_workspace_code_shadows_the_image_and_setup_exports_persist(cli: Cli, tmp_path: Path) -> None:
    # A src-layout project whose package the image also holds (Debian's more_itertools 8.10): the
    # tests must import the workspace's.
    files = {
        "pyproject.toml": '[project]\nname = "shadowed"\nversion = "1"\n[tool.pytest.ini_options]\n',
        "src/more_itertools/__init__.py": "WHERE = 'workspace'\n",
        "tests/test_where.py": "import more_itertools as m\n\ndef test_where():\n    assert m.WHERE == 'workspace'\n",
    }
    result, outputs = run_verify(cli, tmp_path, files, setup="auto")
    assert result.code == 0, result.out + result.err
    assert "✅ Tests: 1 passed, 0 failed" in outputs["markdown"]
    assert not (tmp_path / "workspace" / "node_modules").exists()


def test_check_output_reaches_the_logs(cli: Cli, tmp_path: Path) -> None:
    checks = "[{run: 'for i in 1 2 3; do echo line-$i; done', kind: tests}]"
    result, _ = run_verify(cli, tmp_path, {"x": ""}, checks=checks)
    assert result.code == 0
    logs = cli("logs", "latest", "--state-dir", str(tmp_path / "state"))
    assert all(f"line-{i}" in logs.out for i in (1, 2, 3)), logs.out


def test_what_the_checks_write_into_the_workspace_is_removed_but_what_was_there_stays(cli: Cli, tmp_path: Path) -> None:
    # A coverage tool's output (nyc's coverage/ and .nyc_output/) must not end up committed in the
    # pull request; the files the project (and the agent's change) had are kept.
    command = "mkdir -p coverage .nyc_output src/gen && echo x > coverage/index.html && echo y > src/gen/z"
    checks = f"[{{run: '{command}', kind: tests}}]"
    result, _ = run_verify(cli, tmp_path, {"src/kept.py": "", "coverage/old.txt": "kept"}, checks=checks)
    assert result.code == 0, result.out + result.err
    workspace = tmp_path / "workspace"
    assert sorted(str(p.relative_to(workspace)) for p in workspace.rglob("*") if ".git" not in p.parts) == [
        "coverage",
        "coverage/old.txt",
        "src",
        "src/kept.py",
    ]
