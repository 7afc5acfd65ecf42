"""Shared fixtures: the in-process CLI, and the Docker gate (skip without an engine, fail under CI)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.cli import Cli, CliResult, run_cli

if TYPE_CHECKING:
    from tests.support.github_server import GitHubServer

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    """Run `pipe ARGS...` in-process; returns exit code, stdout and stderr."""

    def invoke(*args: str) -> CliResult:
        return run_cli(capsys, list(args))

    return invoke


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Docker-, browser- and redis-marked tests skip where what they need is missing, but fail when CI
    is set."""
    from tests.support.docker import engine_problem
    from tests.support.workers import broker_problem

    problems: dict[str, Callable[[], str | None]] = {
        "docker": engine_problem if any(item.get_closest_marker("docker") for item in items) else lambda: None,
        "browser": lambda: None if shutil.which("chromium") else "no chromium on PATH",
        "redis": broker_problem if any(item.get_closest_marker("redis") for item in items) else lambda: None,
    }
    for marker, check in problems.items():
        problem = check()
        if problem is None:
            continue
        for item in items:
            if item.get_closest_marker(marker):
                if os.environ.get("CI"):
                    item.user_properties.append(("docker_problem", problem))
                else:
                    item.add_marker(pytest.mark.skip(reason=problem))


@pytest.fixture(autouse=True)
def _fail_without_docker_under_ci(request: pytest.FixtureRequest) -> None:
    for name, value in request.node.user_properties:
        if name == "docker_problem":
            pytest.fail(f"CI is set but this test cannot run: {value}")


@pytest.fixture
def github(tmp_path: Path) -> Iterator[GitHubServer]:
    """The test GitHub server, reachable from sandboxes; stopped after the test."""
    from tests.support.github import start_github

    server = start_github(tmp_path / "github")
    yield server
    server.stop()
