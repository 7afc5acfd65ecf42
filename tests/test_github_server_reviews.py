"""The test GitHub server's review comments and threads (REST and GraphQL), requested reviewers,
check runs and commit statuses: shapes checked against GitHub's OpenAPI description (githubkit's
models), PyGithub using the REST endpoints, and GitHub's rules (lines outside the diff, outdated
threads, pagination) kept."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from github import Auth, Github
from githubkit_schemas.latest import models

from tests.support.github_server import GitHubServer, Repo

TOKEN = "test-token-456"
CALC = "def add(a, b):\n    return a - b\n\n\ndef sub(a, b):\n    return a - b\n"
FIXED = "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b  # subtract\n"

THREADS = """
query($owner: String!, $name: String!, $number: Int!, $after: String) {
  repository(owner: $owner, name: $name) {
    pullRequest(number: $number) {
      id number headRefName headRefOid
      reviewThreads(first: 1, after: $after) {
        pageInfo { hasNextPage endCursor }
        totalCount
        nodes {
          id isResolved isOutdated path line
          comments(first: 10) {
            nodes { id databaseId body author { login } createdAt url replyTo { databaseId } }
          }
        }
      }
    }
  }
}
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[GitHubServer]:
    found = GitHubServer(tmp_path, TOKEN).start()
    try:
        yield found
    finally:
        found.stop()


def call(
    server: GitHubServer, method: str, path: str, body: Any = None, token: str = TOKEN
) -> tuple[int, Any, dict[str, str]]:
    """(status, parsed JSON, headers) of one request to the server's REST API (or a full path)."""
    url = path if path.startswith("http") else server.api_url + path
    request = urllib.request.Request(
        url,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None, dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null"), dict(error.headers)


def graphql(
    server: GitHubServer, query: str, variables: dict[str, Any] | None = None, path: str = "/api/graphql"
) -> dict[str, Any]:
    """The answer (data and errors) to one GraphQL request, which GitHub gives with status 200."""
    status, answer, _ = call(server, "POST", server.base + path, {"query": query, "variables": variables or {}})
    assert status == 200
    found: dict[str, Any] = answer
    return found


def on_pull(server: GitHubServer, number: int, selection: str) -> dict[str, Any]:
    """The answer to `selection` on pull request `number` of octo/demo."""
    query = 'query($number: Int!) { repository(owner: "octo", name: "demo") { pullRequest(number: $number) { '
    return graphql(server, query + selection + " } } }", {"number": number})


def pull_request(server: GitHubServer) -> tuple[Repo, int, str]:
    """octo/demo with a pull request from `fix` (changing lines 2 and 6 of calc.py): (repo, number, head SHA)."""
    repo = server.create_repo("octo/demo", {"calc.py": CALC, "README.md": "# demo\n"})
    head = repo.commit_to("fix", {"calc.py": FIXED}, "fix add")
    pull = server._pull(repo, {"title": "Fix add", "head": "fix", "base": "main", "body": "Fixes it"})
    return repo, pull["number"], head


def test_review_comments_replies_and_reviews_have_githubs_shapes(server: GitHubServer) -> None:
    _, number, head = pull_request(server)
    pulls = f"/repos/octo/demo/pulls/{number}"
    status, first, _ = call(
        server, "POST", f"{pulls}/comments", {"body": "Why +?", "commit_id": head, "path": "calc.py", "line": 2}
    )
    assert status == 201
    comment = models.PullRequestReviewComment.model_validate(first)
    assert (comment.line, comment.side, comment.path, comment.commit_id) == (2, "RIGHT", "calc.py", head)
    assert comment.diff_hunk.startswith("@@ -1,") and comment.diff_hunk.endswith("+    return a + b")
    assert "in_reply_to_id" not in first and comment.user is not None and comment.user.login == "pipe-bot"
    status, answer, _ = call(server, "POST", f"{pulls}/comments", {"body": "Because.", "in_reply_to": first["id"]})
    assert status == 201 and models.PullRequestReviewComment.model_validate(answer).in_reply_to_id == first["id"]
    status, again, _ = call(server, "POST", f"{pulls}/comments/{answer['id']}/replies", {"body": "Thanks"})
    assert status == 201 and again["in_reply_to_id"] == first["id"]  # replies answer the thread's first comment
    status, one, _ = call(server, "GET", f"/repos/octo/demo/pulls/comments/{first['id']}")
    assert status == 200 and models.PullRequestReviewComment.model_validate(one).body == "Why +?"
    status, listed, _ = call(server, "GET", f"{pulls}/comments")
    assert [c["body"] for c in listed] == ["Why +?", "Because.", "Thanks"]
    for found in listed:
        models.PullRequestReviewComment.model_validate(found)
    # every comment posted on its own is a COMMENTED review with an empty body, as on GitHub
    assert {c["pull_request_review_id"] for c in listed} == {
        r["id"] for r in call(server, "GET", f"{pulls}/reviews")[1]
    }
    review = server.review(
        "octo/demo",
        number,
        "alice",
        "Two things",
        "REQUEST_CHANGES",
        [{"path": "calc.py", "line": 2, "body": "Use sum"}, {"path": "calc.py", "line": 6, "body": "And here"}],
    )
    assert models.PullRequestReview.model_validate(review).state == "CHANGES_REQUESTED"
    assert "comments" not in review and "number" not in review
    status, reviewed, _ = call(server, "GET", f"{pulls}/reviews/{review['id']}")
    assert status == 200 and models.PullRequestReview.model_validate(reviewed).user.login == "alice"  # type: ignore[union-attr]
    threads = server.review_threads("octo/demo", number)
    assert [(t.path, t.line, len(t.comments)) for t in threads] == [
        ("calc.py", 2, 3),
        ("calc.py", 2, 1),
        ("calc.py", 6, 1),
    ]
    status, edited, _ = call(server, "PATCH", f"/repos/octo/demo/pulls/comments/{again['id']}", {"body": "Thx"})
    assert status == 200 and edited["body"] == "Thx"
    assert call(server, "DELETE", f"/repos/octo/demo/pulls/comments/{again['id']}")[0] == 204
    assert len(call(server, "GET", f"{pulls}/comments")[1]) == 4


def test_comments_outside_the_diff_are_refused_as_github_does(server: GitHubServer) -> None:
    _, number, head = pull_request(server)
    pulls = f"/repos/octo/demo/pulls/{number}"
    status, refused, _ = call(
        server, "POST", f"{pulls}/comments", {"body": "x", "commit_id": head, "path": "README.md", "line": 1}
    )
    assert status == 422
    status, refused, _ = call(
        server,
        "POST",
        f"{pulls}/reviews",
        {"event": "COMMENT", "comments": [{"path": "calc.py", "line": 40, "body": "x"}]},
    )
    assert status == 422 and "Pull request review thread line must be part of the diff" in refused["errors"][0]
    assert call(server, "GET", f"{pulls}/reviews")[1] == []  # all or nothing
    status, refused, _ = call(
        server, "POST", f"{pulls}/comments", {"body": "x", "commit_id": "0" * 40, "path": "calc.py", "line": 2}
    )
    assert status == 422 and refused["errors"][0]["field"] == "commit_id"
    # a line of the old side is commented on the LEFT; a range must stay in one hunk
    status, left, _ = call(
        server,
        "POST",
        f"{pulls}/comments",
        {"body": "was -", "commit_id": head, "path": "calc.py", "line": 2, "side": "LEFT", "start_line": 1},
    )
    assert status == 422 and "start line" in left["errors"][0]
    status, left, _ = call(
        server,
        "POST",
        f"{pulls}/comments",
        {"body": "was -", "commit_id": head, "path": "calc.py", "line": 2, "side": "LEFT"},
    )
    assert status == 201 and (left["side"], left["line"], left["position"]) == ("LEFT", 2, 2)
    status, whole, _ = call(
        server,
        "POST",
        f"{pulls}/comments",
        {"body": "file", "commit_id": head, "path": "calc.py", "subject_type": "file"},
    )
    assert status == 201 and whole["subject_type"] == "file" and whole["line"] is None
    assert call(server, "POST", f"{pulls}/comments/999999/replies", {"body": "x"})[0] == 404


def test_comments_since_and_pages(server: GitHubServer) -> None:
    _, number, _ = pull_request(server)
    moments = iter([1_800_000_000.0 + i for i in range(100)])
    server.clock = lambda: next(moments)
    for index in range(5):
        server.review_comment("octo/demo", number, "alice", f"c{index}", path="calc.py", line=2)
    pulls = f"/repos/octo/demo/pulls/{number}/comments"
    since = server.review_comments("octo/demo", number)[3]["updated_at"]
    assert [c["body"] for c in call(server, "GET", f"{pulls}?since={since}")[1]] == ["c3", "c4"]
    _, page, headers = call(server, "GET", f"{pulls}?per_page=2&sort=created&direction=desc")
    assert [c["body"] for c in page] == ["c4", "c3"]
    assert 'rel="next"' in headers["Link"] and "page=3" in headers["Link"]
    assert [c["body"] for c in call(server, "GET", f"{pulls}?per_page=2&page=3")[1]] == ["c4"]


def test_pygithub_uses_the_review_and_checks_endpoints(server: GitHubServer) -> None:
    _, number, head = pull_request(server)
    client = Github(
        auth=Auth.Token(TOKEN), base_url=server.api_url, seconds_between_requests=0, seconds_between_writes=0
    )
    try:
        repository = client.get_repo("octo/demo")
        pull = repository.get_pull(number)
        commit = repository.get_commit(head)
        assert commit.sha == head and commit.commit.message == "fix add" and commit.stats.additions == 2
        made = pull.create_review_comment("Why?", commit, "calc.py", line=2, side="RIGHT")
        assert (made.path, made.line, made.original_line, made.user.login) == ("calc.py", 2, 2, "pipe-bot")
        answer = pull.create_review_comment_reply(made.id, "Because")
        assert answer.in_reply_to_id == made.id
        assert [c.body for c in pull.get_review_comments()] == ["Why?", "Because"]
        later = server.review_comment("octo/demo", number, "alice", "Later", path="calc.py", line=6)
        assert [c.body for c in pull.get_review_comments(since=_date(later["updated_at"]))][-1] == "Later"
        _, answer_data = client.requester.graphql_query(THREADS, {"owner": "octo", "name": "demo", "number": number})
        (thread,) = answer_data["data"]["repository"]["pullRequest"]["reviewThreads"]["nodes"]
        _, resolved = client.requester.graphql_named_mutation(
            "resolveReviewThread", {"threadId": thread["id"]}, "thread { isResolved }"
        )
        assert resolved == {"thread": {"isResolved": True}}
        server.add_check_run("octo/demo", head, "tests", "failure")
        server.set_status("octo/demo", head, "success", "lint")
        (run,) = commit.get_check_runs()
        assert (run.name, run.status, run.conclusion) == ("tests", "completed", "failure")
        combined = commit.get_combined_status()
        assert combined.state == "success" and [s.context for s in combined.statuses] == ["lint"]
        pull.create_review_request(reviewers=["alice"])
        users, _teams = pull.get_review_requests()
        assert [u.login for u in users] == ["alice"]
    finally:
        client.close()


def _date(text: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_graphql_review_threads_resolve_and_reply(server: GitHubServer) -> None:
    repo, number, head = pull_request(server)
    review = server.review(
        "octo/demo",
        number,
        "alice",
        "Please fix",
        "REQUEST_CHANGES",
        [{"path": "calc.py", "line": 2, "body": "Use sum"}, {"path": "calc.py", "line": 6, "body": "Typo"}],
    )
    first_id = server.review_comments("octo/demo", number)[0]["id"]
    server.review_comment("octo/demo", number, "bob[bot]", "+1", in_reply_to=first_id)
    variables = {"owner": "octo", "name": "demo", "number": number}
    answer = graphql(server, THREADS, variables)
    assert "errors" not in answer
    pull = answer["data"]["repository"]["pullRequest"]
    assert (pull["number"], pull["headRefName"], pull["headRefOid"]) == (number, "fix", head)
    threads = pull["reviewThreads"]
    assert threads["totalCount"] == 2 and threads["pageInfo"]["hasNextPage"] is True
    (thread,) = threads["nodes"]
    assert (thread["isResolved"], thread["isOutdated"], thread["path"], thread["line"]) == (False, False, "calc.py", 2)
    opening, bot = thread["comments"]["nodes"]
    assert (opening["author"]["login"], opening["databaseId"], opening["replyTo"]) == ("alice", first_id, None)
    assert opening["url"].endswith(f"#discussion_r{first_id}") and opening["id"].startswith("PRRC_")
    assert (bot["author"]["login"], bot["replyTo"]) == ("bob", {"databaseId": first_id})  # GraphQL drops "[bot]"
    after = threads["pageInfo"]["endCursor"]
    second = graphql(server, THREADS, {**variables, "after": after}, path="/graphql")["data"]["repository"]
    assert second["pullRequest"]["reviewThreads"]["pageInfo"]["hasNextPage"] is False
    assert second["pullRequest"]["reviewThreads"]["nodes"][0]["line"] == 6

    replied = graphql(
        server,
        """mutation($thread: ID!) {
          addPullRequestReviewThreadReply(input: {pullRequestReviewThreadId: $thread, body: "Fixed in abc"}) {
            comment { databaseId body author { login } replyTo { databaseId } }
          }
          resolveReviewThread(input: {threadId: $thread, clientMutationId: "m1"}) {
            clientMutationId thread { id isResolved resolvedBy { login } viewerCanUnresolve }
          }
        }""",
        {"thread": thread["id"]},
    )["data"]
    comment = replied["addPullRequestReviewThreadReply"]["comment"]
    assert (comment["body"], comment["author"]["login"], comment["replyTo"]) == (
        "Fixed in abc",
        "pipe-bot",
        {"databaseId": first_id},
    )
    resolved = replied["resolveReviewThread"]
    assert resolved["clientMutationId"] == "m1"
    assert resolved["thread"] == {
        "id": thread["id"],
        "isResolved": True,
        "resolvedBy": {"login": "pipe-bot"},
        "viewerCanUnresolve": True,
    }
    rest = call(server, "GET", f"/repos/octo/demo/pulls/{number}/comments")[1]
    assert rest[-1]["body"] == "Fixed in abc" and rest[-1]["in_reply_to_id"] == first_id
    assert [t.resolved_by for t in server.review_threads("octo/demo", number)] == ["pipe-bot", None]
    reviews = on_pull(
        server,
        number,
        "reviews(first: 10, states: [CHANGES_REQUESTED]) { nodes { databaseId state author { login } } }",
    )["data"]["repository"]["pullRequest"]["reviews"]["nodes"]
    assert reviews == [{"databaseId": review["id"], "state": "CHANGES_REQUESTED", "author": {"login": "alice"}}]
    assert repo.threads  # state is readable from the repository too


def test_threads_follow_pushes_and_become_outdated(server: GitHubServer) -> None:
    repo, number, _ = pull_request(server)
    server.review(
        "octo/demo",
        number,
        "alice",
        comments=[{"path": "calc.py", "line": 2, "body": "on add"}, {"path": "calc.py", "line": 6, "body": "on sub"}],
    )
    moved = "# calculator\n" + FIXED.replace("# subtract", "# subtracts b")
    head = repo.commit_to("fix", {"calc.py": moved}, "comment sub; add a header")
    on_add, on_sub = server.review_comments("octo/demo", number)
    assert (on_add["line"], on_add["original_line"], on_add["commit_id"]) == (3, 2, head)
    assert (on_sub["line"], on_sub["original_line"], on_sub["position"]) == (None, 6, None)
    answer = on_pull(
        server,
        number,
        "reviewThreads(last: 5) { nodes { line originalLine isOutdated comments(first: 1) { nodes { outdated } } } }",
    )
    nodes = answer["data"]["repository"]["pullRequest"]["reviewThreads"]["nodes"]
    assert [(n["line"], n["originalLine"], n["isOutdated"]) for n in nodes] == [(3, 2, False), (None, 6, True)]
    assert [n["comments"]["nodes"][0]["outdated"] for n in nodes] == [False, True]


def test_graphql_errors_are_githubs(server: GitHubServer) -> None:
    _, number, _ = pull_request(server)
    missing = graphql(server, 'query { repository(owner: "octo", name: "nope") { id } }')
    assert missing["data"] == {"repository": None}
    assert missing["errors"][0]["type"] == "NOT_FOUND" and missing["errors"][0]["path"] == ["repository"]
    assert missing["errors"][0]["message"] == "Could not resolve to a Repository with the name 'octo/nope'."
    unpaged = on_pull(server, number, "reviewThreads { totalCount }")
    assert unpaged["errors"][0]["type"] == "MISSING_PAGINATION_BOUNDARIES"
    too_many = on_pull(server, number, "reviewThreads(first: 101) { totalCount }")
    assert too_many["errors"][0]["type"] == "EXCESSIVE_PAGINATION"
    invalid = graphql(server, "query { repository(owner: 1) { nope } }")
    assert "data" not in invalid and invalid["errors"]
    unknown = graphql(server, 'mutation { resolveReviewThread(input: {threadId: "PRRT_1"}) { thread { id } } }')
    assert unknown["errors"][0]["type"] == "NOT_FOUND"
    assert graphql(server, "query { viewer { login } }")["data"] == {"viewer": {"login": "pipe-bot"}}
    status, _, _ = call(server, "POST", server.graphql_url, {"query": "query { viewer { login } }"}, token="wrong")
    assert status == 401


def test_requested_reviewers_are_asked_again_after_a_review(server: GitHubServer) -> None:
    _, number, _ = pull_request(server)
    path = f"/repos/octo/demo/pulls/{number}/requested_reviewers"
    status, pull, _ = call(server, "POST", path, {"reviewers": ["alice", "bob"]})
    assert status == 201 and models.PullRequest.model_validate(pull).number == number
    requested = models.PullRequestReviewRequest.model_validate(call(server, "GET", path)[1])
    assert [u.login for u in requested.users] == ["alice", "bob"]
    server.review("octo/demo", number, "alice", "ok", "APPROVE")
    assert server.requested_reviewers("octo/demo", number) == ["bob"]
    assert call(server, "POST", path, {"reviewers": ["alice"]})[0] == 201  # re-requested
    assert server.requested_reviewers("octo/demo", number) == ["bob", "alice"]
    status, refused, _ = call(server, "POST", path, {"reviewers": ["pipe-bot"]})
    assert status == 422 and "author" in refused["message"]
    assert call(server, "DELETE", path, {"reviewers": ["bob"]})[0] == 200
    assert server.requested_reviewers("octo/demo", number) == ["alice"]


def test_check_runs_and_statuses_have_githubs_shapes(server: GitHubServer) -> None:
    _, number, head = pull_request(server)
    status, made, _ = call(
        server, "POST", "/repos/octo/demo/check-runs", {"name": "build", "head_sha": head, "status": "in_progress"}
    )
    assert status == 201 and models.CheckRun.model_validate(made).status == "in_progress"
    status, done, _ = call(
        server,
        "PATCH",
        f"/repos/octo/demo/check-runs/{made['id']}",
        {"conclusion": "success", "output": {"title": "ok", "summary": "all green"}},
    )
    assert status == 200 and (done["status"], done["conclusion"], done["output"]["summary"]) == (
        "completed",
        "success",
        "all green",
    )
    listed = call(server, "GET", "/repos/octo/demo/commits/fix/check-runs")[1]
    found = models.ReposOwnerRepoCommitsRefCheckRunsGetResponse200.model_validate(listed)
    assert found.total_count == 1 and found.check_runs[0].pull_requests[0].number == number
    status, posted, _ = call(
        server, "POST", f"/repos/octo/demo/statuses/{head}", {"state": "pending", "context": "ci/lint"}
    )
    assert status == 201 and models.Status.model_validate(posted).creator is not None
    server.set_status("octo/demo", head, "failure", "ci/test")
    combined = models.CombinedCommitStatus.model_validate(
        call(server, "GET", f"/repos/octo/demo/commits/{head}/status")[1]
    )
    assert combined.state == "failure" and combined.total_count == 2
    server.set_status("octo/demo", head, "success", "ci/test")
    server.set_status("octo/demo", head, "success", "ci/lint")
    assert call(server, "GET", "/repos/octo/demo/commits/fix/status")[1]["state"] == "success"
    statuses = call(server, "GET", f"/repos/octo/demo/commits/{head}/statuses")[1]
    assert [(s["context"], s["state"]) for s in statuses][:2] == [("ci/lint", "success"), ("ci/test", "success")]
    for each in statuses:
        models.Status.model_validate(each)
    models.Commit.model_validate(call(server, "GET", f"/repos/octo/demo/commits/{head}")[1])
    assert call(server, "GET", "/repos/octo/demo/commits/nope/status")[0] == 422
    assert call(server, "POST", f"/repos/octo/demo/statuses/{head}", {"state": "green"})[0] == 422
    empty = server.repos["octo/demo"].sha("main") or ""
    assert call(server, "GET", f"/repos/octo/demo/commits/{empty}/status")[1]["state"] == "pending"


def test_a_scripted_check_run_completes_after_polls_and_time(server: GitHubServer) -> None:
    _, _, head = pull_request(server)
    now = [1_800_000_000.0]
    server.clock = lambda: now[0]
    server.add_check_run("octo/demo", head, "slow", "success", polls=2)
    server.add_check_run("octo/demo", head, "timed", "failure", seconds=3)

    def states() -> dict[str, tuple[str, str | None]]:
        runs = call(server, "GET", f"/repos/octo/demo/commits/{head}/check-runs")[1]["check_runs"]
        return {r["name"]: (r["status"], r["conclusion"]) for r in runs}

    assert states() == {"slow": ("in_progress", None), "timed": ("in_progress", None)}
    assert states()["slow"] == ("in_progress", None)
    assert states()["slow"] == ("completed", "success")
    now[0] += 3
    assert states()["timed"] == ("completed", "failure")
