"""pipelines/spec.yml with the fake agent: rejection sends the spec back to design with the
comment in its prompt; approval turns the tasks into issues with their dependencies."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from runner.forges.local import LocalForge
from runner.resources import data_path
from runner.store import Store
from tests.support.agents import agent_image
from tests.support.cli import Cli
from tests.support.trees import bare_origin, git_environment

pytestmark = pytest.mark.docker

REQUIREMENTS = {
    "summary": "Search notes",
    "stories": [
        {
            "id": "s1",
            "story": "As a writer, I want to search my notes, so that I find them",
            "acceptance": ["WHEN the writer enters a word THE SYSTEM SHALL list the notes containing it"],
        }
    ],
}
DESIGN = {"summary": "An index and a CLI", "components": [{"name": "index", "responsibility": "find words"}]}
TASKS = {
    "tasks": [
        {"id": "t1", "title": "Build the index", "description": "Index the notes."},
        {"id": "t2", "title": "Add the search command", "description": "A CLI command.", "blocked_by": ["t1"]},
        {"id": "t3", "title": "Document search", "description": "README.", "blocked_by": ["t1", "t2"]},
    ]
}


def phase(name: str, result: dict[str, Any], echo: bool = False) -> str:
    return (
        "ECHO-PROMPT\n" if echo else ""
    ) + f"WRITE {name}.md\n```\n# {name}\n```\nRESULT\n```json\n{json.dumps(result)}\n```"


def test_rejection_returns_to_design_and_approval_creates_the_issues(cli: Cli, tmp_path: Path) -> None:
    work, forge = tmp_path / "src", tmp_path / "forge"
    work.mkdir()
    (work / "README.md").write_text("# notes\n")
    bare_origin(work, forge / "repo.git")
    state = ["--state-dir", str(tmp_path / "state")]
    first = cli(
        "run",
        str(data_path("pipelines") / "spec.yml"),
        "-i",
        "idea=Search in my notes",
        "-i",
        "slug=search",
        "-i",
        "milestone=search",
        "-i",
        "agent=fake-agent",
        "-i",
        f"requirements-instructions={phase('requirements', REQUIREMENTS)}",
        "-i",
        f"design-instructions={phase('design', DESIGN, echo=True)}",
        "-i",
        f"tasks-instructions={phase('tasks', TASKS)}",
        "--forge-dir",
        str(forge),
        "--sandbox-image",
        agent_image(),
        *state,
    )
    assert first.code == 3, first.out + first.err
    run = Store(tmp_path / "state").run("latest")

    rejected = cli("reject", run.id, "--comment", "Split the parser from the CLI", *state)
    assert rejected.code == 3, rejected.out + rejected.err
    logs = sorted((tmp_path / "state" / "runs" / run.id / "logs").glob("design.2.*.log"))
    assert logs and "Split the parser from the CLI" in logs[-1].read_text()
    assert all(
        "Split the parser" not in p.read_text()
        for p in (tmp_path / "state" / "runs" / run.id / "logs").glob("design.1.*.log")
    )
    assert not list((forge / "issues").glob("*.md")) if (forge / "issues").exists() else True

    approved = cli("approve", run.id, *state)
    assert approved.code == 0, approved.out + approved.err
    issues = {issue.title: issue for issue in LocalForge(forge, tmp_path / "state").issues()}
    assert sorted(issues) == ["Add the search command", "Build the index", "Document search"]
    index, command, docs = issues["Build the index"], issues["Add the search command"], issues["Document search"]
    assert index.blocked_by == () and command.blocked_by == (index.number,)
    assert docs.blocked_by == (index.number, command.number)
    assert {issue.milestone for issue in issues.values()} == {"search"}
    branch = subprocess.run(
        ["git", f"--git-dir={forge / 'repo.git'}", "show", "spec/search:tasks.md"],
        capture_output=True,
        text=True,
        check=True,
        env=git_environment(),
    ).stdout
    assert branch == "# tasks\n"
