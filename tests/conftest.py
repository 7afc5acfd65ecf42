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


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--store-url",
        default=None,
        help="A PostgreSQL server (postgresql://USER:PASSWORD@HOST:PORT/DB) the store tests also run against "
        "(default: $PIPE_TEST_POSTGRES_URL; without one they skip, or fail when CI is set).",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests using `store_backend` run once per database: SQLite, then PostgreSQL."""
    if "store_backend" in metafunc.fixturenames:
        metafunc.parametrize("store_backend", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def store_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The database the test's stores use, through $PIPE_STORE_URL: `sqlite` (the state directory's
    file) or `postgresql` (a fresh schema of the server --store-url / $PIPE_TEST_POSTGRES_URL names;
    skipped without one, failed when CI is set)."""
    from tests.support.stores import fresh_schema, postgres_problem, postgres_server

    if request.param == "sqlite":
        monkeypatch.delenv("PIPE_STORE_URL", raising=False)
        yield "sqlite"
        return
    server = postgres_server(request.config.getoption("--store-url"))
    problem = "no PostgreSQL server given (--store-url or $PIPE_TEST_POSTGRES_URL)" if server is None else None
    problem = problem or postgres_problem(server or "")
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but this test cannot run: {problem}")
        pytest.skip(problem)
    with fresh_schema(server or "") as url:
        monkeypatch.setenv("PIPE_STORE_URL", url)
        yield url


@pytest.fixture(autouse=True)
def _store_on_postgres(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """With PIPE_TEST_STORE=postgresql the whole suite runs on PostgreSQL: every test's stores use a
    fresh schema of the server --store-url / $PIPE_TEST_POSTGRES_URL names (as each test's state
    directory starts empty on SQLite). Tests parametrized by `store_backend` choose their own."""
    if os.environ.get("PIPE_TEST_STORE") != "postgresql" or "store_backend" in request.fixturenames:
        yield
        return
    from tests.support.stores import fresh_schema, postgres_server

    server = postgres_server(request.config.getoption("--store-url"))
    if server is None:
        pytest.fail("PIPE_TEST_STORE=postgresql needs --store-url or $PIPE_TEST_POSTGRES_URL")
    with fresh_schema(server) as url:
        monkeypatch.setenv("PIPE_STORE_URL", url)
        yield


@pytest.fixture
def github(tmp_path: Path) -> Iterator[GitHubServer]:
    """The test GitHub server, reachable from sandboxes; stopped after the test."""
    from tests.support.github import start_github

    server = start_github(tmp_path / "github")
    yield server
    server.stop()
