"""REST routes for a commit, its check runs and its statuses. Writes are made as the token's user
(check runs as the App "pipe-checks"). Each route takes (server, repo, query, body, *path groups)
and answers (status, JSON) or a Page."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.support.github_server import checks
from tests.support.github_server.shapes import Page

if TYPE_CHECKING:
    from tests.support.github_server.repo import Repo
    from tests.support.github_server.server import GitHubServer

Query = dict[str, list[str]]
APP = "pipe-checks"  # the App check runs created through the API belong to


def _get_commit(server: GitHubServer, repo: Repo, query: Query, data: Any, ref: str) -> tuple[int, Any]:
    return 200, checks.render_commit(server, repo, checks.resolve(repo, ref))


def _list_runs(server: GitHubServer, repo: Repo, query: Query, data: Any, ref: str) -> tuple[int, Any]:
    found = checks.runs_for(server, repo, checks.resolve(repo, ref), query)
    return 200, Page([checks.render_run(server, repo, r) for r in found], key="check_runs")


def _get_run(server: GitHubServer, repo: Repo, query: Query, data: Any, run: str) -> tuple[int, Any]:
    found = repo.check_runs[int(run)]
    found.read(server.clock())
    return 200, checks.render_run(server, repo, found)


def _create_run(server: GitHubServer, repo: Repo, query: Query, data: Any) -> tuple[int, Any]:
    return 201, checks.render_run(server, repo, checks.create_run(server, repo, data, APP))


def _update_run(server: GitHubServer, repo: Repo, query: Query, data: Any, run: str) -> tuple[int, Any]:
    found = repo.check_runs[int(run)]
    checks.update_run(server, found, data)
    return 200, checks.render_run(server, repo, found)


def _create_status(server: GitHubServer, repo: Repo, query: Query, data: Any, sha: str) -> tuple[int, Any]:
    return 201, checks.render_status(server, repo, checks.create_status(server, repo, sha, data, server.actor))


def _list_statuses(server: GitHubServer, repo: Repo, query: Query, data: Any, ref: str) -> tuple[int, Any]:
    sha = checks.resolve(repo, ref)
    found = sorted((s for s in repo.statuses if s.sha == sha), key=lambda s: -s.id)
    return 200, Page([checks.render_status(server, repo, s) for s in found])


def _combined(server: GitHubServer, repo: Repo, query: Query, data: Any, ref: str) -> tuple[int, Any]:
    return 200, checks.combined(server, repo, checks.resolve(repo, ref))


ROUTES: list[tuple[str, str, Any]] = [
    (r"/commits/(.+)/check-runs", "GET", _list_runs),
    (r"/commits/(.+)/statuses", "GET", _list_statuses),
    (r"/commits/(.+)/status", "GET", _combined),
    (r"/commits/(.+)", "GET", _get_commit),
    (r"/check-runs", "POST", _create_run),
    (r"/check-runs/(\d+)", "GET", _get_run),
    (r"/check-runs/(\d+)", "PATCH", _update_run),
    (r"/statuses/([0-9a-fA-F]{4,40})", "POST", _create_status),
]
