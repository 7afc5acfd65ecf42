"""Check runs and commit statuses of a commit, as GitHub's checks and statuses APIs keep them, and
the commit itself. A test scripts CI with a check run that completes after some reads of it
(`polls`) and some time (`seconds`), or with statuses it sets."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tests.support.github_server.shapes import ApiError, app, timestamp, user, validation_failed

if TYPE_CHECKING:
    from tests.support.github_server.repo import Repo
    from tests.support.github_server.server import GitHubServer

CONCLUSIONS = ("success", "failure", "neutral", "cancelled", "skipped", "timed_out", "action_required")
STATES = ("error", "failure", "pending", "success")


@dataclass
class CheckRun:
    """One check run on commit `sha`. A scripted run (with `outcome`) reads as in progress to its
    first `polls` reads and until `ready_at` (seconds since the epoch), then completes with `outcome`."""

    id: int
    sha: str
    name: str
    app: str
    status: str = "queued"  # queued | in_progress | completed (and GitHub's waiting, requested, pending)
    conclusion: str | None = None
    started_at: str | None = None
    completed_at: str | None = None
    details_url: str | None = None
    external_id: str | None = None
    output: dict[str, Any] = field(default_factory=dict)
    outcome: str | None = None
    polls: int = 0
    ready_at: float = 0.0

    def complete(self, conclusion: str, at: str) -> None:
        """Mark the run completed with `conclusion` at `at` (an ISO 8601 time)."""
        self.status, self.conclusion, self.completed_at = "completed", conclusion, at
        self.outcome = None

    def read(self, now: float) -> None:
        """Count one read of the run; a scripted run completes once its polls and time have passed."""
        if self.outcome is None or self.status == "completed":
            return
        if self.polls > 0:
            self.polls -= 1
            return
        if now >= self.ready_at:
            self.complete(self.outcome, timestamp(now))


@dataclass
class Status:
    """One commit status: `state` (error, failure, pending, success) for `context` on `sha`."""

    id: int
    sha: str
    state: str
    context: str
    description: str | None
    target_url: str | None
    creator: str
    created_at: str


def resolve(repo: Repo, ref: str) -> str:
    """The SHA `ref` names; raises ApiError 422 as GitHub does when no commit has it."""
    sha = repo.commit(ref)
    if sha is None:
        raise ApiError(422, {"message": f"No commit found for SHA: {ref}"})
    return sha


def create_run(server: GitHubServer, repo: Repo, data: dict[str, Any], slug: str) -> CheckRun:
    """A check run from the body of `POST .../check-runs` (name, head_sha, status, conclusion,
    details_url, external_id, output, started_at) made by App `slug`."""
    if not data.get("name"):
        raise validation_failed("CheckRun", "name", "missing_field")
    run = CheckRun(next(server.ids), resolve(repo, data.get("head_sha") or ""), data["name"], slug)
    run.started_at = data.get("started_at") or server.now()
    update_run(server, run, {k: v for k, v in data.items() if k not in ("name", "head_sha", "started_at")})
    repo.check_runs[run.id] = run
    return run


def update_run(server: GitHubServer, run: CheckRun, data: dict[str, Any]) -> None:
    """Apply the body of `PATCH .../check-runs/{id}`: a conclusion completes the run."""
    if data.get("status") and data["status"] not in ("queued", "in_progress", "completed"):
        raise validation_failed("CheckRun", "status")
    if data.get("conclusion") and data["conclusion"] not in CONCLUSIONS:
        raise validation_failed("CheckRun", "conclusion")
    if data.get("status") == "completed" and not data.get("conclusion") and run.conclusion is None:
        raise ApiError(422, {"message": "Invalid request.\n\nconclusion wasn't supplied."})
    for key in ("name", "details_url", "external_id", "output"):
        if key in data:
            setattr(run, key, data[key])
    if data.get("status"):
        run.status = data["status"]
    if data.get("conclusion"):
        run.complete(data["conclusion"], data.get("completed_at") or server.now())


def render_run(server: GitHubServer, repo: Repo, run: CheckRun) -> dict[str, Any]:
    """A check run in GitHub's REST shape (check-run)."""
    url = f"{repo.api}/check-runs/{run.id}"
    output = {"title": None, "summary": None, "text": None, **run.output}
    return {
        "id": run.id,
        "head_sha": run.sha,
        "node_id": f"CR_{run.id}",
        "external_id": run.external_id or "",
        "url": url,
        "html_url": f"{server.base}/{repo.full_name}/runs/{run.id}",
        "details_url": run.details_url,
        "status": run.status,
        "conclusion": run.conclusion,
        "started_at": run.started_at,
        "completed_at": run.completed_at,
        "output": {**output, "annotations_count": 0, "annotations_url": f"{url}/annotations"},
        "name": run.name,
        "check_suite": {"id": 7000 + abs(hash((run.sha, run.app))) % 1000},
        "app": app(run.app, server.base),
        "pull_requests": [
            _minimal(repo, p)
            for p in repo.pulls.values()
            if p["state"] == "open" and (repo.sha(p["head"]["ref"]) or p["head"]["sha"]) == run.sha
        ],
    }


def _minimal(repo: Repo, pull: dict[str, Any]) -> dict[str, Any]:
    def ref(side: dict[str, Any]) -> dict[str, Any]:
        return {
            "ref": side["ref"],
            "sha": side["sha"],
            "repo": {"id": side["repo"]["id"], "url": repo.api, "name": repo.name},
        }

    return {
        "id": pull["id"],
        "number": pull["number"],
        "url": pull["url"],
        "head": ref(pull["head"]),
        "base": ref(pull["base"]),
    }


def runs_for(server: GitHubServer, repo: Repo, sha: str, query: dict[str, list[str]]) -> list[CheckRun]:
    """The runs on `sha` a list call answers (each counts as read), newest first: `check_name`,
    `status` and `filter` ("latest", the default, keeps the newest run of each name; or "all")."""
    now = server.clock()
    found = sorted((r for r in repo.check_runs.values() if r.sha == sha), key=lambda r: -r.id)
    for run in found:
        run.read(now)
    if query.get("filter", ["latest"])[0] == "latest":
        found = list({r.name: r for r in reversed(found)}.values())[::-1]
    for key in ("check_name", "status"):
        if key in query:
            found = [r for r in found if getattr(r, "name" if key == "check_name" else key) == query[key][0]]
    return found


def create_status(server: GitHubServer, repo: Repo, sha: str, data: dict[str, Any], creator: str) -> Status:
    """A status from the body of `POST .../statuses/{sha}` (state, target_url, description, context)."""
    if data.get("state") not in STATES:
        raise validation_failed("Status", "state")
    found = Status(
        next(server.ids),
        resolve(repo, sha),
        data["state"],
        data.get("context") or "default",
        data.get("description"),
        data.get("target_url"),
        creator,
        server.now(),
    )
    repo.statuses.append(found)
    return found


def render_status(server: GitHubServer, repo: Repo, status: Status, simple: bool = False) -> dict[str, Any]:
    """A status in GitHub's shape: `status`, or `simple-commit-status` (no creator) when `simple`."""
    found = {
        "url": f"{repo.api}/statuses/{status.sha}",
        "avatar_url": f"{server.base}/avatars/{status.creator}",
        "id": status.id,
        "node_id": f"SC_{status.id}",
        "state": status.state,
        "description": status.description,
        "target_url": status.target_url,
        "context": status.context,
        "created_at": status.created_at,
        "updated_at": status.created_at,
    }
    if not simple:
        found["creator"] = user(status.creator, server.base)
    return found


def combined(server: GitHubServer, repo: Repo, sha: str) -> dict[str, Any]:
    """The combined status of `sha`: the latest status of each context, and a state that is
    failure if any is error or failure, pending if there is none or any is pending, else success."""
    latest: dict[str, Status] = {}
    for status in sorted((s for s in repo.statuses if s.sha == sha), key=lambda s: -s.id):
        latest.setdefault(status.context, status)
    states = {s.state for s in latest.values()}
    state = (
        "failure" if states & {"error", "failure"} else "pending" if not states or "pending" in states else "success"
    )
    return {
        "state": state,
        "statuses": [render_status(server, repo, s, simple=True) for s in latest.values()],
        "sha": sha,
        "total_count": len(latest),
        "repository": repo.json(),
        "commit_url": f"{repo.api}/commits/{sha}",
        "url": f"{repo.api}/commits/{sha}/status",
    }


def render_commit(server: GitHubServer, repo: Repo, sha: str) -> dict[str, Any]:
    """The commit `sha` in GitHub's REST shape (commit), read from the repository's git data."""
    fields = repo.git("show", "-s", "--format=%T%x00%P%x00%an%x00%ae%x00%aI%x00%cn%x00%ce%x00%cI%x00%B", sha)
    tree, parents, a_name, a_mail, a_date, c_name, c_mail, c_date, message = fields.split("\x00")
    added = deleted = 0
    for line in repo.git("show", "--numstat", "--format=", sha).splitlines():
        plus, minus, _ = line.split("\t", 2)
        added += int(plus) if plus.isdigit() else 0
        deleted += int(minus) if minus.isdigit() else 0
    url = f"{repo.api}/commits/{sha}"
    return {
        "url": url,
        "sha": sha,
        "node_id": f"C_{sha}",
        "html_url": f"{server.base}/{repo.full_name}/commit/{sha}",
        "comments_url": f"{url}/comments",
        "commit": {
            "url": f"{repo.api}/git/commits/{sha}",
            "author": {"name": a_name, "email": a_mail, "date": _utc(a_date)},
            "committer": {"name": c_name, "email": c_mail, "date": _utc(c_date)},
            "message": message.rstrip("\n"),
            "comment_count": 0,
            "tree": {"sha": tree, "url": f"{repo.api}/git/trees/{tree}"},
            "verification": {
                "verified": False,
                "reason": "unsigned",
                "signature": None,
                "payload": None,
                "verified_at": None,
            },
        },
        "author": None,
        "committer": None,
        "parents": [
            {"sha": p, "url": f"{repo.api}/commits/{p}", "html_url": f"{server.base}/{repo.full_name}/commit/{p}"}
            for p in parents.split()
        ],
        "stats": {"additions": added, "deletions": deleted, "total": added + deleted},
    }


def _utc(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
