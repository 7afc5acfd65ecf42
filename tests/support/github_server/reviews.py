"""Pull request reviews, review comments and the review threads they form, as GitHub keeps them.

A comment on a line (or a file) of a pull request's diff opens a review thread; replies join it.
Every comment belongs to a review: a comment or reply posted on its own makes a COMMENTED review
with an empty body, as GitHub does. A comment is placed on a line of the diff between the pull
request's base and the commit it was made on; when a later push changes that line the thread is
outdated (its current `line` becomes null), otherwise the line follows the edits around it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tests.support.github_server.diffs import Hunk, Spot, at_position, follow, hunks, locate
from tests.support.github_server.shapes import ApiError, association, unprocessable, user, validation_failed

if TYPE_CHECKING:
    from tests.support.github_server.repo import Repo
    from tests.support.github_server.server import GitHubServer

NOT_IN_DIFF = "Pull request review thread line must be part of the diff"
BLANK_HUNK = "Pull request review thread diff hunk can't be blank"
_STATES = {"APPROVE": "APPROVED", "REQUEST_CHANGES": "CHANGES_REQUESTED", "COMMENT": "COMMENTED"}
_INTERNAL = ("number", "comments")  # kept on stored reviews for tests, not part of GitHub's shape


@dataclass
class ReviewThread:
    """Where a conversation sits: `path` and, for subject_type "line", `line` (and `start_line`)
    on `side` of the diff at `commit_id`; `comments` are review comment ids, the first opening it."""

    id: int
    number: int
    path: str
    subject_type: str  # "line" | "file"
    side: str  # "RIGHT" (new file) | "LEFT" (old file)
    line: int | None
    start_line: int | None
    start_side: str | None
    commit_id: str
    diff_hunk: str
    position: int | None
    comments: list[int] = field(default_factory=list)
    resolved_by: str | None = None

    @property
    def node_id(self) -> str:
        return f"PRRT_{self.id}"


@dataclass
class ReviewComment:
    """One comment of a thread, by `author` (a login), in review `review_id`, made on the thread's
    `commit_id`; `reply_to` is the thread's first comment for replies. Times are ISO 8601 strings."""

    id: int
    number: int
    thread: int
    review_id: int
    author: str
    body: str
    commit_id: str
    created_at: str
    updated_at: str
    reply_to: int | None = None

    @property
    def node_id(self) -> str:
        return f"PRRC_{self.id}"


@dataclass(frozen=True)
class Placement:
    """Where a thread is at the pull request's head now: None lines when it is outdated."""

    line: int | None
    start_line: int | None
    commit_id: str
    outdated: bool
    position: int | None


def head_sha(repo: Repo, number: int) -> str:
    """The SHA of the pull request's head branch now (what it was when the branch is gone)."""
    pull = repo.pulls[number]
    sha = repo.sha(pull["head"]["ref"]) or pull["head"]["sha"]
    pull["head"]["sha"] = sha
    return str(sha)


def file_diff(repo: Repo, number: int, commit: str, path: str) -> list[Hunk]:
    """The hunks of `path` in the pull request's diff as of `commit` (base...commit)."""
    base = repo.pulls[number]["base"]["ref"]
    return hunks(repo.git("diff", "--no-color", "--no-ext-diff", f"{base}...{commit}", "--", path))


def place(repo: Repo, number: int, commit_id: str, spec: dict[str, Any], thread_id: int) -> ReviewThread:
    """A new thread for `spec` (path, line or position, side, start_line, start_side, subject_type)
    on the diff at `commit_id`. Raises ApiError 422 as GitHub does for a commit not in the pull
    request, a path it does not change, or a line outside the diff."""
    sha = repo.commit(commit_id) if commit_id else None
    if sha is None or not repo.contains(sha, head_sha(repo, number)):
        raise validation_failed("PullRequestReviewComment", "commit_id")
    path = spec.get("path")
    if not path:
        raise validation_failed("PullRequestReviewComment", "path", "missing_field")
    found = file_diff(repo, number, sha, path)
    if not found:
        raise unprocessable("Path could not be resolved")
    if spec.get("subject_type") == "file":
        return ReviewThread(thread_id, number, path, "file", "RIGHT", None, None, None, sha, found[0].header, None)
    side = spec.get("side") or "RIGHT"
    line = int(spec["line"]) if spec.get("line") is not None else None
    if line is None and spec.get("position") is not None:
        located = at_position(found, int(spec["position"]))
        if located is None:
            raise unprocessable("Pull request review thread position is invalid", BLANK_HUNK)
        line, side = located
    spot = locate(found, line, side) if line is not None else None
    if line is None or spot is None:
        raise unprocessable(NOT_IN_DIFF, BLANK_HUNK)
    start_line = int(spec["start_line"]) if spec.get("start_line") is not None else None
    start_side = (spec.get("start_side") or side) if start_line is not None else None
    if start_line is not None and start_side is not None:
        _check_start(found, spot, start_line, start_side, line)
    return ReviewThread(
        thread_id, number, path, "line", side, line, start_line, start_side, sha, spot.diff_hunk, spot.position
    )


def _check_start(found: list[Hunk], spot: Spot, start_line: int, start_side: str, line: int) -> None:
    if start_line >= line:
        raise unprocessable("Pull request review thread start line must precede the end line.")
    start = locate(found, start_line, start_side)
    if start is None or start.hunk != spot.hunk:
        raise unprocessable("Pull request review thread start line must be part of the same hunk as the line.")


def placement(repo: Repo, thread: ReviewThread) -> Placement:
    """Where `thread` is at the pull request's head: its line followed through later commits."""
    head = head_sha(repo, thread.number)
    if thread.subject_type == "file" or thread.commit_id == head:
        return Placement(thread.line, thread.start_line, head, False, thread.position)
    if thread.side == "LEFT":
        spot = locate(file_diff(repo, thread.number, head, thread.path), thread.line or 0, "LEFT")
        return Placement(thread.line, thread.start_line, head, False, spot.position if spot else None)
    changes = repo.git("diff", "--no-color", "--no-ext-diff", "-U0", thread.commit_id, head, "--", thread.path)
    line = follow(changes, thread.line or 0)
    start = follow(changes, thread.start_line) if thread.start_line is not None else None
    if line is None or (thread.start_line is not None and start is None):
        return Placement(None, None, thread.commit_id, True, None)
    spot = locate(file_diff(repo, thread.number, head, thread.path), line, "RIGHT")
    return Placement(line, start, head, False, spot.position if spot else None)


def new_review(
    server: GitHubServer, repo: Repo, number: int, author: str, body: str, state: str, commit_id: str
) -> dict[str, Any]:
    """Store a submitted review by `author` in `state`; the author is no longer a requested reviewer."""
    pull = repo.pulls[number]
    review_id = next(server.ids)
    review = {
        "id": review_id,
        "node_id": f"PRR_{review_id}",
        "user": user(author, server.base),
        "body": body,
        "state": state,
        "html_url": f"{pull['html_url']}#pullrequestreview-{review_id}",
        "pull_request_url": pull["url"],
        "_links": {"html": {"href": pull["html_url"]}, "pull_request": {"href": pull["url"]}},
        "submitted_at": server.now(),
        "commit_id": commit_id,
        "author_association": association(author, repo.owner),
        "comments": [],
        "number": number,
    }
    repo.reviews.append(review)
    pull["requested_reviewers"] = [u for u in pull["requested_reviewers"] if u["login"] != author]
    return review


def public(review: dict[str, Any]) -> dict[str, Any]:
    """A stored review as GitHub answers it (without the test server's own keys)."""
    return {k: v for k, v in review.items() if k not in _INTERNAL}


def submit_review(server: GitHubServer, repo: Repo, number: int, author: str, data: dict[str, Any]) -> dict[str, Any]:
    """A review from the body of `POST .../pulls/{n}/reviews` (event, body, commit_id, comments):
    its inline comments each open a thread; all of them are checked before any is stored."""
    commit_id = data.get("commit_id") or head_sha(repo, number)
    comments = list(data.get("comments") or [])
    threads = [place(repo, number, commit_id, spec, next(server.ids)) for spec in comments]
    state = _STATES.get(data.get("event") or "", "COMMENTED")
    review = new_review(server, repo, number, author, data.get("body") or "", state, repo.commit(commit_id) or "")
    review["comments"] = comments
    for thread, spec in zip(threads, comments, strict=True):
        _store(server, repo, thread, author, spec.get("body") or "", review["id"])
    return review


def _store(
    server: GitHubServer, repo: Repo, thread: ReviewThread, author: str, body: str, review_id: int
) -> ReviewComment:
    repo.threads[thread.id] = thread
    return _add(server, repo, thread, author, body, review_id, None)


def _add(
    server: GitHubServer,
    repo: Repo,
    thread: ReviewThread,
    author: str,
    body: str,
    review_id: int,
    reply_to: int | None,
) -> ReviewComment:
    if not body:
        raise validation_failed("PullRequestReviewComment", "body", "missing_field")
    at = server.now()
    comment = ReviewComment(
        next(server.ids), thread.number, thread.id, review_id, author, body, thread.commit_id, at, at, reply_to
    )
    repo.review_comments[comment.id] = comment
    thread.comments.append(comment.id)
    repo.pulls[thread.number]["review_comments"] += 1
    return comment


def post_comment(server: GitHubServer, repo: Repo, number: int, author: str, data: dict[str, Any]) -> ReviewComment:
    """A comment from the body of `POST .../pulls/{n}/comments`: a reply when `in_reply_to` is
    given (every other field is then ignored), else a new thread on commit_id, path and line."""
    if data.get("in_reply_to") is not None:
        return reply(server, repo, number, author, data.get("body") or "", int(data["in_reply_to"]))
    if not data.get("body"):
        raise validation_failed("PullRequestReviewComment", "body", "missing_field")
    thread = place(repo, number, data.get("commit_id") or "", data, next(server.ids))
    review = new_review(server, repo, number, author, "", "COMMENTED", thread.commit_id)
    return _store(server, repo, thread, author, data["body"], review["id"])


def reply(server: GitHubServer, repo: Repo, number: int, author: str, body: str, to: int) -> ReviewComment:
    """A reply by `author` in the thread of comment `to`; replies answer the thread's first comment.
    Raises ApiError 404 when `to` is not a review comment of this pull request."""
    target = repo.review_comments.get(to)
    if target is None or target.number != number:
        raise ApiError(404, {"message": "Not Found"})
    if not body:
        raise validation_failed("PullRequestReviewComment", "body", "missing_field")
    thread = repo.threads[target.thread]
    review = new_review(server, repo, number, author, "", "COMMENTED", head_sha(repo, number))
    return _add(server, repo, thread, author, body, review["id"], thread.comments[0])


def render(server: GitHubServer, repo: Repo, comment: ReviewComment) -> dict[str, Any]:
    """A review comment in GitHub's REST shape (pull-request-review-comment)."""
    thread = repo.threads[comment.thread]
    now = placement(repo, thread)
    url = f"{repo.api}/pulls/comments/{comment.id}"
    html = f"{server.base}/{repo.full_name}/pull/{comment.number}#discussion_r{comment.id}"
    pull_url = f"{repo.api}/pulls/{comment.number}"
    found: dict[str, Any] = {
        "url": url,
        "pull_request_review_id": comment.review_id,
        "id": comment.id,
        "node_id": comment.node_id,
        "diff_hunk": thread.diff_hunk,
        "path": thread.path,
        "position": now.position,
        "original_position": thread.position,
        "commit_id": now.commit_id,
        "original_commit_id": comment.commit_id,
        "user": user(comment.author, server.base),
        "body": comment.body,
        "created_at": comment.created_at,
        "updated_at": comment.updated_at,
        "html_url": html,
        "pull_request_url": pull_url,
        "author_association": association(comment.author, repo.owner),
        "_links": {"self": {"href": url}, "html": {"href": html}, "pull_request": {"href": pull_url}},
        "start_line": now.start_line,
        "original_start_line": thread.start_line,
        "start_side": thread.start_side,
        "line": now.line,
        "original_line": thread.line,
        "side": thread.side,
        "subject_type": thread.subject_type,
    }
    if comment.reply_to is not None:
        found["in_reply_to_id"] = comment.reply_to
    return found
