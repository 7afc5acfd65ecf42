"""REST routes for reviews, review comments and requested reviewers of a pull request. Writes are
made as the token's user or App bot (`server.actor`); each route takes (server, repo, query, body,
*path groups) and answers (status, JSON) or a Page."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from tests.support.github_server import reviews
from tests.support.github_server.shapes import ApiError, Page, user

if TYPE_CHECKING:
    from tests.support.github_server.repo import Repo
    from tests.support.github_server.reviews import ReviewComment
    from tests.support.github_server.server import GitHubServer

Query = dict[str, list[str]]


def listed(server: GitHubServer, repo: Repo, found: list[ReviewComment], query: Query) -> Page:
    """Review comments filtered by `since` (updated at or after) and sorted as GitHub's `sort`
    ("created" or "updated") and `direction` ("asc" unless given with a sort) ask."""
    since = query.get("since", [None])[0]
    if since:
        moment = datetime.fromisoformat(since.replace("Z", "+00:00"))
        found = [c for c in found if datetime.fromisoformat(c.updated_at.replace("Z", "+00:00")) >= moment]
    sort = query.get("sort", ["created"])[0]
    descending = "sort" in query and query.get("direction", ["asc"])[0] == "desc"
    found.sort(key=lambda c: (c.updated_at if sort == "updated" else c.created_at, c.id), reverse=descending)
    return Page([reviews.render(server, repo, c) for c in found])


def _list_pull_comments(server: GitHubServer, repo: Repo, query: Query, data: Any, number: str) -> tuple[int, Any]:
    repo.pulls[int(number)]
    return 200, listed(server, repo, [c for c in repo.review_comments.values() if c.number == int(number)], query)


def _list_repo_comments(server: GitHubServer, repo: Repo, query: Query, data: Any) -> tuple[int, Any]:
    return 200, listed(server, repo, list(repo.review_comments.values()), query)


def _create_comment(server: GitHubServer, repo: Repo, query: Query, data: Any, number: str) -> tuple[int, Any]:
    comment = reviews.post_comment(server, repo, int(number), server.actor, data)
    return 201, reviews.render(server, repo, comment)


def _create_reply(server: GitHubServer, repo: Repo, query: Query, data: Any, number: str, to: str) -> tuple[int, Any]:
    comment = reviews.reply(server, repo, int(number), server.actor, data.get("body") or "", int(to))
    return 201, reviews.render(server, repo, comment)


def _get_comment(server: GitHubServer, repo: Repo, query: Query, data: Any, comment: str) -> tuple[int, Any]:
    return 200, reviews.render(server, repo, repo.review_comments[int(comment)])


def _edit_comment(server: GitHubServer, repo: Repo, query: Query, data: Any, comment: str) -> tuple[int, Any]:
    found = repo.review_comments[int(comment)]
    if not data.get("body"):
        raise ApiError(422, {"message": "Validation Failed", "errors": [{"field": "body", "code": "missing_field"}]})
    found.body, found.updated_at = data["body"], server.now()
    return 200, reviews.render(server, repo, found)


def _delete_comment(server: GitHubServer, repo: Repo, query: Query, data: Any, comment: str) -> tuple[int, Any]:
    found = repo.review_comments.pop(int(comment))
    thread = repo.threads[found.thread]
    thread.comments.remove(found.id)
    if not thread.comments:
        del repo.threads[thread.id]
    repo.pulls[found.number]["review_comments"] -= 1
    return 204, None


def _create_review(server: GitHubServer, repo: Repo, query: Query, data: Any, number: str) -> tuple[int, Any]:
    return 200, reviews.public(reviews.submit_review(server, repo, int(number), server.actor, data))


def _list_reviews(server: GitHubServer, repo: Repo, query: Query, data: Any, number: str) -> tuple[int, Any]:
    return 200, Page([reviews.public(r) for r in repo.reviews if r["number"] == int(number)])


def _get_review(server: GitHubServer, repo: Repo, query: Query, data: Any, number: str, review: str) -> tuple[int, Any]:
    for found in repo.reviews:
        if found["number"] == int(number) and found["id"] == int(review):
            return 200, reviews.public(found)
    raise ApiError(404, {"message": "Not Found"})


def _requested(server: GitHubServer, repo: Repo, query: Query, data: Any, number: str) -> tuple[int, Any]:
    return 200, {"users": repo.pulls[int(number)]["requested_reviewers"], "teams": []}


def _request_reviewers(server: GitHubServer, repo: Repo, query: Query, data: Any, number: str) -> tuple[int, Any]:
    """Ask for (or ask again for) reviews from `reviewers`; the author cannot be asked."""
    pull = repo.pulls[int(number)]
    logins = list(data.get("reviewers") or [])
    if pull["user"]["login"] in logins:
        raise ApiError(422, {"message": "Review cannot be requested from pull request author."})
    known = [u["login"] for u in pull["requested_reviewers"]]
    pull["requested_reviewers"] += [user(login, server.base) for login in dict.fromkeys(logins) if login not in known]
    reviews.head_sha(repo, int(number))
    return 201, pull


def _remove_reviewers(server: GitHubServer, repo: Repo, query: Query, data: Any, number: str) -> tuple[int, Any]:
    pull = repo.pulls[int(number)]
    gone = set(data.get("reviewers") or [])
    pull["requested_reviewers"] = [u for u in pull["requested_reviewers"] if u["login"] not in gone]
    return 200, pull


ROUTES: list[tuple[str, str, Any]] = [
    (r"/pulls/(\d+)/comments", "GET", _list_pull_comments),
    (r"/pulls/(\d+)/comments", "POST", _create_comment),
    (r"/pulls/(\d+)/comments/(\d+)/replies", "POST", _create_reply),
    (r"/pulls/comments", "GET", _list_repo_comments),
    (r"/pulls/comments/(\d+)", "GET", _get_comment),
    (r"/pulls/comments/(\d+)", "PATCH", _edit_comment),
    (r"/pulls/comments/(\d+)", "DELETE", _delete_comment),
    (r"/pulls/(\d+)/reviews", "POST", _create_review),
    (r"/pulls/(\d+)/reviews", "GET", _list_reviews),
    (r"/pulls/(\d+)/reviews/(\d+)", "GET", _get_review),
    (r"/pulls/(\d+)/requested_reviewers", "GET", _requested),
    (r"/pulls/(\d+)/requested_reviewers", "POST", _request_reviewers),
    (r"/pulls/(\d+)/requested_reviewers", "DELETE", _remove_reviewers),
]
