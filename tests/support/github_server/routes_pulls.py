"""REST routes for pull requests: list, open, read, edit and their changed files. Each route takes
(server, repo, query, body, *path groups) and answers (status, JSON)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.support.github_server.shapes import STAMP, user

if TYPE_CHECKING:
    from tests.support.github_server.repo import Repo
    from tests.support.github_server.server import GitHubServer

Query = dict[str, list[str]]


def new_pull(server: GitHubServer, repo: Repo, data: dict[str, Any]) -> dict[str, Any]:
    """Open a pull request from `data` (title, head, base, body, draft) by the token's user; it
    takes the next issue number, as GitHub's pull requests are issues."""
    number = next(repo.numbers)
    repo.add_issue(data["title"], data.get("body") or "", author=server.actor, number=number)
    url = f"{repo.api}/pulls/{number}"
    html = f"{server.base}/{repo.full_name}/pull/{number}"
    head, base = data["head"].split(":")[-1], data.get("base") or repo.default_branch

    def ref(branch: str) -> dict[str, Any]:
        return {
            "label": f"{repo.owner}:{branch}",
            "ref": branch,
            "sha": repo.sha(branch) or "0" * 40,
            "user": user(repo.owner, server.base),
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
        "statuses_url": f"{repo.api}/statuses/{repo.sha(head) or '0' * 40}",
        "number": number,
        "state": "open",
        "locked": False,
        "title": data["title"],
        "user": user(server.actor, server.base),
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
        "requested_teams": [],
    }
    repo.pulls[number] = pull
    return pull


def _list_pulls(server: GitHubServer, repo: Repo, query: Query, data: Any) -> tuple[int, Any]:
    state = query.get("state", ["open"])[0]
    head = query.get("head", [None])[0]
    found = [p for p in repo.pulls.values() if state == "all" or p["state"] == state]
    if head:
        found = [p for p in found if p["head"]["label"] == head or p["head"]["ref"] == head.split(":")[-1]]
    return 200, found


def _create_pull(server: GitHubServer, repo: Repo, query: Query, data: Any) -> tuple[int, Any]:
    head = data["head"].split(":")[-1]
    if repo.sha(head) is None:
        return 422, {"message": "Validation Failed", "errors": [{"field": "head", "code": "invalid"}]}
    if any(p["head"]["ref"] == head and p["state"] == "open" for p in repo.pulls.values()):
        return 422, {"message": f"A pull request already exists for {repo.owner}:{head}."}
    return 201, new_pull(server, repo, data)


def _get_pull(server: GitHubServer, repo: Repo, query: Query, data: Any, number: str) -> tuple[int, Any]:
    pull = repo.pulls[int(number)]
    pull["head"]["sha"] = repo.sha(pull["head"]["ref"]) or pull["head"]["sha"]
    return 200, pull


def _edit_pull(server: GitHubServer, repo: Repo, query: Query, data: Any, number: str) -> tuple[int, Any]:
    pull = repo.pulls[int(number)]
    issue = repo.issues.get(int(number))  # the pull request's issue shows the same title, body and state
    for key in ("title", "body", "state"):
        if key in data:
            pull[key] = data[key]
            if issue is not None:
                issue[key] = data[key]
    if data.get("state") == "closed":
        pull["closed_at"] = STAMP
    return 200, pull


def _pull_files(server: GitHubServer, repo: Repo, query: Query, data: Any, number: str) -> tuple[int, Any]:
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


ROUTES: list[tuple[str, str, Any]] = [
    (r"/pulls", "GET", _list_pulls),
    (r"/pulls", "POST", _create_pull),
    (r"/pulls/(\d+)", "GET", _get_pull),
    (r"/pulls/(\d+)", "PATCH", _edit_pull),
    (r"/pulls/(\d+)/files", "GET", _pull_files),
]
