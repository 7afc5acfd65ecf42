"""Issue 16, item 3: the composite action installs pipe the way Actions users expect (a pinned
actions/setup-python, then a virtual environment: no system pip, which PEP 668 refuses), the names
it suggests resolve, and action.yml and docs/workflows/ satisfy GitHub's schemas.

An `act`-driven end-to-end run is not possible here (act cannot be downloaded); README.md's "GitHub
Actions" section gives the manual check."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
ACTION = REPO / "action.yml"
WORKFLOWS = sorted((REPO / "docs" / "workflows").glob("*.yml"))
SHIPPED = {p.stem for p in (REPO / "pipelines").glob("*.yml")}


def _steps() -> list[dict[str, object]]:
    steps: list[dict[str, object]] = yaml.safe_load(ACTION.read_text())["runs"]["steps"]
    return steps


def test_python_is_set_up_by_a_pinned_setup_python() -> None:
    uses = [str(step["uses"]) for step in _steps() if "uses" in step]
    assert uses and uses[0].startswith("actions/setup-python@"), uses
    assert re.fullmatch(r"actions/setup-python@[0-9a-f]{40}", uses[0]), "pin setup-python by commit"


def test_pipe_is_installed_into_a_virtual_environment_not_the_system_python() -> None:
    scripts = "\n".join(str(step.get("run", "")) for step in _steps())
    assert "python3 -m pip install" not in scripts
    assert '-m venv "$venv"' in scripts and 'venv="$RUNNER_TEMP/pipe-venv"' in scripts
    assert "${{ github.action_path }}" not in scripts  # the action's path reaches scripts through the environment


def test_the_pipelines_the_action_and_workflows_name_are_shipped_names() -> None:
    named = re.findall(r"pipeline: (\S+)", ACTION.read_text())
    for workflow in WORKFLOWS:
        named += re.findall(r"pipeline: (\S+)", workflow.read_text())
    assert named
    assert all(name in SHIPPED for name in named), named


def _check_jsonschema(schema: str, *files: Path) -> subprocess.CompletedProcess[str]:
    try:
        import check_jsonschema  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("check-jsonschema (the lint extra) is missing")
        pytest.skip("check-jsonschema (the lint extra) is not installed")
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, *map(str, files)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip


def test_action_metadata_satisfies_githubs_schema() -> None:
    result = _check_jsonschema("vendor.github-actions", ACTION)
    assert result.returncode == 0, result.stdout + result.stderr


def test_example_workflows_satisfy_githubs_schema() -> None:
    result = _check_jsonschema("vendor.github-workflows", *WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr
