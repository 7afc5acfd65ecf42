"""A real HTTP server speaking the part of GitHub's REST API (version 2022-11-28) and GraphQL API
that pipe uses, and git's smart HTTP protocol (through `git http-backend`), for tests. Responses
have GitHub's shapes (checked against GitHub's OpenAPI description by tests/test_github_server*.py).

Modules: server (the HTTP server, faults, helpers for tests), repo (one repository's state),
routes_* (REST endpoints), reviews and diffs (review comments and threads), checks (check runs,
statuses, commits), graphql_api, graphql_views and schema.graphql (GraphQL), git_http, shapes.
"""

from tests.support.github_server.checks import CheckRun, Status
from tests.support.github_server.repo import Repo
from tests.support.github_server.reviews import ReviewComment, ReviewThread
from tests.support.github_server.server import Fault, GitHubServer, Logged
from tests.support.github_server.shapes import STAMP, ApiError

__all__ = [
    "STAMP",
    "ApiError",
    "CheckRun",
    "Fault",
    "GitHubServer",
    "Logged",
    "Repo",
    "ReviewComment",
    "ReviewThread",
    "Status",
]
