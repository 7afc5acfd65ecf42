"""Objects the GraphQL schema's fields resolve on: thin views over the test GitHub server's state.
graphql-core's default resolver reads a field from the attribute of the same name (calling it with
the field's arguments when it is a method), so attributes here carry GitHub's camelCase names."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any, ClassVar

from graphql import GraphQLError, GraphQLResolveInfo

from tests.support.github_server import reviews
from tests.support.github_server.shapes import user

if TYPE_CHECKING:
    from tests.support.github_server.repo import Repo
    from tests.support.github_server.reviews import ReviewComment, ReviewThread
    from tests.support.github_server.server import GitHubServer

Info = GraphQLResolveInfo
LIMIT = 100  # GitHub answers at most 100 nodes of a connection at once
_CURSOR = "cursor:v2:"


class Problem(GraphQLError):
    """An error GitHub reports with a `type` (NOT_FOUND, MISSING_PAGINATION_BOUNDARIES, ...)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message, extensions={"type": kind})


def connection(
    items: list[Any],
    name: str,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
    skip: int = 0,
) -> dict[str, Any]:
    """A Relay connection over `items` as GitHub pages it: `first` or `last` (at most 100) is
    required; cursors are opaque strings. Raises Problem as GitHub does for bad arguments."""
    if first is None and last is None:
        raise Problem(
            "MISSING_PAGINATION_BOUNDARIES",
            f"You must provide a `first` or `last` value to properly paginate the `{name}` connection.",
        )
    for argument, value in (("first", first), ("last", last)):
        if value is not None and value > LIMIT:
            raise Problem(
                "EXCESSIVE_PAGINATION",
                f"Requesting {value} records on the `{name}` connection exceeds the `{argument}` limit of 100 records.",
            )
    indexed = list(enumerate(items))[skip:]
    if after is not None:
        indexed = [(i, x) for i, x in indexed if i > _index(after)]
    if before is not None:
        indexed = [(i, x) for i, x in indexed if i < _index(before)]
    has_next = has_previous = False
    if first is not None:
        has_next, indexed = len(indexed) > first, indexed[:first]
    if last is not None:
        has_previous, indexed = len(indexed) > last, indexed[len(indexed) - last :] if last else []
    edges = [{"cursor": _cursor(i), "node": x} for i, x in indexed]
    return {
        "edges": edges,
        "nodes": [e["node"] for e in edges],
        "pageInfo": {
            "startCursor": edges[0]["cursor"] if edges else None,
            "endCursor": edges[-1]["cursor"] if edges else None,
            "hasNextPage": has_next,
            "hasPreviousPage": has_previous or (after is not None and bool(items)),
        },
        "totalCount": len(items),
    }


def _cursor(index: int) -> str:
    return base64.b64encode(f"{_CURSOR}{index}".encode()).decode()


def _index(cursor: str) -> int:
    try:
        text = base64.b64decode(cursor, validate=True).decode()
        if text.startswith(_CURSOR):
            return int(text.removeprefix(_CURSOR))
    except ValueError:
        pass
    raise Problem("INVALID_CURSOR_ARGUMENTS", f"`{cursor}` does not appear to be a valid cursor.")


class ActorView:
    """A User, or a Bot for a REST login ending in "[bot]" (GraphQL drops the suffix, as GitHub does)."""

    def __init__(self, server: GitHubServer, login: str) -> None:
        self.typename = "Bot" if login.endswith("[bot]") else "User"
        self.login = login.removesuffix("[bot]")
        rest = user(login, server.base)
        self.id, self.databaseId = rest["node_id"], rest["id"]
        self.url, self.resourcePath = rest["html_url"], f"/{self.login}"

    def avatarUrl(self, info: Info, size: int | None = None) -> str:
        return f"{self.url}.png" + (f"?size={size}" if size else "")


class RepositoryView:
    """A Repository: its pull requests by number."""

    typename: ClassVar[str] = "Repository"

    def __init__(self, server: GitHubServer, repo: Repo) -> None:
        self.server, self.repo = server, repo
        self.id, self.name, self.nameWithOwner = repo.json()["node_id"], repo.name, repo.full_name
        self.url = f"{server.base}/{repo.full_name}"

    def pullRequest(self, info: Info, number: int) -> PullRequestView:
        if number not in self.repo.pulls:
            raise Problem("NOT_FOUND", f"Could not resolve to a PullRequest with the number of {number}.")
        return PullRequestView(self.server, self.repo, number)


class PullRequestView:
    """A PullRequest: its refs, review threads and reviews."""

    typename: ClassVar[str] = "PullRequest"

    def __init__(self, server: GitHubServer, repo: Repo, number: int) -> None:
        self.server, self.repo, self.number = server, repo, number
        pull = repo.pulls[number]
        self.id, self.databaseId, self.title, self.url = pull["node_id"], pull["id"], pull["title"], pull["html_url"]
        self.body, self.isDraft = pull["body"] or "", bool(pull["draft"])
        self.baseRefName, self.headRefName = pull["base"]["ref"], pull["head"]["ref"]
        self.headRefOid = reviews.head_sha(repo, number)
        self.state = "MERGED" if pull.get("merged") else pull["state"].upper()
        self.author = ActorView(server, pull["user"]["login"])

    def repository(self, info: Info) -> RepositoryView:
        return RepositoryView(self.server, self.repo)

    def reviewThreads(self, info: Info, **page: Any) -> dict[str, Any]:
        found = [ThreadView(self.server, self.repo, t) for t in self.repo.threads.values() if t.number == self.number]
        return connection(
            found, "reviewThreads", page.get("first"), page.get("after"), page.get("last"), page.get("before")
        )

    def reviews(
        self, info: Info, author: str | None = None, states: list[str] | None = None, **page: Any
    ) -> dict[str, Any]:
        found = [
            ReviewView(self.server, r)
            for r in self.repo.reviews
            if r["number"] == self.number
            and (author is None or r["user"]["login"] == author)
            and (not states or r["state"] in states)
        ]
        return connection(found, "reviews", page.get("first"), page.get("after"), page.get("last"), page.get("before"))


class ReviewView:
    """A PullRequestReview, from a stored review."""

    typename: ClassVar[str] = "PullRequestReview"

    def __init__(self, server: GitHubServer, review: dict[str, Any]) -> None:
        self.id, self.databaseId, self.body, self.state = (
            review["node_id"],
            review["id"],
            review["body"],
            review["state"],
        )
        self.submittedAt, self.url = review.get("submitted_at"), review["html_url"]
        self.author = ActorView(server, review["user"]["login"])


class ThreadView:
    """A PullRequestReviewThread, where it is at the pull request's head now."""

    typename: ClassVar[str] = "PullRequestReviewThread"

    def __init__(self, server: GitHubServer, repo: Repo, thread: ReviewThread) -> None:
        self.server, self.repo, self.thread = server, repo, thread
        now = reviews.placement(repo, thread)
        self.id, self.path, self.diffSide = thread.node_id, thread.path, thread.side
        self.isOutdated, self.isResolved = now.outdated, thread.resolved_by is not None
        self.isCollapsed = self.isResolved
        self.line, self.startLine = now.line, now.start_line
        self.originalLine, self.originalStartLine = thread.line, thread.start_line
        self.startDiffSide, self.subjectType = thread.start_side, thread.subject_type.upper()
        self.viewerCanReply = True
        self.viewerCanResolve, self.viewerCanUnresolve = not self.isResolved, self.isResolved
        self.resolvedBy = ActorView(server, thread.resolved_by) if thread.resolved_by else None

    def pullRequest(self, info: Info) -> PullRequestView:
        return PullRequestView(self.server, self.repo, self.thread.number)

    def repository(self, info: Info) -> RepositoryView:
        return RepositoryView(self.server, self.repo)

    def comments(self, info: Info, skip: int = 0, **page: Any) -> dict[str, Any]:
        found = [CommentView(self.server, self.repo, self.repo.review_comments[c]) for c in self.thread.comments]
        first, after, last, before = page.get("first"), page.get("after"), page.get("last"), page.get("before")
        return connection(found, "comments", first, after, last, before, skip)


class CommentView:
    """A PullRequestReviewComment, from its REST shape."""

    typename: ClassVar[str] = "PullRequestReviewComment"

    def __init__(self, server: GitHubServer, repo: Repo, comment: ReviewComment) -> None:
        self.server, self.repo, self.comment = server, repo, comment
        rest = reviews.render(server, repo, comment)
        self.id, self.databaseId, self.fullDatabaseId = comment.node_id, comment.id, str(comment.id)
        self.body = self.bodyText = comment.body
        self.createdAt, self.updatedAt, self.url = comment.created_at, comment.updated_at, rest["html_url"]
        self.path, self.diffHunk, self.line, self.originalLine = (
            rest["path"],
            rest["diff_hunk"],
            rest["line"],
            rest["original_line"],
        )
        self.outdated = rest["line"] is None and rest["subject_type"] == "line"
        self.state, self.viewerDidAuthor = "SUBMITTED", comment.author == server.actor
        self.author = ActorView(server, comment.author)
        self.authorAssociation = rest["author_association"]

    def replyTo(self, info: Info) -> CommentView | None:
        if self.comment.reply_to is None or self.comment.reply_to not in self.repo.review_comments:
            return None
        return CommentView(self.server, self.repo, self.repo.review_comments[self.comment.reply_to])

    def pullRequest(self, info: Info) -> PullRequestView:
        return PullRequestView(self.server, self.repo, self.comment.number)

    def pullRequestReview(self, info: Info) -> ReviewView | None:
        found = [r for r in self.repo.reviews if r["id"] == self.comment.review_id]
        return ReviewView(self.server, found[0]) if found else None
