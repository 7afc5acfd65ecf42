"""A real HTTP server speaking the part of GitHub's REST API that pipe uses, and git's smart HTTP
protocol (through `git http-backend`), for tests. Responses have GitHub's shapes (checked against
GitHub's OpenAPI description by tests/test_github_server.py). Every request needs the token.

Faults can be injected (`fail`): an error status before or after performing a write, rate-limit
answers with their headers, delays. `requests` logs what was asked, for rate and idempotency checks.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

STAMP = "2026-01-01T00:00:00Z"


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
    at: float
    method: str
    path: str
    status: int


def _user(login: str, base: str) -> dict[str, Any]:
    api = f"{base}/api/v3/users/{login}"
    return {
        "login": login,
        "id": abs(hash(login)) % 100000,
        "node_id": f"U_{login}",
        "avatar_url": f"{base}/avatars/{login}",
        "gravatar_id": "",
        "url": api,
        "html_url": f"{base}/{login}",
        "followers_url": f"{api}/followers",
        "following_url": f"{api}/following{{/other_user}}",
        "gists_url": f"{api}/gists{{/gist_id}}",
        "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{api}/subscriptions",
        "organizations_url": f"{api}/orgs",
        "repos_url": f"{api}/repos",
        "events_url": f"{api}/events{{/privacy}}",
        "received_events_url": f"{api}/received_events",
        "type": "User",
        "site_admin": False,
    }


class Repo:
    """One repository: issues, comments, pulls, releases in memory; git data in a bare repository."""

    def __init__(self, server: GitHubServer, owner: str, name: str, git_dir: Path, default_branch: str) -> None:
        self.server = server
        self.owner, self.name = owner, name
        self.git_dir = git_dir
        self.default_branch = default_branch
        self.issues: dict[int, dict[str, Any]] = {}
        self.comments: dict[int, dict[str, Any]] = {}
        self.pulls: dict[int, dict[str, Any]] = {}
        self.releases: dict[int, dict[str, Any]] = {}
        self.reviews: list[dict[str, Any]] = []
        self.numbers = itertools.count(1)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    @property
    def api(self) -> str:
        return f"{self.server.base}/api/v3/repos/{self.full_name}"

    def git(self, *args: str) -> str:
        return subprocess.run(
            ["git", f"--git-dir={self.git_dir}", *args], check=True, capture_output=True, text=True
        ).stdout

    def sha(self, branch: str) -> str | None:
        try:
            return self.git("rev-parse", "--verify", "-q", f"refs/heads/{branch}").strip() or None
        except subprocess.CalledProcessError:
            return None

    def json(self) -> dict[str, Any]:
        base, owner, api = self.server.base, _user(self.owner, self.server.base), self.api
        found: dict[str, Any] = {
            "id": abs(hash(self.full_name)) % 100000,
            "node_id": f"R_{self.name}",
            "name": self.name,
            "full_name": self.full_name,
            "owner": owner,
            "private": False,
            "html_url": f"{base}/{self.full_name}",
            "description": None,
            "fork": False,
            "url": api,
            "default_branch": self.default_branch,
            "clone_url": f"{self.server.git_base}/{self.full_name}.git",
            "git_url": f"git://example/{self.full_name}.git",
            "ssh_url": f"git@example:{self.full_name}.git",
            "svn_url": f"{base}/{self.full_name}",
            "mirror_url": None,
            "homepage": None,
            "language": None,
            "size": 0,
            "archived": False,
            "disabled": False,
            "visibility": "public",
            "pushed_at": STAMP,
            "created_at": STAMP,
            "updated_at": STAMP,
            "license": None,
        }
        for name in (
            "archive",
            "assignees",
            "blobs",
            "branches",
            "collaborators",
            "comments",
            "commits",
            "compare",
            "contents",
            "contributors",
            "deployments",
            "downloads",
            "events",
            "forks",
            "git_commits",
            "git_refs",
            "git_tags",
            "issue_comment",
            "issue_events",
            "issues",
            "keys",
            "labels",
            "languages",
            "merges",
            "milestones",
            "notifications",
            "pulls",
            "releases",
            "stargazers",
            "statuses",
            "subscribers",
            "subscription",
            "tags",
            "teams",
            "trees",
            "hooks",
        ):
            found[f"{name}_url"] = f"{api}/{name.replace('_', '/')}"
        for name in (
            "forks_count",
            "stargazers_count",
            "watchers_count",
            "open_issues_count",
            "subscribers_count",
            "network_count",
            "forks",
            "open_issues",
            "watchers",
        ):
            found[name] = 0
        for name in ("has_issues", "has_projects", "has_wiki", "has_pages", "has_discussions"):
            found[name] = name == "has_issues"
        return found

    def add_issue(
        self, title: str, body: str, labels: tuple[str, ...] = (), author: str = "octocat", number: int | None = None
    ) -> dict[str, Any]:
        number = number or next(self.numbers)
        url = f"{self.api}/issues/{number}"
        issue = {
            "id": 1000 + number,
            "node_id": f"I_{number}",
            "url": url,
            "repository_url": self.api,
            "labels_url": f"{url}/labels{{/name}}",
            "comments_url": f"{url}/comments",
            "events_url": f"{url}/events",
            "html_url": f"{self.server.base}/{self.full_name}/issues/{number}",
            "number": number,
            "state": "open",
            "title": title,
            "body": body,
            "user": _user(author, self.server.base),
            "labels": [],
            "assignee": None,
            "assignees": [],
            "milestone": None,
            "locked": False,
            "comments": 0,
            "closed_at": None,
            "created_at": STAMP,
            "updated_at": STAMP,
            "author_association": "OWNER",
        }
        self.issues[number] = issue
        self.set_labels(issue, list(labels))
        return issue

    def label(self, name: str) -> dict[str, Any]:
        return {
            "id": abs(hash(name)) % 100000,
            "node_id": f"L_{name}",
            "url": f"{self.api}/labels/{name}",
            "name": name,
            "description": None,
            "color": "ededed",
            "default": False,
            "archived_at": None,
            "archived_by": None,
        }

    def set_labels(self, issue: dict[str, Any], names: list[str]) -> None:
        issue["labels"] = [self.label(n) for n in dict.fromkeys(names)]
        if issue["number"] in self.pulls:
            self.pulls[issue["number"]]["labels"] = issue["labels"]


class GitHubServer:
    """Start with `start()`; `base` is the API host (127.0.0.1), `git_base` the address sandboxes
    reach (the Docker bridge gateway when given)."""

    def __init__(self, root: Path, token: str, git_host: str = "127.0.0.1") -> None:
        self.root = root
        self.token = token
        self.git_host = git_host
        self.repos: dict[str, Repo] = {}
        self.faults: list[Fault] = []
        self.requests: list[Logged] = []
        self.lock = threading.RLock()
        self.ids = itertools.count(5000)
        self._servers: list[ThreadingHTTPServer] = []

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
            threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()

    @property
    def api_url(self) -> str:
        return f"{self.base}/api/v3"

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
        fault = Fault(method, path, status, **options)
        self.faults.append(fault)
        return fault

    def count(self, method: str, path: str) -> int:
        """How many logged requests match `method` and the `path` regex."""
        return sum(1 for r in self.requests if r.method == method and re.search(path, r.path))

    # ---- handling --------------------------------------------------------------------------

    def _fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.times > 0 and fault.method == method and re.search(fault.path, path):
                    fault.times -= 1
                    return fault
        return None

    def handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(request.path)
        path, query = unquote(parts.path), parse_qs(parts.query)
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        if re.match(r"^/[^/]+/[^/]+\.git/", path):
            status, headers, payload = self._git(request, method, path, parts.query, body)
            self._send(request, status, headers, payload, method, path)
            return
        if not self._authorized(request.headers.get("Authorization", "")):
            self._send(request, 401, {}, _json({"message": "Requires authentication"}), method, path)
            return
        fault = self._fault(method, path)
        if fault is not None:
            time.sleep(fault.delay)
            if not fault.after:
                self._send(request, fault.status, fault.headers, _json({"message": "injected fault"}), method, path)
                return
        try:
            data = json.loads(body) if body else {}
            with self.lock:
                status, payload = self._api(method, path, query, data)
        except KeyError as missing:
            status, payload = 404, {"message": f"Not Found: {missing}"}
        except Exception as error:
            status, payload = 500, {"message": f"test server error: {error!r}"}
        if fault is not None:
            status, payload = fault.status, {"message": "injected fault after the write"}
        headers = {
            "X-RateLimit-Limit": "5000",
            "X-RateLimit-Remaining": "4999",
            "X-RateLimit-Reset": str(int(time.time()) + 3600),
        }
        self._send(
            request,
            status,
            {**headers, **(fault.headers if fault else {})},
            b"" if status == 204 else _json(payload),
            method,
            path,
        )

    def _authorized(self, header: str) -> bool:
        scheme, _, value = header.partition(" ")
        return scheme.lower() in ("token", "bearer") and value == self.token

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

    # ---- git smart HTTP --------------------------------------------------------------------

    def _git(
        self, request: BaseHTTPRequestHandler, method: str, path: str, query: str, body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        password = ""
        if scheme.lower() == "basic":
            password = base64.b64decode(value).decode(errors="replace").partition(":")[2]
        if password != self.token:
            return 401, {"WWW-Authenticate": 'Basic realm="GitHub"', "Content-Type": "text/plain"}, b"auth required\n"
        env = {
            "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "REQUEST_METHOD": method,
            "CONTENT_TYPE": request.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": "x-access-token",
            "REMOTE_ADDR": "127.0.0.1",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": "/dev/null",
            "PATH": "/usr/bin:/bin",
        }
        if request.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = request.headers["Content-Encoding"]
        if request.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = request.headers["Git-Protocol"]
        result = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True, check=False)
        head, _, payload = result.stdout.partition(b"\r\n\r\n")
        status, headers = 200, {}
        for line in head.decode().split("\r\n"):
            key, _, value = line.partition(": ")
            if key.lower() == "status":
                status = int(value.split()[0])
            elif key:
                headers[key] = value
        return status, headers, payload

    # ---- the REST API ----------------------------------------------------------------------

    def _api(self, method: str, path: str, query: dict[str, list[str]], data: dict[str, Any]) -> tuple[int, Any]:
        match = re.match(r"^/api/v3/repos/([^/]+/[^/]+)(/.*)?$", path)
        if path == "/api/v3/user":
            return 200, _user("pipe-bot", self.base)
        if not match:
            return 404, {"message": "Not Found"}
        repo = self.repos[match.group(1)]
        rest = match.group(2) or ""
        for pattern, verb, function in _ROUTES:
            found = re.fullmatch(pattern, rest)
            if found and verb == method:
                return function(self, repo, query, data, *found.groups())  # type: ignore[no-any-return]
        return 404, {"message": f"Not Found: {method} {rest}"}

    def comment_as(self, full_name: str, number: int, body: str, author: str) -> dict[str, Any]:
        """A comment by `author` (someone other than the token's user), as a person would post."""
        with self.lock:
            repo = self.repos[full_name]
            comment = self._comment(repo, number, body)
            comment["user"] = _user(author, self.base)
            return comment

    def _comment(self, repo: Repo, number: int, body: str) -> dict[str, Any]:
        comment_id = next(self.ids)
        url = f"{repo.api}/issues/comments/{comment_id}"
        comment = {
            "id": comment_id,
            "node_id": f"IC_{comment_id}",
            "url": url,
            "html_url": f"{self.base}/{repo.full_name}/issues/{number}#issuecomment-{comment_id}",
            "body": body,
            "user": _user("pipe-bot", self.base),
            "created_at": STAMP,
            "updated_at": STAMP,
            "issue_url": f"{repo.api}/issues/{number}",
            "author_association": "MEMBER",
            "number": number,
        }
        repo.comments[comment_id] = comment
        return comment

    def _pull(self, repo: Repo, data: dict[str, Any]) -> dict[str, Any]:
        number = next(repo.numbers)
        repo.add_issue(data["title"], data.get("body") or "", author="pipe-bot", number=number)
        url = f"{repo.api}/pulls/{number}"
        html = f"{self.base}/{repo.full_name}/pull/{number}"
        head, base = data["head"].split(":")[-1], data.get("base") or repo.default_branch

        def ref(branch: str) -> dict[str, Any]:
            return {
                "label": f"{repo.owner}:{branch}",
                "ref": branch,
                "sha": repo.sha(branch) or "0" * 40,
                "user": _user(repo.owner, self.base),
                "repo": repo.json(),
            }

        pull = {
            "url": url,
            "id": 2000 + number,
            "node_id": f"PR_{number}",
            "html_url": html,
            "diff_url": f"{html}.diff",
            "patch_url": f"{html}.patch",
            "issue_url": f"{repo.api}/issues/{number}",
            "commits_url": f"{url}/commits",
            "review_comments_url": f"{url}/comments",
            "review_comment_url": f"{repo.api}/pulls/comments{{/number}}",
            "comments_url": f"{repo.api}/issues/{number}/comments",
            "statuses_url": f"{repo.api}/statuses/x",
            "number": number,
            "state": "open",
            "locked": False,
            "title": data["title"],
            "user": _user("pipe-bot", self.base),
            "body": data.get("body"),
            "labels": [],
            "milestone": None,
            "created_at": STAMP,
            "updated_at": STAMP,
            "closed_at": None,
            "merged_at": None,
            "merge_commit_sha": None,
            "head": ref(head),
            "base": ref(base),
            "_links": {
                k: {"href": url}
                for k in (
                    "self",
                    "html",
                    "issue",
                    "comments",
                    "review_comments",
                    "review_comment",
                    "commits",
                    "statuses",
                )
            },
            "author_association": "MEMBER",
            "auto_merge": None,
            "draft": bool(data.get("draft")),
            "merged": False,
            "mergeable": True,
            "mergeable_state": "clean",
            "merged_by": None,
            "comments": 0,
            "review_comments": 0,
            "maintainer_can_modify": False,
            "commits": 1,
            "additions": 0,
            "deletions": 0,
            "changed_files": 0,
            "requested_reviewers": [],
        }
        repo.pulls[number] = pull
        return pull

    def _release(self, repo: Repo, data: dict[str, Any]) -> dict[str, Any]:
        release_id = next(self.ids)
        url = f"{repo.api}/releases/{release_id}"
        release = {
            "url": url,
            "html_url": f"{self.base}/{repo.full_name}/releases/tag/{data['tag_name']}",
            "assets_url": f"{url}/assets",
            "upload_url": f"{url}/assets{{?name,label}}",
            "tarball_url": f"{repo.api}/tarball/{data['tag_name']}",
            "zipball_url": f"{repo.api}/zipball/{data['tag_name']}",
            "id": release_id,
            "node_id": f"RE_{release_id}",
            "tag_name": data["tag_name"],
            "target_commitish": data.get("target_commitish") or repo.default_branch,
            "name": data.get("name"),
            "body": data.get("body"),
            "draft": bool(data.get("draft")),
            "prerelease": bool(data.get("prerelease")),
            "created_at": STAMP,
            "published_at": None if data.get("draft") else STAMP,
            "author": _user("pipe-bot", self.base),
            "assets": [],
        }
        repo.releases[release_id] = release
        return release


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


# ---- routes: (regex on the path after /repos/OWNER/NAME, method, function) -----------------------


def _get_repo(server: GitHubServer, repo: Repo, query: Any, data: Any) -> tuple[int, Any]:
    return 200, repo.json()


def _get_issue(server: GitHubServer, repo: Repo, query: Any, data: Any, number: str) -> tuple[int, Any]:
    return 200, repo.issues[int(number)]


def _create_issue(server: GitHubServer, repo: Repo, query: Any, data: Any) -> tuple[int, Any]:
    return 201, repo.add_issue(data["title"], data.get("body") or "", tuple(data.get("labels") or ()), "pipe-bot")


def _list_issues(server: GitHubServer, repo: Repo, query: Any, data: Any) -> tuple[int, Any]:
    state = query.get("state", ["open"])[0]
    return 200, [i for i in repo.issues.values() if state == "all" or i["state"] == state]


def _list_comments(server: GitHubServer, repo: Repo, query: Any, data: Any, number: str) -> tuple[int, Any]:
    return 200, [c for c in repo.comments.values() if c["number"] == int(number)]


def _create_comment(server: GitHubServer, repo: Repo, query: Any, data: Any, number: str) -> tuple[int, Any]:
    repo.issues[int(number)]["comments"] += 1
    return 201, server._comment(repo, int(number), data["body"])


def _get_comment(server: GitHubServer, repo: Repo, query: Any, data: Any, comment: str) -> tuple[int, Any]:
    return 200, repo.comments[int(comment)]


def _edit_comment(server: GitHubServer, repo: Repo, query: Any, data: Any, comment: str) -> tuple[int, Any]:
    repo.comments[int(comment)]["body"] = data["body"]
    return 200, repo.comments[int(comment)]


def _delete_comment(server: GitHubServer, repo: Repo, query: Any, data: Any, comment: str) -> tuple[int, Any]:
    del repo.comments[int(comment)]
    return 204, None


def _list_pulls(server: GitHubServer, repo: Repo, query: Any, data: Any) -> tuple[int, Any]:
    state = query.get("state", ["open"])[0]
    head = query.get("head", [None])[0]
    found = [p for p in repo.pulls.values() if state == "all" or p["state"] == state]
    if head:
        found = [p for p in found if p["head"]["label"] == head or p["head"]["ref"] == head.split(":")[-1]]
    return 200, found


def _create_pull(server: GitHubServer, repo: Repo, query: Any, data: Any) -> tuple[int, Any]:
    head = data["head"].split(":")[-1]
    if repo.sha(head) is None:
        return 422, {"message": "Validation Failed", "errors": [{"field": "head", "code": "invalid"}]}
    if any(p["head"]["ref"] == head and p["state"] == "open" for p in repo.pulls.values()):
        return 422, {"message": f"A pull request already exists for {repo.owner}:{head}."}
    return 201, server._pull(repo, data)


def _get_pull(server: GitHubServer, repo: Repo, query: Any, data: Any, number: str) -> tuple[int, Any]:
    pull = repo.pulls[int(number)]
    pull["head"]["sha"] = repo.sha(pull["head"]["ref"]) or pull["head"]["sha"]
    return 200, pull


def _edit_pull(server: GitHubServer, repo: Repo, query: Any, data: Any, number: str) -> tuple[int, Any]:
    pull = repo.pulls[int(number)]
    for key in ("title", "body", "state"):
        if key in data:
            pull[key] = data[key]
    if data.get("state") == "closed":
        pull["closed_at"] = STAMP
    return 200, pull


def _pull_files(server: GitHubServer, repo: Repo, query: Any, data: Any, number: str) -> tuple[int, Any]:
    pull = repo.pulls[int(number)]
    base, head = pull["base"]["ref"], pull["head"]["ref"]
    files = []
    for line in repo.git("diff", "--numstat", f"{base}...{head}").splitlines():
        added, deleted, name = line.split("\t")
        patch = repo.git("diff", f"{base}...{head}", "--", name).split("\n@@", 1)
        files.append(
            {
                "sha": "0" * 40,
                "filename": name,
                "status": "modified",
                "additions": int(added),
                "deletions": int(deleted),
                "changes": int(added) + int(deleted),
                "blob_url": f"{server.base}/{repo.full_name}/blob/{head}/{name}",
                "raw_url": f"{server.base}/{repo.full_name}/raw/{head}/{name}",
                "contents_url": f"{repo.api}/contents/{name}?ref={head}",
                "patch": "@@" + patch[1] if len(patch) > 1 else "",
            }
        )
    return 200, files


def _create_review(server: GitHubServer, repo: Repo, query: Any, data: Any, number: str) -> tuple[int, Any]:
    pull = repo.pulls[int(number)]
    review_id = next(server.ids)
    state = {"APPROVE": "APPROVED", "REQUEST_CHANGES": "CHANGES_REQUESTED"}.get(data.get("event", ""), "COMMENTED")
    review = {
        "id": review_id,
        "node_id": f"PRR_{review_id}",
        "user": _user("pipe-bot", server.base),
        "body": data.get("body") or "",
        "state": state,
        "html_url": f"{pull['html_url']}#pullrequestreview-{review_id}",
        "pull_request_url": pull["url"],
        "_links": {"html": {"href": pull["html_url"]}, "pull_request": {"href": pull["url"]}},
        "commit_id": data.get("commit_id") or pull["head"]["sha"],
        "author_association": "MEMBER",
        "comments": data.get("comments", []),
        "number": int(number),
    }
    repo.reviews.append(review)
    return 200, review


def _list_reviews(server: GitHubServer, repo: Repo, query: Any, data: Any, number: str) -> tuple[int, Any]:
    return 200, [r for r in repo.reviews if r["number"] == int(number)]


def _request_reviewers(server: GitHubServer, repo: Repo, query: Any, data: Any, number: str) -> tuple[int, Any]:
    pull = repo.pulls[int(number)]
    pull["requested_reviewers"] = [_user(login, server.base) for login in data.get("reviewers", [])]
    return 201, pull


def _add_labels(server: GitHubServer, repo: Repo, query: Any, data: Any, number: str) -> tuple[int, Any]:
    issue = repo.issues[int(number)]
    added = data if isinstance(data, list) else data.get("labels", [])
    repo.set_labels(issue, [label["name"] for label in issue["labels"]] + list(added))
    return 200, issue["labels"]


def _remove_label(server: GitHubServer, repo: Repo, query: Any, data: Any, number: str, name: str) -> tuple[int, Any]:
    issue = repo.issues[int(number)]
    names = [label["name"] for label in issue["labels"]]
    if name not in names:
        return 404, {"message": "Label does not exist"}
    repo.set_labels(issue, [n for n in names if n != name])
    return 200, issue["labels"]


def _list_releases(server: GitHubServer, repo: Repo, query: Any, data: Any) -> tuple[int, Any]:
    return 200, sorted(repo.releases.values(), key=lambda r: -r["id"])


def _create_release(server: GitHubServer, repo: Repo, query: Any, data: Any) -> tuple[int, Any]:
    if any(r["tag_name"] == data["tag_name"] for r in repo.releases.values()):
        return 422, {
            "message": "Validation Failed",
            "errors": [{"resource": "Release", "code": "already_exists", "field": "tag_name"}],
        }
    return 201, server._release(repo, data)


def _get_release(server: GitHubServer, repo: Repo, query: Any, data: Any, release: str) -> tuple[int, Any]:
    return 200, repo.releases[int(release)]


def _edit_release(server: GitHubServer, repo: Repo, query: Any, data: Any, release: str) -> tuple[int, Any]:
    found = repo.releases[int(release)]
    for key in ("name", "body", "draft", "prerelease", "tag_name"):
        if key in data:
            found[key] = data[key]
    return 200, found


def _delete_release(server: GitHubServer, repo: Repo, query: Any, data: Any, release: str) -> tuple[int, Any]:
    del repo.releases[int(release)]
    return 204, None


def _get_ref(server: GitHubServer, repo: Repo, query: Any, data: Any, branch: str) -> tuple[int, Any]:
    sha = repo.sha(branch)
    if sha is None:
        return 404, {"message": "Not Found"}
    return 200, {
        "ref": f"refs/heads/{branch}",
        "node_id": f"REF_{branch}",
        "url": f"{repo.api}/git/refs/heads/{branch}",
        "object": {"type": "commit", "sha": sha, "url": f"{repo.api}/git/commits/{sha}"},
    }


def _update_ref(server: GitHubServer, repo: Repo, query: Any, data: Any, branch: str) -> tuple[int, Any]:
    repo.git("update-ref", f"refs/heads/{branch}", data["sha"])
    return _get_ref(server, repo, query, data, branch)


def _delete_ref(server: GitHubServer, repo: Repo, query: Any, data: Any, branch: str) -> tuple[int, Any]:
    if repo.sha(branch) is None:
        return 422, {"message": "Reference does not exist"}
    repo.git("update-ref", "-d", f"refs/heads/{branch}")
    return 204, None


_ROUTES: list[tuple[str, str, Any]] = [
    ("", "GET", _get_repo),
    (r"/issues/(\d+)", "GET", _get_issue),
    (r"/issues", "POST", _create_issue),
    (r"/issues", "GET", _list_issues),
    (r"/issues/(\d+)/comments", "GET", _list_comments),
    (r"/issues/(\d+)/comments", "POST", _create_comment),
    (r"/issues/comments/(\d+)", "GET", _get_comment),
    (r"/issues/comments/(\d+)", "PATCH", _edit_comment),
    (r"/issues/comments/(\d+)", "DELETE", _delete_comment),
    (r"/issues/(\d+)/labels", "POST", _add_labels),
    (r"/issues/(\d+)/labels/(.+)", "DELETE", _remove_label),
    (r"/pulls", "GET", _list_pulls),
    (r"/pulls", "POST", _create_pull),
    (r"/pulls/(\d+)", "GET", _get_pull),
    (r"/pulls/(\d+)", "PATCH", _edit_pull),
    (r"/pulls/(\d+)/files", "GET", _pull_files),
    (r"/pulls/(\d+)/reviews", "POST", _create_review),
    (r"/pulls/(\d+)/reviews", "GET", _list_reviews),
    (r"/pulls/(\d+)/requested_reviewers", "POST", _request_reviewers),
    (r"/releases", "GET", _list_releases),
    (r"/releases", "POST", _create_release),
    (r"/releases/(\d+)", "GET", _get_release),
    (r"/releases/(\d+)", "PATCH", _edit_release),
    (r"/releases/(\d+)", "DELETE", _delete_release),
    (r"/git/ref/heads/(.+)", "GET", _get_ref),
    (r"/git/refs/heads/(.+)", "PATCH", _update_ref),
    (r"/git/refs/heads/(.+)", "DELETE", _delete_ref),
]


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

    return Handler
