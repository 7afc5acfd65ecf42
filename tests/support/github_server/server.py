"""The test GitHub server: one HTTP server answering GitHub's REST API (under /api/v3, as GitHub
Enterprise serves it), its GraphQL API and git's smart HTTP, over repositories kept in memory and
in bare git repositories. Every request needs the token. Tests script other users' actions (reviews,
review comments, CI results) with the helper methods and read state from `repos`.

Faults can be injected (`fail`): an error status before or after performing a write, rate-limit
answers with their headers, delays. `requests` logs what was asked, for rate and idempotency checks.
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.support.github_server import (
    apps,
    checks,
    graphql_api,
    reviews,
    routes_checks,
    routes_issues,
    routes_pulls,
    routes_reviews,
    webhooks,
)
from tests.support.github_server.apps import App
from tests.support.github_server.checks import CheckRun, Status
from tests.support.github_server.repo import Repo
from tests.support.github_server.reviews import ReviewThread
from tests.support.github_server.routes_issues import new_comment
from tests.support.github_server.routes_pulls import new_pull
from tests.support.github_server.shapes import VIEWER, ApiError, Page, encode, timestamp, user

ROUTES = routes_issues.ROUTES + routes_pulls.ROUTES + routes_reviews.ROUTES + routes_checks.ROUTES + webhooks.ROUTES


@dataclass
class Fault:
    """Answer `status` to requests matching `method` and the `path` regex, `times` times; with
    `after`, the request is performed first (a write that happened although the client saw an error)."""

    method: str
    path: str
    status: int
    after: bool = False
    times: int = 1
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Logged:
    """One request the server answered: when, its method, path and status."""

    at: float
    method: str
    path: str
    status: int


class GitHubServer:
    """Start with `start()`; `base` is the API host (127.0.0.1), `git_base` the address sandboxes
    reach (the Docker bridge gateway when given). `clock` (seconds since the epoch) dates what
    the server creates from now on; tests may replace it."""

    def __init__(self, root: Path, token: str, git_host: str = "127.0.0.1") -> None:
        self.root = root
        self.token = token
        self.git_host = git_host
        self.repos: dict[str, Repo] = {}
        self.faults: list[Fault] = []
        self.requests: list[Logged] = []
        self.lock = threading.RLock()
        self.ids = itertools.count(5000)
        self.clock: Callable[[], float] = time.time
        self._servers: list[ThreadingHTTPServer] = []
        self.webhooks = webhooks.Webhooks(self)  # hooks and signed deliveries (webhooks.py)
        self.apps = apps.Apps(self)
        self.actor = VIEWER  # who the request being answered acts as (set under `lock`)

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> GitHubServer:
        handler = _handler(self)
        api = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._servers.append(api)
        self.base = f"http://127.0.0.1:{api.server_address[1]}"
        if self.git_host == "127.0.0.1":
            self.git_base = self.base
        else:
            git = ThreadingHTTPServer((self.git_host, 0), handler)
            self._servers.append(git)
            self.git_base = f"http://{self.git_host}:{git.server_address[1]}"
        for server in self._servers:
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        self.webhooks.stop()
        for server in self._servers:
            server.shutdown()
            server.server_close()

    @property
    def api_url(self) -> str:
        return f"{self.base}/api/v3"

    @property
    def graphql_url(self) -> str:
        """Where GitHub Enterprise answers GraphQL (next to /api/v3)."""
        return f"{self.base}/api/graphql"

    def now(self) -> str:
        """The `clock`'s time as GitHub writes times."""
        return timestamp(self.clock())

    def create_repo(self, full_name: str, files: dict[str, str], default_branch: str = "main") -> Repo:
        """A repository whose default branch has one commit with `files`."""
        owner, name = full_name.split("/")
        git_dir = self.root / owner / f"{name}.git"
        work = self.root / "work" / owner / name
        work.mkdir(parents=True)
        for path, text in files.items():
            (work / path).parent.mkdir(parents=True, exist_ok=True)
            (work / path).write_text(text)
        env = {
            "GIT_CONFIG_GLOBAL": "/dev/null",
            "GIT_CONFIG_NOSYSTEM": "1",
            "PATH": "/usr/bin:/bin",
            "GIT_AUTHOR_NAME": "octocat",
            "GIT_AUTHOR_EMAIL": "octocat@example.com",
            "GIT_COMMITTER_NAME": "octocat",
            "GIT_COMMITTER_EMAIL": "octocat@example.com",
        }
        for argv in (
            ["git", "init", "-q", "-b", default_branch],
            ["git", "add", "-A"],
            ["git", "commit", "-qm", "initial"],
            ["git", "clone", "-q", "--bare", str(work), str(git_dir)],
        ):
            subprocess.run(argv, cwd=work, check=True, env=env)
        subprocess.run(["git", f"--git-dir={git_dir}", "config", "http.receivepack", "true"], check=True, env=env)
        repo = Repo(self, owner, name, git_dir, default_branch)
        self.repos[full_name] = repo
        return repo

    def fail(self, method: str, path: str, status: int, **options: Any) -> Fault:
        """Inject a Fault (see Fault for the options); returns it, to change or inspect."""
        fault = Fault(method, path, status, **options)
        self.faults.append(fault)
        return fault

    def count(self, method: str, path: str) -> int:
        """How many logged requests match `method` and the `path` regex."""
        return sum(1 for r in self.requests if r.method == method and re.search(path, r.path))

    def register_app(self, slug: str, repos: Sequence[str]) -> App:
        """A GitHub App `slug` installed on `repos` (owner/name), with a fresh private key (`App.private_key`)."""
        with self.lock:
            return self.apps.register(slug, list(repos))

    def pushed_by(self, full_name: str, ref: str) -> str | None:
        """Who last pushed `ref` (e.g. "refs/heads/fix") of `full_name` over git: VIEWER or an App's bot."""
        with self.lock:
            return self.apps.pushed_by(full_name, ref)

    # ---- what other users do (for tests) ---------------------------------------------------

    def comment_as(self, full_name: str, number: int, body: str, author: str) -> dict[str, Any]:
        """A comment by `author` (someone other than the token's user), as a person would post."""
        with self.lock:
            comment = new_comment(self, self.repos[full_name], number, body, author)
            self.webhooks.issue_comment(self.repos[full_name], number, comment, author)
            return comment

    def review(
        self,
        full_name: str,
        number: int,
        author: str,
        body: str = "",
        event: str = "COMMENT",
        comments: Sequence[dict[str, Any]] = (),
        commit_id: str | None = None,
    ) -> dict[str, Any]:
        """A review of pull request `number` by `author`: `event` COMMENT, REQUEST_CHANGES or
        APPROVE, inline `comments` ({path, line, body} and optionally side, start_line, subject_type)
        each opening a review thread, on `commit_id` (default: the head). Returns the review as
        GitHub's REST API shows it; raises ApiError (422) for a line outside the diff."""
        data = {"body": body, "event": event, "comments": list(comments), "commit_id": commit_id}
        with self.lock:
            review = reviews.submit_review(self, self.repos[full_name], number, author, data)
            self.webhooks.review_submitted(self.repos[full_name], number, review, author)
            return reviews.public(review)

    def review_comment(
        self, full_name: str, number: int, author: str, body: str, in_reply_to: int | None = None, **where: Any
    ) -> dict[str, Any]:
        """A single review comment by `author` on pull request `number`: a reply to comment
        `in_reply_to`, or a new thread at `where` (path, line, side, commit_id: default the head)."""
        with self.lock:
            repo = self.repos[full_name]
            data = {"body": body, "in_reply_to": in_reply_to, **where}
            data.setdefault("commit_id", reviews.head_sha(repo, number))
            comment = reviews.render(self, repo, reviews.post_comment(self, repo, number, author, data))
            self.webhooks.review_comment(repo, number, comment, author)
            return comment

    def label_issue(self, full_name: str, number: int, label: str, by: str = "octocat") -> None:
        """Add `label` to issue `number` as `by` would in GitHub's interface (`issues` labeled is
        delivered to the repository's hooks)."""
        with self.lock:
            repo = self.repos[full_name]
            issue = repo.issues[number]
            repo.set_labels(issue, [found["name"] for found in issue["labels"]] + [label])
            self.webhooks.issue_labeled(repo, number, label, by)

    def merge(self, full_name: str, number: int, by: str = "octocat") -> dict[str, Any]:
        """Merge pull request `number` as `by` (see webhooks.merge); `pull_request` closed is delivered."""
        with self.lock:
            return webhooks.merge(self, self.repos[full_name], number, by, {})

    def review_comments(self, full_name: str, number: int) -> list[dict[str, Any]]:
        """The review comments of pull request `number`, oldest first, in GitHub's REST shape."""
        with self.lock:
            repo = self.repos[full_name]
            return [reviews.render(self, repo, c) for c in repo.review_comments.values() if c.number == number]

    def review_threads(self, full_name: str, number: int) -> list[ReviewThread]:
        """The review threads of pull request `number` (live objects: read, don't change)."""
        with self.lock:
            return [t for t in self.repos[full_name].threads.values() if t.number == number]

    def resolve_thread(self, full_name: str, thread_id: str, by: str, resolved: bool = True) -> None:
        """Mark the thread with node id `thread_id` resolved by `by` (or unresolved)."""
        with self.lock:
            (thread,) = [t for t in self.repos[full_name].threads.values() if t.node_id == thread_id]
            thread.resolved_by = by if resolved else None

    def requested_reviewers(self, full_name: str, number: int) -> list[str]:
        """The logins pull request `number` waits for a review from."""
        with self.lock:
            return [u["login"] for u in self.repos[full_name].pulls[number]["requested_reviewers"]]

    def add_check_run(
        self,
        full_name: str,
        ref: str,
        name: str,
        conclusion: str = "success",
        polls: int = 0,
        seconds: float = 0.0,
        app: str = "ci",
    ) -> CheckRun:
        """A check run `name` by App `app` on the commit `ref` names. It reads as in progress to
        the first `polls` reads of it (lists or gets) and for `seconds`, then completes with
        `conclusion`; with neither it is completed at once."""
        with self.lock:
            repo = self.repos[full_name]
            run = checks.CheckRun(next(self.ids), checks.resolve(repo, ref), name, app, "in_progress")
            run.started_at = self.now()
            run.outcome, run.polls, run.ready_at = conclusion, polls, self.clock() + seconds
            if polls == 0:
                run.read(self.clock())
            repo.check_runs[run.id] = run
            return run

    def set_status(
        self,
        full_name: str,
        ref: str,
        state: str,
        context: str = "ci/test",
        description: str | None = None,
        creator: str = "ci-bot",
    ) -> Status:
        """A commit status `state` (error, failure, pending, success) for `context` on `ref`."""
        with self.lock:
            data = {"state": state, "context": context, "description": description}
            return checks.create_status(self, self.repos[full_name], ref, data, creator)

    # ---- handling --------------------------------------------------------------------------

    def _fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.times > 0 and fault.method == method and re.search(fault.path, path):
                    fault.times -= 1
                    return fault
        return None

    def handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        """Answer one HTTP request: git smart HTTP, or the REST or GraphQL API behind the token."""
        parts = urlsplit(request.path)
        path, query = unquote(parts.path), parse_qs(parts.query)
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        if re.match(r"^/[^/]+/[^/]+\.git/", path):
            status, headers, raw = self.apps.serve_git(request, method, path, parts.query, body)
            self._send(request, status, headers, raw, method, path)
            return
        authorization = request.headers.get("Authorization", "")
        actor = self.actor_of(authorization.partition(" ")[2]) if self._token_scheme(authorization) else None
        if actor is None and not apps.is_app_path(path):
            self._send(request, 401, {}, encode({"message": "Requires authentication"}), method, path)
            return
        fault = self._fault(method, path)
        if fault is not None:
            time.sleep(fault.delay)
            if not fault.after:
                self._send(request, fault.status, fault.headers, encode({"message": "injected fault"}), method, path)
                return
        headers = {
            "X-RateLimit-Limit": "5000",
            "X-RateLimit-Remaining": "4999",
            "X-RateLimit-Reset": str(int(time.time()) + 3600),
        }
        try:
            data = json.loads(body) if body else {}
            with self.lock:
                self.actor = actor or VIEWER
                answered = self.apps.route(method, path, authorization)
                status, payload = answered if answered is not None else self._api(method, path, query, data)
                if isinstance(payload, Page):
                    payload, links = payload.render(f"{self.base}{path}", query)
                    headers.update(links)
        except ApiError as error:
            status, payload = error.status, error.payload
        except KeyError as missing:
            status, payload = 404, {"message": f"Not Found: {missing}"}
        except Exception as error:
            status, payload = 500, {"message": f"test server error: {error!r}"}
        if fault is not None:
            status, payload = fault.status, {"message": "injected fault after the write"}
        self._send(
            request,
            status,
            {**headers, **(fault.headers if fault else {})},
            b"" if status == 204 else encode(payload),
            method,
            path,
        )

    @staticmethod
    def _token_scheme(header: str) -> bool:
        return header.partition(" ")[0].lower() in ("token", "bearer")

    def actor_of(self, token: str) -> str | None:
        """Who `token` acts as: VIEWER for the server's token, an App's bot for its installation
        tokens, None for anything else."""
        if token == self.token:
            return VIEWER
        with self.lock:
            return self.apps.actor(token)

    def _send(
        self,
        request: BaseHTTPRequestHandler,
        status: int,
        headers: dict[str, str],
        payload: bytes,
        method: str,
        path: str,
    ) -> None:
        with self.lock:
            self.requests.append(Logged(time.time(), method, path, status))
        request.send_response(status)
        if not any(k.lower() == "content-type" for k in headers):
            request.send_header("Content-Type", "application/json; charset=utf-8")
        for key, value in headers.items():
            request.send_header(key, value)
        request.send_header("Content-Length", str(len(payload)))
        request.end_headers()
        request.wfile.write(payload)

    def _api(self, method: str, path: str, query: dict[str, list[str]], data: Any) -> tuple[int, Any]:
        if path in graphql_api.PATHS and method == "POST":
            return 200, graphql_api.execute(self, data)
        match = re.match(r"^/api/v3/repos/([^/]+/[^/]+)(/.*)?$", path)
        if path == "/api/v3/user":
            if self.actor != VIEWER:  # an installation token has no user, as on GitHub
                return 403, {"message": "Resource not accessible by integration"}
            return 200, user(VIEWER, self.base)
        if not match:
            return 404, {"message": "Not Found"}
        repo = self.repos[match.group(1)]
        rest = match.group(2) or ""
        for pattern, verb, function in ROUTES:
            found = re.fullmatch(pattern, rest)
            if found and verb == method:
                status, answer = function(self, repo, query, data, *found.groups())
                self.webhooks.observe(method, rest, repo, data, status, answer)
                return status, answer
        return 404, {"message": f"Not Found: {method} {rest}"}

    def _pull(self, repo: Repo, data: dict[str, Any]) -> dict[str, Any]:
        """Open a pull request directly (as if through the API), for tests."""
        return new_pull(self, repo, data)


def _handler(server: GitHubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            server.handle(self, "GET")

        def do_POST(self) -> None:
            server.handle(self, "POST")

        def do_PATCH(self) -> None:
            server.handle(self, "PATCH")

        def do_DELETE(self) -> None:
            server.handle(self, "DELETE")

        def do_PUT(self) -> None:
            server.handle(self, "PUT")

    return Handler
