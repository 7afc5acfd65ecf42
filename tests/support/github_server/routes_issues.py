"""REST routes for a repository, its issues, issue comments, labels, releases and branch refs.
Each route takes (server, repo, query, body, *path groups) and answers (status, JSON)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.support.github_server.shapes import STAMP, VIEWER, user

if TYPE_CHECKING:
    from tests.support.github_server.repo import Repo
    from tests.support.github_server.server import GitHubServer

Query = dict[str, list[str]]


def new_comment(server: GitHubServer, repo: Repo, number: int, body: str, author: str = VIEWER) -> dict[str, Any]:
    """Store an issue comment by `author` on issue or pull request `number`."""
    comment_id = next(server.ids)
    url = f"{repo.api}/issues/comments/{comment_id}"
    comment = {
        "id": comment_id,
        "node_id": f"IC_{comment_id}",
        "url": url,
        "html_url": f"{server.base}/{repo.full_name}/issues/{number}#issuecomment-{comment_id}",
        "body": body,
        "user": user(author, server.base),
        "created_at": STAMP,
        "updated_at": STAMP,
        "issue_url": f"{repo.api}/issues/{number}",
        "author_association": "MEMBER",
        "number": number,
    }
    repo.comments[comment_id] = comment
    return comment


def new_release(server: GitHubServer, repo: Repo, data: dict[str, Any]) -> dict[str, Any]:
    """Store a release from the body of `POST .../releases` by the token's user."""
    release_id = next(server.ids)
    url = f"{repo.api}/releases/{release_id}"
    release = {
        "url": url,
        "html_url": f"{server.base}/{repo.full_name}/releases/tag/{data['tag_name']}",
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
        "author": user(server.actor, server.base),
        "assets": [],
    }
    repo.releases[release_id] = release
    return release


def _get_repo(server: GitHubServer, repo: Repo, query: Query, data: Any) -> tuple[int, Any]:
    return 200, repo.json()


def _get_issue(server: GitHubServer, repo: Repo, query: Query, data: Any, number: str) -> tuple[int, Any]:
    return 200, repo.issues[int(number)]


def _create_issue(server: GitHubServer, repo: Repo, query: Query, data: Any) -> tuple[int, Any]:
    return 201, repo.add_issue(data["title"], data.get("body") or "", tuple(data.get("labels") or ()), server.actor)


def _list_issues(server: GitHubServer, repo: Repo, query: Query, data: Any) -> tuple[int, Any]:
    state = query.get("state", ["open"])[0]
    return 200, [i for i in repo.issues.values() if state == "all" or i["state"] == state]


def _list_comments(server: GitHubServer, repo: Repo, query: Query, data: Any, number: str) -> tuple[int, Any]:
    return 200, [c for c in repo.comments.values() if c["number"] == int(number)]


def _create_comment(server: GitHubServer, repo: Repo, query: Query, data: Any, number: str) -> tuple[int, Any]:
    repo.issues[int(number)]["comments"] += 1
    return 201, new_comment(server, repo, int(number), data["body"], server.actor)


def _get_comment(server: GitHubServer, repo: Repo, query: Query, data: Any, comment: str) -> tuple[int, Any]:
    return 200, repo.comments[int(comment)]


def _edit_comment(server: GitHubServer, repo: Repo, query: Query, data: Any, comment: str) -> tuple[int, Any]:
    repo.comments[int(comment)]["body"] = data["body"]
    return 200, repo.comments[int(comment)]


def _delete_comment(server: GitHubServer, repo: Repo, query: Query, data: Any, comment: str) -> tuple[int, Any]:
    del repo.comments[int(comment)]
    return 204, None


def _add_labels(server: GitHubServer, repo: Repo, query: Query, data: Any, number: str) -> tuple[int, Any]:
    issue = repo.issues[int(number)]
    added = data if isinstance(data, list) else data.get("labels", [])
    repo.set_labels(issue, [label["name"] for label in issue["labels"]] + list(added))
    return 200, issue["labels"]


def _remove_label(server: GitHubServer, repo: Repo, query: Query, data: Any, number: str, name: str) -> tuple[int, Any]:
    issue = repo.issues[int(number)]
    names = [label["name"] for label in issue["labels"]]
    if name not in names:
        return 404, {"message": "Label does not exist"}
    repo.set_labels(issue, [n for n in names if n != name])
    return 200, issue["labels"]


def _list_releases(server: GitHubServer, repo: Repo, query: Query, data: Any) -> tuple[int, Any]:
    return 200, sorted(repo.releases.values(), key=lambda r: -r["id"])


def _create_release(server: GitHubServer, repo: Repo, query: Query, data: Any) -> tuple[int, Any]:
    if any(r["tag_name"] == data["tag_name"] for r in repo.releases.values()):
        return 422, {
            "message": "Validation Failed",
            "errors": [{"resource": "Release", "code": "already_exists", "field": "tag_name"}],
        }
    return 201, new_release(server, repo, data)


def _get_release(server: GitHubServer, repo: Repo, query: Query, data: Any, release: str) -> tuple[int, Any]:
    return 200, repo.releases[int(release)]


def _edit_release(server: GitHubServer, repo: Repo, query: Query, data: Any, release: str) -> tuple[int, Any]:
    found = repo.releases[int(release)]
    for key in ("name", "body", "draft", "prerelease", "tag_name"):
        if key in data:
            found[key] = data[key]
    return 200, found


def _delete_release(server: GitHubServer, repo: Repo, query: Query, data: Any, release: str) -> tuple[int, Any]:
    del repo.releases[int(release)]
    return 204, None


def _get_ref(server: GitHubServer, repo: Repo, query: Query, data: Any, branch: str) -> tuple[int, Any]:
    sha = repo.sha(branch)
    if sha is None:
        return 404, {"message": "Not Found"}
    return 200, {
        "ref": f"refs/heads/{branch}",
        "node_id": f"REF_{branch}",
        "url": f"{repo.api}/git/refs/heads/{branch}",
        "object": {"type": "commit", "sha": sha, "url": f"{repo.api}/git/commits/{sha}"},
    }


def _update_ref(server: GitHubServer, repo: Repo, query: Query, data: Any, branch: str) -> tuple[int, Any]:
    repo.git("update-ref", f"refs/heads/{branch}", data["sha"])
    return _get_ref(server, repo, query, data, branch)


def _delete_ref(server: GitHubServer, repo: Repo, query: Query, data: Any, branch: str) -> tuple[int, Any]:
    if repo.sha(branch) is None:
        return 422, {"message": "Reference does not exist"}
    repo.git("update-ref", "-d", f"refs/heads/{branch}")
    return 204, None


ROUTES: list[tuple[str, str, Any]] = [
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
    (r"/releases", "GET", _list_releases),
    (r"/releases", "POST", _create_release),
    (r"/releases/(\d+)", "GET", _get_release),
    (r"/releases/(\d+)", "PATCH", _edit_release),
    (r"/releases/(\d+)", "DELETE", _delete_release),
    (r"/git/ref/heads/(.+)", "GET", _get_ref),
    (r"/git/refs/heads/(.+)", "PATCH", _update_ref),
    (r"/git/refs/heads/(.+)", "DELETE", _delete_ref),
]
