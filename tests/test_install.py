"""A plain `pip install <checkout>` in a fresh virtual environment gives a working `pipe`,
run from outside the source tree: the wheel carries schemas/ and pipelines/."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_installed_wheel_validates_shipped_pipelines_outside_the_tree(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pipe = venv / "bin" / "pipe"
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(REPO)],
        check=True,
        cwd=tmp_path,
    )
    files = sorted(str(p) for p in (REPO / "pipelines").glob("*.yml"))
    validated = subprocess.run(
        [str(pipe), "validate", *files], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert validated.returncode == 0, validated.stderr
    schema = subprocess.run([str(pipe), "schema"], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert json.loads(schema.stdout)["$id"].endswith("pipeline.schema.json")
    located = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "from runner.resources import data_path; print(data_path('schemas'))"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert str(venv) in located.stdout, "the schemas must come from the installed wheel"
