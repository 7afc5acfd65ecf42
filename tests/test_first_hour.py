"""Issue 16, the first hour: every shipped pipeline plans with readable placeholders, shipped
pipelines are found by name from anywhere (a local file wins, and pipe says which it took), and
`pipe pipelines` lists them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import Cli

REPO = Path(__file__).resolve().parent.parent
SHIPPED = sorted(p.stem for p in (REPO / "pipelines").glob("*.yml"))
# The inputs each shipped pipeline requires, for its dry run.
REQUIRED = {"bug-triage": ["issue=1"], "issue-to-pr": ["issue=1"], "milestone": ["milestone=v1"],
            "pr-feedback": ["pr=2"], "pr-review": ["pr=2"], "spec": ["idea=a todo app"]}  # fmt: skip


@pytest.mark.parametrize("name", SHIPPED)
def test_dry_run_renders_every_shipped_pipeline(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    monkeypatch.chdir(tmp_path)
    args = [item for assignment in REQUIRED.get(name, []) for item in ("-i", assignment)]
    result = cli("run", str(REPO / "pipelines" / f"{name}.yml"), "--dry-run", *args)
    assert result.code == 0, result.err
    assert "bug in pipe" not in result.err
    assert not re.search(r"object at 0x", result.out), result.out
    assert "cannot render yet" not in result.out, result.out


def test_placeholders_name_the_value_they_stand_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli) -> None:
    monkeypatch.chdir(tmp_path)
    result = cli("run", "issue-to-pr", "--dry-run", "-i", "issue=7")
    assert result.code == 0, result.err
    assert "<steps.issue.outputs.title> (#7)" in result.out
    assert "<steps.verify.outputs.markdown>" in result.out


def test_a_shipped_pipeline_runs_by_name_from_an_empty_directory(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "runner", "run", "issue-to-pr", "--dry-run", "-i", "issue=1"],
        cwd=empty,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("pipeline issue-to-pr (")
    assert "pipe: using the pipeline issue-to-pr shipped with pipe (" in result.stderr
    assert list(empty.iterdir()) == []  # a dry run leaves nothing behind


def test_a_local_file_of_the_same_name_wins_and_pipe_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("issue-to-pr.yml").write_text("version: 1\nname: mine\nsteps:\n  - id: a\n    run: echo mine\n")
    result = cli("run", "issue-to-pr", "--dry-run")
    assert result.code == 0, result.err
    assert result.out.startswith("pipeline mine (issue-to-pr.yml)")
    assert result.err == "pipe: using the local file issue-to-pr.yml, not the pipeline issue-to-pr shipped with pipe\n"


def test_an_unknown_name_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli) -> None:
    monkeypatch.chdir(tmp_path)
    result = cli("run", "no-such-pipeline", "--dry-run")
    assert result.code == 2
    assert result.err.startswith("no-such-pipeline: cannot read: ")


def test_pipe_pipelines_lists_the_shipped_ones(cli: Cli) -> None:
    result = cli("pipelines")
    assert result.code == 0, result.err
    assert "issue-to-pr    Turn an issue into a tested draft pull request with a coding agent." in result.out
    names = [line.split()[0] for line in result.out.splitlines() if line and not line.startswith(" ")]
    assert names[: len(SHIPPED)] == SHIPPED


def _example_with_caches(tmp_path: Path) -> Path:
    """A copy of the shipped pipelines whose example holds what `pip install .` and pytest leave."""
    import shutil

    shipped = tmp_path / "shipped"
    shutil.copytree(REPO / "pipelines", shipped)
    package = shipped / "example" / "repo" / "wordcount"
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "__init__.cpython-311.pyc").write_bytes(b"\x00compiled")
    (shipped / "example" / "repo" / ".pytest_cache").mkdir()
    (shipped / "example" / "repo" / ".pytest_cache" / "README.md").write_text("cache")
    return shipped


def _tree(git_dir: Path, ref: str = "main") -> list[str]:
    result = subprocess.run(
        ["git", "--git-dir", str(git_dir), "ls-tree", "-r", "--name-only", ref],
        capture_output=True, text=True, check=True, env={"PATH": "/usr/bin:/bin", "GIT_CONFIG_NOSYSTEM": "1"},
    )  # fmt: skip
    return result.stdout.splitlines()


def test_demo_commits_a_clean_example_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from runner.commands import demo

    shipped = _example_with_caches(tmp_path)
    monkeypatch.setattr(demo, "data_path", lambda name: shipped if name == "pipelines" else REPO / name)
    demo.make_forge(tmp_path / "forge")
    files = _tree(tmp_path / "forge" / "repo.git")
    assert ".gitignore" in files
    assert not [f for f in files if "__pycache__" in f or f.endswith(".pyc") or ".pytest_cache" in f], files
    assert "wordcount/__init__.py" in files


def test_demo_reset_starts_from_a_fresh_forge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli) -> None:
    from runner.commands import demo

    state = tmp_path / "state"
    calls: list[str] = []

    def fake_run(file: str, assignments: list[str], **options: object) -> int:
        calls.append(file)
        return 1  # no Docker here: the forge is what this test looks at

    monkeypatch.setattr(demo, "run_pipeline", fake_run)
    assert cli("demo", "--state-dir", str(state)).code == 1
    forge = state / "demo" / "forge"
    env = {"PATH": "/usr/bin:/bin", "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null"}
    subprocess.run(["git", "--git-dir", str(forge / "repo.git"), "branch", "fix/issue-1", "main"], check=True, env=env)
    from runner.forges.local import LocalForge

    records = LocalForge(forge, state).records_path
    records.parent.mkdir(parents=True, exist_ok=True)
    records.write_text('{"pulls": [{"number": 1}]}')
    assert cli("demo", "--state-dir", str(state)).code == 1
    assert (
        "fix/issue-1"
        in subprocess.run(
            ["git", "--git-dir", str(forge / "repo.git"), "branch"], capture_output=True, text=True, env=env, check=True
        ).stdout
    )  # without --reset the demo continues
    result = cli("demo", "--reset", "--state-dir", str(state))
    assert result.code == 1, result.err
    branches = subprocess.run(
        ["git", "--git-dir", str(forge / "repo.git"), "branch"], capture_output=True, text=True, env=env, check=True
    ).stdout
    assert "fix/issue-1" not in branches and "main" in branches
    assert not list((state / "forges").glob("*/records.json"))
    assert len(calls) == 3


def test_a_failed_run_ends_with_the_next_commands_to_try() -> None:
    import io

    from runner.reporters.console import PlainReporter

    stream = io.StringIO()
    console = PlainReporter(stream)
    steps = [
        {"step": "build", "outcome": "success", "conclusion": "success", "attempts": 1, "duration": 1.0},
        {"step": "test", "outcome": "failure", "conclusion": "failure", "attempts": 1, "duration": 2.0},
    ]
    console.event("run_finished", {"run": "r1a2b3", "status": "failed", "error": "test failed", "steps": steps})
    text = stream.getvalue()
    assert "pipe logs r1a2b3 test" in text
    assert "pipe resume r1a2b3" in text
    assert "pipe rollback r1a2b3 --dry-run" in text
    succeeded = io.StringIO()
    PlainReporter(succeeded).event("run_finished", {"run": "r1", "status": "succeeded", "steps": steps[:1]})
    assert "pipe resume" not in succeeded.getvalue()
