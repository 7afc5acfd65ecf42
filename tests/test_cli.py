"""The command line in-process: version, schema, dry-run plans and input errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from runner import __version__
from tests.support.cli import Cli

REPO = Path(__file__).resolve().parent.parent


def test_version(cli: Cli) -> None:
    result = cli("--version")
    assert (result.code, result.out) == (0, f"pipe, version {__version__}\n")


def test_schema_prints_json(cli: Cli) -> None:
    result = cli("schema")
    assert result.code == 0
    assert json.loads(result.out)["title"] == "pipe pipeline"


def test_shipped_pipelines_validate(cli: Cli) -> None:
    files = sorted(str(p) for p in (REPO / "pipelines").glob("*.yml"))
    assert files
    result = cli("validate", *files)
    assert result.code == 0, result.err


def test_dry_run_prints_the_rendered_plan(cli: Cli) -> None:
    result = cli("run", str(REPO / "pipelines/hello.yml"), "--dry-run", "-i", "who=Ada Lovelace", "-i", "times=2")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].startswith("pipeline hello (") and lines[0].endswith("): 3 steps, dry run")
    assert "1. greet (run): Greet Ada Lovelace" in lines
    assert "     | who='Ada Lovelace'" in lines
    assert '     |   for i in $(seq 2); do echo "Hello, $who!"; done' in lines
    assert "     | greeting='<steps.greet.outputs.greeting>'" in lines
    assert "3. report (run): report  [if: success() and steps.count.outputs.words != '0']" in lines


def test_ill_typed_and_unknown_inputs_are_exit_2(cli: Cli) -> None:
    result = cli("run", str(REPO / "pipelines/hello.yml"), "--dry-run", "-i", "times=many", "-i", "colour=red")
    assert result.code == 2
    path = str(REPO / "pipelines/hello.yml")
    assert result.err.splitlines() == [
        f"{path}: unknown input 'colour'",
        f"{path}: input 'times': 'many' is not an integer",
    ]


def test_missing_required_input_is_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli) -> None:
    monkeypatch.chdir(tmp_path)
    Path("p.yml").write_text(
        "version: 1\nname: t\ninputs:\n  issue: {type: integer, required: true}\n"
        "  mode: {enum: [fast, slow], default: fast}\nsteps:\n  - id: a\n    run: echo\n"
    )
    assert cli("run", "p.yml", "--dry-run").err.splitlines() == ["p.yml: input 'issue' is required"]
    result = cli("run", "p.yml", "--dry-run", "-i", "issue=3", "-i", "mode=medium")
    assert (result.code, result.err.splitlines()) == (2, ["p.yml: input 'mode': 'medium' is not one of 'fast', 'slow'"])
    assert cli("run", "p.yml", "--dry-run", "-i", "issue").err.splitlines() == ["--input 'issue': expected KEY=VALUE"]


def test_usage_errors_are_exit_2(cli: Cli) -> None:
    assert cli("frobnicate").code == 2
    assert cli("validate").code == 2


def test_help_and_validate_do_not_import_docker_github_or_git() -> None:
    probe = (
        "import sys\n"
        "from runner.cli import main\n"
        "for argv in (['--help'], ['validate', sys.argv[1]]):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'docker', 'github', 'git', 'rich'})\n"
        "print(heavy, file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, str(REPO / "pipelines/hello.yml")], capture_output=True, text=True, check=True
    )
    assert result.stderr.strip() == "[]"
