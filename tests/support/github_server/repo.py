"""One repository of the test GitHub server: issues, comments, pulls, reviews, review threads,
check runs and statuses in memory; git data in a bare repository served over smart HTTP."""

from __future__ import annotations

import itertools
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.support.github_server.shapes import STAMP, user

if TYPE_CHECKING:
    from tests.support.github_server.checks import CheckRun, Status
    from tests.support.github_server.reviews import ReviewComment, ReviewThread
    from tests.support.github_server.server import GitHubServer


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
        self.review_comments: dict[int, ReviewComment] = {}
        self.threads: dict[int, ReviewThread] = {}
        self.check_runs: dict[int, CheckRun] = {}
        self.statuses: list[Status] = []
        self.numbers = itertools.count(1)

    @property
    def full_name(self) -> str:
        """owner/name."""
        return f"{self.owner}/{self.name}"

    @property
    def api(self) -> str:
        """The repository's REST API address."""
        return f"{self.server.base}/api/v3/repos/{self.full_name}"

    def git(self, *args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> str:
        """Run git on the bare repository (with `env` and `stdin` when given); returns its output."""
        return subprocess.run(
            ["git", f"--git-dir={self.git_dir}", *args],
            check=True,
            capture_output=True,
            text=True,
            input=stdin,
            env=env,
        ).stdout

    def commit_to(self, branch: str, files: dict[str, str], message: str, author: str = "octocat") -> str:
        """Commit `files` (path -> text) on top of `branch` (made from the default branch when it
        does not exist), as a push by `author` would; returns the new commit's SHA."""
        parent = self.sha(branch) or self.sha(self.default_branch) or ""
        with tempfile.TemporaryDirectory() as scratch:
            env = {
                "PATH": "/usr/bin:/bin",
                "GIT_INDEX_FILE": f"{scratch}/index",
                "GIT_CONFIG_GLOBAL": "/dev/null",
                "GIT_CONFIG_NOSYSTEM": "1",
                "GIT_AUTHOR_NAME": author,
                "GIT_AUTHOR_EMAIL": f"{author}@example.com",
                "GIT_COMMITTER_NAME": author,
                "GIT_COMMITTER_EMAIL": f"{author}@example.com",
            }
            self.git("read-tree", parent, env=env)
            for path, text in files.items():
                blob = self.git("hash-object", "-w", "--stdin", env=env, stdin=text).strip()
                self.git("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env=env)
            tree = self.git("write-tree", env=env).strip()
            sha = self.git("commit-tree", tree, "-p", parent, "-m", message, env=env).strip()
        self.git("update-ref", f"refs/heads/{branch}", sha)
        return sha

    def sha(self, branch: str) -> str | None:
        """The SHA `branch` points at, or None when there is no such branch."""
        try:
            return self.git("rev-parse", "--verify", "-q", f"refs/heads/{branch}").strip() or None
        except subprocess.CalledProcessError:
            return None

    def commit(self, ref: str) -> str | None:
        """The full SHA of the commit `ref` (a SHA, branch or tag) names, or None."""
        try:
            return self.git("rev-parse", "--verify", "-q", f"{ref}^{{commit}}").strip() or None
        except subprocess.CalledProcessError:
            return None

    def contains(self, ancestor: str, descendant: str) -> bool:
        """Whether commit `ancestor` is `descendant` or one of its ancestors."""
        found = subprocess.run(
            ["git", f"--git-dir={self.git_dir}", "merge-base", "--is-ancestor", ancestor, descendant],
            capture_output=True,
            check=False,
        )
        return found.returncode == 0

    def json(self) -> dict[str, Any]:
        """The repository in GitHub's REST shape (full-repository)."""
        base, owner, api = self.server.base, user(self.owner, self.server.base), self.api
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
        """Store an open issue (number: the next free one unless given) in GitHub's REST shape."""
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
            "user": user(author, self.server.base),
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
        """The label `name` in GitHub's REST shape."""
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
        """Set an issue's (and its pull request's) labels to `names`, in order, without repeats."""
        issue["labels"] = [self.label(n) for n in dict.fromkeys(names)]
        if issue["number"] in self.pulls:
            self.pulls[issue["number"]]["labels"] = issue["labels"]
