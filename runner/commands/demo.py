"""`pipe demo`: the main job on the embedded example, with nothing but Docker.

It makes a local forge from the example shipped in pipelines/example (a small project with a real
bug, and an issue proposing the fix as a patch), then runs pipelines/issue-to-pr.yml on issue 1 with
pipe-patch-agent, which needs no model: a branch with the fix, a draft pull request record with the
verification results, and a comment on the issue. Running it again continues the same branch and
pull request.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TextIO

from runner.commands.run import run_pipeline
from runner.errors import ExitCode, PipeError
from runner.resources import data_path
from runner.statedir import StateDir

# Never part of the example: what Python, pytest and editors leave next to installed files.
CACHES = ("__pycache__", "*.pyc", "*.pyo", ".pytest_cache", ".mypy_cache", ".ruff_cache", "*.egg-info", ".venv")
GITIGNORE = "".join(f"{pattern}\n" for pattern in CACHES)


def make_forge(forge: Path) -> None:
    """The example's forge in `forge` (kept when it exists): repo.git and issues/."""
    if (forge / "repo.git" / "HEAD").exists():
        return
    example = data_path("pipelines") / "example"
    forge.mkdir(parents=True, exist_ok=True)
    shutil.copytree(example / "issues", forge / "issues", dirs_exist_ok=True, ignore=shutil.ignore_patterns(*CACHES))
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "pipe",
        "GIT_AUTHOR_EMAIL": "pipe@localhost",
        "GIT_COMMITTER_NAME": "pipe",
        "GIT_COMMITTER_EMAIL": "pipe@localhost",
    }
    with tempfile.TemporaryDirectory() as directory:
        work = Path(directory) / "wordcount"
        shutil.copytree(example / "repo", work, ignore=shutil.ignore_patterns(*CACHES))
        if not (work / ".gitignore").exists():
            (work / ".gitignore").write_text(GITIGNORE, encoding="utf-8")
        for argv in (
            ["git", "init", "-q", "-b", "main"],
            ["git", "add", "-A"],
            ["git", "commit", "-qm", "wordcount 0.1.0"],
            ["git", "clone", "-q", "--bare", str(work), str(forge / "repo.git")],
        ):
            result = subprocess.run(argv, cwd=work, env=environment, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise PipeError(f"pipe demo: {' '.join(argv[:2])} failed: {result.stderr.strip()}")


def reset_forge(forge: Path, state_dir: Path) -> None:
    """Remove the demo's forge and its records (pull requests, comments) so the next demo starts fresh."""
    from runner.forges.local import LocalForge

    if (forge / "repo.git" / "HEAD").exists():
        shutil.rmtree(LocalForge(forge, state_dir).records_path.parent, ignore_errors=True)
    shutil.rmtree(forge, ignore_errors=True)


def run_demo(state_dir: Path, out: TextIO, *, json_lines: bool = False, reset: bool = False) -> int:
    """Run issue-to-pr on the example's issue 1 (after a fresh forge with `reset`); the run's exit code."""
    forge = StateDir(state_dir).demo_forge
    if reset:
        reset_forge(forge, state_dir)
    make_forge(forge)
    code = run_pipeline(
        str(data_path("pipelines") / "issue-to-pr.yml"),
        ["issue=1"],
        dry_run=False,
        out=out,
        state_dir=state_dir,
        json_lines=json_lines,
        forge_settings={"forge": "local", "directory": str(forge)},
        trigger="demo",
    )
    if code == ExitCode.SUCCESS and not json_lines:
        records = next(StateDir(state_dir).forges.glob("*/records.json"), None)
        print(
            "\nThe fix is on branch fix/issue-1 of the example's repository:\n"
            f"  git --git-dir {forge / 'repo.git'} log --oneline -p main..fix/issue-1\n"
            f"The draft pull request (with the verification results) and the comments are in\n  {records}\n"
            "What the run did, step by step:\n  pipe show latest --changes\n"
            "Start again from a fresh example forge:\n  pipe demo --reset",
            file=out,
        )
    return code
