"""The forge interface (where issues, pull requests, comments and releases live) and its records.

Implementations: runner/forges/github.py (the REST API through PyGithub) and runner/forges/local.py
(markdown issue files and records under the state directory). Writes are made idempotent by the
callers with `marker()`: a hidden HTML comment in the body names what wrote it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol

from runner.errors import PipeError


class ForgeError(PipeError):
    """The forge refused or failed a request; the message says which and why."""


@dataclass(frozen=True)
class Issue:
    number: int
    title: str
    body: str
    labels: tuple[str, ...]
    author: str
    url: str
    state: str = "open"
    milestone: str | None = None
    blocked_by: tuple[int, ...] = ()


@dataclass(frozen=True)
class Comment:
    id: int
    body: str
    url: str
    author: str = ""


@dataclass(frozen=True)
class PullRequest:
    number: int
    url: str
    title: str
    body: str
    head: str
    base: str
    draft: bool = False
    state: str = "open"
    labels: tuple[str, ...] = ()
    head_sha: str = ""


@dataclass(frozen=True)
class Release:
    id: int
    tag: str
    name: str
    body: str
    draft: bool
    url: str


@dataclass(frozen=True)
class FileDiff:
    path: str
    status: str
    additions: int
    deletions: int
    patch: str


@dataclass(frozen=True)
class ReviewComment:
    path: str
    line: int
    body: str


@dataclass(frozen=True)
class ThreadComment:
    """One comment of a review thread: its REST id (`id`, for deleting it), author login (a bot's
    without the "[bot]" suffix, as GitHub's GraphQL API gives it), body and address, and how its
    author is associated with the repository (GitHub's authorAssociation: OWNER, MEMBER,
    COLLABORATOR, CONTRIBUTOR, FIRST_TIME_CONTRIBUTOR, FIRST_TIMER, MANNEQUIN, NONE; "" when the
    forge does not say)."""

    id: int
    author: str
    body: str
    url: str = ""
    association: str = ""


@dataclass(frozen=True)
class ReviewThread:
    """A conversation on a pull request's diff: `id` its GraphQL node id, `path` and `line` where it
    sits at the head now (`line` None when outdated or on the whole file), `resolved`, and its
    `comments`, the first one opening it."""

    id: str
    path: str
    line: int | None
    resolved: bool
    outdated: bool
    comments: tuple[ThreadComment, ...]

    @property
    def url(self) -> str:
        """The address of the thread's first comment ("" when it has none)."""
        return self.comments[0].url if self.comments else ""


@dataclass(frozen=True)
class ThreadReply:
    """A reply pipe made in a review thread: its REST id and address."""

    id: int
    url: str


@dataclass(frozen=True)
class CheckState:
    """One check of a commit: a check run (`kind` "check") or a commit status ("status").
    `status` is queued | in_progress | completed (a status is completed unless pending);
    `conclusion` success | failure | neutral | cancelled | skipped | timed_out | action_required |
    stale | error, or "" while not completed."""

    name: str
    kind: str
    status: str
    conclusion: str
    url: str = ""


@dataclass(frozen=True)
class CloneSource:
    """How a sandbox reaches the repository: `url` for git, and host paths to mount (host, container)."""

    url: str
    mounts: tuple[tuple[str, str], ...] = field(default=())
    needs_token: bool = True


class Forge(Protocol):
    """A place where one repository's issues and pull requests live: `name` says which kind
    (`github`, `local`), `repo` which repository, `api_url` the base URL of its REST API ("" for a
    forge that has none, such as the local one)."""

    name: str
    repo: str
    api_url: str

    def describe(self) -> dict[str, str]:
        """What a later process needs to open this forge again (stored with changes)."""
        ...

    def default_branch(self) -> str: ...
    def clone_source(self) -> CloneSource: ...
    def issue(self, number: int) -> Issue: ...
    def issues(self, state: str = "open") -> list[Issue]: ...
    def comments(self, issue: int) -> list[Comment]: ...
    def create_issue(
        self, title: str, body: str, labels: list[str], milestone: str | None, blocked_by: list[int]
    ) -> Issue:
        """A new issue; `blocked_by` as the forge keeps it (front matter, or "Blocked by #N" lines)."""
        ...

    def create_comment(self, issue: int, body: str) -> Comment: ...
    def update_comment(self, issue: int, comment_id: int, body: str) -> Comment: ...
    def delete_comment(self, issue: int, comment_id: int) -> None: ...
    def find_pull_request(self, head: str) -> PullRequest | None: ...
    def pull_request(self, number: int) -> PullRequest: ...
    def create_pull_request(self, title: str, body: str, head: str, base: str, draft: bool) -> PullRequest: ...
    def update_pull_request(
        self, number: int, *, title: str | None = None, body: str | None = None, state: str | None = None
    ) -> PullRequest: ...
    def pull_request_files(self, number: int) -> list[FileDiff]: ...
    def request_reviewers(self, number: int, reviewers: list[str]) -> None: ...
    def create_review(self, number: int, body: str, event: str, comments: list[ReviewComment]) -> int: ...
    def reviews(self, number: int) -> list[tuple[int, str]]:
        """(id, body) of the pull request's reviews."""
        ...

    def add_labels(self, issue: int, labels: list[str]) -> None: ...
    def remove_label(self, issue: int, label: str) -> None: ...
    def releases(self) -> list[Release]: ...
    def create_release(self, tag: str, name: str, body: str, draft: bool, target: str | None) -> Release: ...
    def update_release(self, release_id: int, *, name: str, body: str) -> Release: ...
    def delete_release(self, release_id: int) -> None: ...
    def branch_sha(self, branch: str) -> str | None: ...
    def set_branch(self, branch: str, sha: str) -> None: ...
    def delete_branch(self, branch: str) -> None: ...

    # Review feedback and CI (GitHub only: the local forge raises ForgeError for these).
    def viewer_login(self) -> str:
        """The login pipe writes as (an App's is "<slug>[bot]")."""
        ...

    def review_threads(self, number: int) -> list[ReviewThread]:
        """The review threads of pull request `number`, in creation order."""
        ...

    def reply_to_thread(self, number: int, thread: str, body: str) -> ThreadReply:
        """Reply `body` in review thread `thread` (its node id) of pull request `number`."""
        ...

    def delete_review_comment(self, comment_id: int) -> None:
        """Delete review comment `comment_id` (a reply pipe made); one already gone is no error."""
        ...

    def resolve_thread(self, thread: str) -> None: ...
    def unresolve_thread(self, thread: str) -> None: ...
    def reviewers(self, number: int) -> list[str]:
        """Logins that reviewed pull request `number` (submitted a review), first review first."""
        ...

    def checks(self, sha: str) -> list[CheckState]:
        """The check runs and commit statuses (the newest per context) of commit `sha`."""
        ...

    def credential_token(self) -> str | None:
        """The token the `github` credential carries when the forge chooses it (a GitHub App
        installation token), else None: the credential takes GITHUB_TOKEN / --token-file."""
        ...


_BLOCKED_BY = re.compile(r"(?i)\b(?:blocked by|depends on)\b:?((?:\s*(?:,|and)?\s*#\d+)+)")


def blocked_by(body: str, labels: tuple[str, ...] = ()) -> tuple[int, ...]:
    """Issue numbers an issue waits for: "blocked by #3, #4" or "depends on #5" lines in its body,
    and labels `blocked-by:N` (the convention on GitHub, which has no field for it)."""
    found: list[int] = []
    for match in _BLOCKED_BY.finditer(body or ""):
        found += [int(number) for number in re.findall(r"#(\d+)", match.group(1))]
    for label in labels:
        if label.lower().startswith("blocked-by:") and label.split(":", 1)[1].strip().lstrip("#").isdigit():
            found.append(int(label.split(":", 1)[1].strip().lstrip("#")))
    return tuple(dict.fromkeys(found))


def marker(kind: str, key: str) -> str:
    """The hidden marker pipe puts in bodies it writes, e.g. `<!-- pipe:comment issue-to-pr/notify/12 -->`."""
    return f"<!-- pipe:{kind} {key} -->"


def has_marker(body: str | None, kind: str, key: str) -> bool:
    return marker(kind, key) in (body or "")


def with_marker(body: str, kind: str, key: str) -> str:
    """`body` ending with the marker (once)."""
    tag = marker(kind, key)
    return body if tag in body else f"{body.rstrip()}\n\n{tag}\n"
