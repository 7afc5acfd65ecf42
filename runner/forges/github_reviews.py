"""Review threads, reviewers and CI checks of the GitHub forge: the part of GitHubForge that reads
and answers review feedback (through GitHub's GraphQL API, on PyGithub's requester: review
threads and their resolution exist only there) and reads the checks of a commit (REST).

A mixin: GitHubForge (runner/forges/github.py) gives it `repo`, `_client`, `_repository` and
`_call` (the retrying wrapper that turns failures into ForgeError).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, TypeVar

from runner.forges.base import CheckState, ForgeError, ReviewThread, ThreadComment, ThreadReply

T = TypeVar("T")

THREADS_QUERY = """
query($owner: String!, $name: String!, $number: Int!, $after: String) {
  repository(owner: $owner, name: $name) {
    pullRequest(number: $number) {
      reviewThreads(first: 100, after: $after) {
        pageInfo { hasNextPage endCursor }
        nodes {
          id path line isResolved isOutdated
          comments(first: 100) { nodes { databaseId body url author { login } authorAssociation } }
        }
      }
    }
  }
}
"""
MAX_THREAD_PAGES = 20  # 2,000 threads: more than any pull request a person can review


class GitHubReviews:
    """Review feedback and checks on GitHub (see the module docstring)."""

    repo: str
    _client: Any
    _app_login: str | None
    _login: str | None

    @property
    def _repository(self) -> Any:
        raise NotImplementedError

    def _call(self, what: str, function: Callable[[], T], *, write: bool = False) -> T:
        raise NotImplementedError

    def _graphql(self, what: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        """The `data` of a GraphQL query; raises ForgeError naming `what` for errors in the answer."""
        _, answer = self._call(what, lambda: self._client.requester.graphql_query(query, variables))
        return dict(answer.get("data") or {})

    def _mutate(self, what: str, name: str, given: dict[str, Any], output: str) -> dict[str, Any]:
        """Run GraphQL mutation `name` with input `given`; its payload as `output` selects it."""

        def send() -> dict[str, Any]:
            _, payload = self._client.requester.graphql_named_mutation(name, given, output)
            return dict(payload or {})

        return self._call(what, send, write=True)

    def viewer_login(self) -> str:
        if self._app_login is not None:
            return self._app_login
        if self._login is None:
            self._login = str(self._call("reading the token's user", lambda: self._client.get_user().login))
        return self._login

    def review_threads(self, number: int) -> list[ReviewThread]:
        owner, name = self.repo.split("/", 1)
        found: list[ReviewThread] = []
        after: str | None = None
        for _ in range(MAX_THREAD_PAGES):
            data = self._graphql(
                f"reading the review threads of #{number}",
                THREADS_QUERY,
                {"owner": owner, "name": name, "number": number, "after": after},
            )
            pull = (data.get("repository") or {}).get("pullRequest")
            if pull is None:
                raise ForgeError(f"GitHub {self.repo}: pull request #{number} not found")
            page = pull["reviewThreads"]
            found += [_thread(node) for node in page["nodes"] or [] if node]
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        return found

    def reply_to_thread(self, number: int, thread: str, body: str) -> ThreadReply:
        payload = self._mutate(
            f"replying in a review thread of #{number}",
            "addPullRequestReviewThreadReply",
            {"pullRequestReviewThreadId": thread, "body": body},
            "comment { databaseId url }",
        )
        comment = payload.get("comment") or {}
        return ThreadReply(id=int(comment.get("databaseId") or 0), url=str(comment.get("url") or ""))

    def delete_review_comment(self, comment_id: int) -> None:
        import github

        def delete() -> None:
            with contextlib.suppress(github.UnknownObjectException):  # already gone
                self._client.requester.requestJsonAndCheck("DELETE", f"/repos/{self.repo}/pulls/comments/{comment_id}")

        self._call(f"deleting review comment {comment_id}", delete, write=True)

    def resolve_thread(self, thread: str) -> None:
        self._mutate("resolving a review thread", "resolveReviewThread", {"threadId": thread}, "thread { id }")

    def unresolve_thread(self, thread: str) -> None:
        self._mutate("unresolving a review thread", "unresolveReviewThread", {"threadId": thread}, "thread { id }")

    def reviewers(self, number: int) -> list[str]:
        found = self._call(
            f"listing the reviews of #{number}", lambda: list(self._repository.get_pull(number).get_reviews())
        )
        return list(dict.fromkeys(item.user.login for item in found if item.user is not None))

    def checks(self, sha: str) -> list[CheckState]:
        def read() -> list[CheckState]:
            commit = self._repository.get_commit(sha)
            runs = [
                CheckState(run.name, "check", run.status, run.conclusion or "", run.html_url or "")
                for run in commit.get_check_runs()
            ]
            statuses = [
                CheckState(
                    status.context,
                    "status",
                    "in_progress" if status.state == "pending" else "completed",
                    "" if status.state == "pending" else status.state,
                    status.target_url or "",
                )
                for status in commit.get_combined_status().statuses
            ]
            return runs + statuses

        return self._call(f"reading the checks of {sha[:12]}", read)


def _thread(node: dict[str, Any]) -> ReviewThread:
    comments = tuple(
        ThreadComment(
            id=int(comment.get("databaseId") or 0),
            author=str((comment.get("author") or {}).get("login") or ""),
            body=str(comment.get("body") or ""),
            url=str(comment.get("url") or ""),
            association=str(comment.get("authorAssociation") or "NONE").upper(),
        )
        for comment in (node.get("comments") or {}).get("nodes") or []
        if comment
    )
    return ReviewThread(
        id=str(node["id"]),
        path=str(node.get("path") or ""),
        line=node.get("line"),
        resolved=bool(node.get("isResolved")),
        outdated=bool(node.get("isOutdated")),
        comments=comments,
    )
