"""Repository webhooks of the test GitHub server: hooks made through the REST API (`POST/GET
/repos/{o}/{r}/hooks`, config {url, secret, content_type: json}) and signed deliveries of the
events the server models, with payloads shaped as GitHub sends them (checked against GitHub's
webhook descriptions by tests/test_github_server_webhooks.py):

- `issues` labeled: a label added (REST, or `GitHubServer.label_issue` as another user);
- `issue_comment` created: an issue or pull request comment;
- `pull_request_review` submitted and, for each inline comment, `pull_request_review_comment`
  created: a review;
- `pull_request_review_comment` created: a single review comment or reply;
- `pull_request` closed: a pull request closed (PATCH state) or merged (`PUT .../pulls/{n}/merge`,
  which merges the head into the base in the bare repository, merged=true);
- `ping` when a hook is made.

Deliveries go out from one background thread in the order the events happened, with GitHub's
headers (X-GitHub-Event, X-GitHub-Delivery (a uuid), X-Hub-Signature-256, User-Agent
GitHub-Hookshot/...); `Webhooks.wait()` waits until everything queued was delivered and returns
every delivery with the receiver's answer. `redeliver` sends one again with the same delivery id,
as GitHub's "Redeliver" button does.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import queue
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tests.support.github_server import reviews
from tests.support.github_server.shapes import STAMP, VIEWER, ApiError, user, validation_failed

if TYPE_CHECKING:
    from tests.support.github_server.repo import Repo
    from tests.support.github_server.server import GitHubServer

Query = dict[str, list[str]]
AGENT = "GitHub-Hookshot/8f2c1e4"


@dataclass
class Hook:
    """A repository webhook: deliveries of `events` ("*" for all) go to `url`, signed with `secret`."""

    id: int
    repo: str
    url: str
    secret: str
    events: list[str]
    active: bool = True
    content_type: str = "json"
    last_status: int | None = None


@dataclass
class Delivery:
    """One delivery: `guid` (X-GitHub-Delivery), `event`, `payload`; after sending, the receiver's
    HTTP `status` (0 when it could not be reached) and `response` (its body, parsed when JSON)."""

    guid: str
    hook: Hook
    event: str
    payload: dict[str, Any]
    status: int | None = None
    response: Any = None
    delivered_at: float | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def action(self) -> str | None:
        return self.payload.get("action")


class Webhooks:
    """The hooks and deliveries of one `GitHubServer` (see the module docstring)."""

    def __init__(self, server: GitHubServer) -> None:
        self.server = server
        self.hooks: dict[int, Hook] = {}
        self.deliveries: list[Delivery] = []
        self._queue: queue.Queue[Delivery | None] = queue.Queue()
        self._pending = 0
        self._idle = threading.Condition()
        self._worker = threading.Thread(target=self._deliver_all, name="webhooks", daemon=True)
        self._worker.start()

    # ---- hooks -----------------------------------------------------------------------------

    def add_hook(self, repo: Repo, url: str, secret: str, events: list[str] | None = None) -> Hook:
        """A hook of `repo` sending `events` (default: all) to `url`; GitHub's ping is sent at once."""
        hook = Hook(next(self.server.ids), repo.full_name, url, secret, list(events or ["*"]))
        self.hooks[hook.id] = hook
        ping = {"zen": "Keep it logically awesome.", "hook_id": hook.id, "hook": self.hook_json(repo, hook)}
        self._send(hook, "ping", self._full(repo, ping, VIEWER))
        return hook

    def hook_json(self, repo: Repo, hook: Hook) -> dict[str, Any]:
        """A hook in GitHub's REST shape (the secret is never shown)."""
        url = f"{repo.api}/hooks/{hook.id}"
        last = {"code": hook.last_status, "status": "active" if hook.last_status else "unused", "message": None}
        return {
            "type": "Repository",
            "id": hook.id,
            "name": "web",
            "active": hook.active,
            "events": hook.events,
            "config": {"url": hook.url, "content_type": hook.content_type, "insecure_ssl": "0", "secret": "********"},
            "updated_at": STAMP,
            "created_at": STAMP,
            "url": url,
            "test_url": f"{url}/test",
            "ping_url": f"{url}/pings",
            "deliveries_url": f"{url}/deliveries",
            "last_response": last,
        }

    # ---- events ----------------------------------------------------------------------------

    def issue_labeled(self, repo: Repo, number: int, label: str, by: str) -> None:
        issue = _issue(repo, number)
        self.emit(repo, "issues", {"action": "labeled", "issue": issue, "label": repo.label(label)}, by)

    def issue_comment(self, repo: Repo, number: int, comment: dict[str, Any], by: str) -> None:
        issue = _issue(repo, number)
        if number in repo.pulls:
            pull = repo.pulls[number]
            issue["pull_request"] = {"url": pull["url"], "html_url": pull["html_url"], "diff_url": pull["diff_url"]}
            issue["pull_request"]["patch_url"] = pull["patch_url"]
        found = {k: v for k, v in comment.items() if k != "number"}
        found.update(performed_via_github_app=None, reactions=_reactions(comment["url"]))
        self.emit(repo, "issue_comment", {"action": "created", "issue": issue, "comment": found}, by)

    def review_submitted(self, repo: Repo, number: int, review: dict[str, Any], by: str) -> None:
        """`pull_request_review` submitted (state in lowercase, as webhooks write it), then one
        `pull_request_review_comment` created per inline comment of the review."""
        shown = {**reviews.public(review), "state": str(review["state"]).lower()}
        self.emit(repo, "pull_request_review", {"action": "submitted", "review": shown, **self._pull(repo, number)}, by)
        for comment in repo.review_comments.values():
            if comment.review_id == review["id"]:
                self.review_comment(repo, number, reviews.render(self.server, repo, comment), by)

    def review_comment(self, repo: Repo, number: int, comment: dict[str, Any], by: str) -> None:
        found = {**comment, "reactions": _reactions(comment["url"])}
        payload = {"action": "created", "comment": found, **self._pull(repo, number)}
        self.emit(repo, "pull_request_review_comment", payload, by)

    def pull_closed(self, repo: Repo, number: int, by: str) -> None:
        self.emit(repo, "pull_request", {"action": "closed", "number": number, **self._pull(repo, number)}, by)

    def observe(self, method: str, rest: str, repo: Repo, data: Any, status: int, answer: Any) -> None:
        """Emit what a successful REST write (`method` on `rest`, below the repository) causes, sent
        by whom the request acts as (`server.actor`: the token's user, or an App's bot); called by
        the server after each route."""
        if status >= 300 or not isinstance(answer, dict | list):
            return
        by = self.server.actor
        parts = rest.strip("/").split("/")
        if method == "POST" and len(parts) == 3 and parts[0] == "issues" and parts[2] == "labels":
            added = data if isinstance(data, list) else data.get("labels", [])
            for label in added:
                self.issue_labeled(repo, int(parts[1]), str(label), by)
        elif method == "POST" and len(parts) == 3 and parts[0] == "issues" and parts[2] == "comments":
            self.issue_comment(repo, int(parts[1]), dict(answer), by)
        elif method == "POST" and len(parts) == 3 and parts[0] == "pulls" and parts[2] == "reviews":
            stored = next(r for r in repo.reviews if r["id"] == answer["id"])  # type: ignore[call-overload]
            self.review_submitted(repo, int(parts[1]), stored, by)
        elif method == "POST" and parts[0] == "pulls" and parts[-1] in ("comments", "replies") and len(parts) >= 3:
            self.review_comment(repo, int(parts[1]), dict(answer), by)
        elif method == "PATCH" and len(parts) == 2 and parts[0] == "pulls" and data.get("state") == "closed":
            self.pull_closed(repo, int(parts[1]), by)

    def _pull(self, repo: Repo, number: int) -> dict[str, Any]:
        """{"pull_request": ...} as webhooks show it (a few keys more than REST's)."""
        reviews.head_sha(repo, number)
        pull = json.loads(json.dumps(repo.pulls[number]))
        pull.update(active_lock_reason=None, assignee=None, assignees=[])
        for side in ("base", "head"):
            pull[side]["repo"]["topics"] = []
        return {"pull_request": pull}

    def _full(self, repo: Repo, payload: dict[str, Any], by: str) -> dict[str, Any]:
        return {**payload, "repository": repo.json(), "sender": user(by, self.server.base)}

    def emit(self, repo: Repo, event: str, payload: dict[str, Any], by: str) -> None:
        """Queue a delivery of `event` with `payload` (repository and sender `by` added) to every
        active hook of `repo` that wants it. The payload is copied now, as GitHub snapshots it."""
        full = json.loads(json.dumps(self._full(repo, payload, by)))
        for hook in list(self.hooks.values()):
            if hook.repo == repo.full_name and hook.active and ("*" in hook.events or event in hook.events):
                self._send(hook, event, full)

    # ---- delivering ------------------------------------------------------------------------

    def _send(self, hook: Hook, event: str, payload: dict[str, Any], guid: str | None = None) -> Delivery:
        delivery = Delivery(guid or str(uuid.uuid4()), hook, event, payload)
        with self._idle:
            self._pending += 1
            self.deliveries.append(delivery)
        self._queue.put(delivery)
        return delivery

    def redeliver(self, delivery: Delivery) -> Delivery:
        """Send `delivery` again, with the same X-GitHub-Delivery id and payload."""
        return self._send(delivery.hook, delivery.event, delivery.payload, delivery.guid)

    def wait(self, timeout: float = 30.0) -> list[Delivery]:
        """Wait until every queued delivery was sent and answered; returns all deliveries so far.
        Raises TimeoutError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{self._pending} webhook deliveries still pending")
                self._idle.wait(left)
            return list(self.deliveries)

    def stop(self) -> None:
        self._queue.put(None)
        self._worker.join(5)

    def _deliver_all(self) -> None:
        while (delivery := self._queue.get()) is not None:
            try:
                self._post(delivery)
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def _post(self, delivery: Delivery) -> None:
        body = json.dumps(delivery.payload).encode()
        secret = delivery.hook.secret.encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": AGENT,
            "X-GitHub-Event": delivery.event,
            "X-GitHub-Delivery": delivery.guid,
            "X-GitHub-Hook-ID": str(delivery.hook.id),
            "X-GitHub-Hook-Installation-Target-Type": "repository",
            "X-GitHub-Hook-Installation-Target-ID": str(delivery.payload["repository"]["id"]),
        }
        if secret:
            headers["X-Hub-Signature"] = "sha1=" + hmac.new(secret, body, hashlib.sha1).hexdigest()
            headers["X-Hub-Signature-256"] = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
        delivery.headers = headers
        request = urllib.request.Request(delivery.hook.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                delivery.status, raw = answer.status, answer.read()
        except urllib.error.HTTPError as error:
            with error:
                delivery.status, raw = error.code, error.read()
        except OSError as error:
            delivery.status, raw = 0, str(error).encode()
        try:
            delivery.response = json.loads(raw)
        except ValueError:
            delivery.response = raw.decode(errors="replace")
        delivery.delivered_at = time.time()
        delivery.hook.last_status = delivery.status


def _issue(repo: Repo, number: int) -> dict[str, Any]:
    """Issue `number` as webhooks show it (a few keys more than REST's)."""
    found = dict(repo.issues[number])
    found.update(active_lock_reason=None, reactions=_reactions(found["url"]))
    return found


def _reactions(url: str) -> dict[str, Any]:
    """An object's reaction rollup (none yet)."""
    counts = dict.fromkeys(("+1", "-1", "laugh", "confused", "heart", "hooray", "eyes", "rocket"), 0)
    return {"url": f"{url}/reactions", "total_count": 0, **counts}


# ---- REST routes ---------------------------------------------------------------------------


def merge(server: GitHubServer, repo: Repo, number: int, by: str, data: dict[str, Any]) -> dict[str, Any]:
    """Merge pull request `number` as `by`: a merge commit of its head into its base in the bare
    repository (`sha`, when given, must be the head), the pull request closed and merged, and
    `pull_request` closed delivered. Raises ApiError 405 (not mergeable), 409 (head moved)."""
    pull = repo.pulls[number]
    if pull["state"] != "open":
        raise ApiError(405, {"message": "Pull Request is not mergeable"})
    head = reviews.head_sha(repo, number)
    if data.get("sha") and data["sha"] != head:
        raise ApiError(409, {"message": "Head branch was modified. Review and try the merge again."})
    base = repo.sha(pull["base"]["ref"])
    if base is None:
        raise validation_failed("PullRequest", "base")
    try:
        tree = repo.git("merge-tree", "--write-tree", base, head).split()[0]
    except Exception:
        raise ApiError(405, {"message": "Pull Request is not mergeable"}) from None
    title = data.get("commit_title") or f"Merge pull request #{number} from {pull['head']['label']}"
    message = f"{title}\n\n{data.get('commit_message') or pull['title']}"
    env = {"PATH": "/usr/bin:/bin", "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}
    for role in ("AUTHOR", "COMMITTER"):
        env[f"GIT_{role}_NAME"], env[f"GIT_{role}_EMAIL"] = by, f"{by}@example.com"
    sha = repo.git("commit-tree", tree, "-p", base, "-p", head, "-m", message, env=env).strip()
    repo.git("update-ref", f"refs/heads/{pull['base']['ref']}", sha, base)
    now = server.now()
    pull.update(state="closed", merged=True, merged_at=now, closed_at=now, merge_commit_sha=sha, mergeable=None)
    pull["merged_by"] = user(by, server.base)
    repo.issues[number].update(state="closed", closed_at=now)
    server.webhooks.pull_closed(repo, number, by)
    return {"sha": sha, "merged": True, "message": "Pull Request successfully merged"}


def _create_hook(server: GitHubServer, repo: Repo, query: Query, data: Any) -> tuple[int, Any]:
    config = data.get("config") or {}
    if not config.get("url"):
        raise validation_failed("Hook", "url", "missing_field")
    hook = server.webhooks.add_hook(repo, config["url"], config.get("secret") or "", data.get("events") or ["push"])
    hook.active = bool(data.get("active", True))
    hook.content_type = config.get("content_type") or "form"
    return 201, server.webhooks.hook_json(repo, hook)


def _list_hooks(server: GitHubServer, repo: Repo, query: Query, data: Any) -> tuple[int, Any]:
    hooks = server.webhooks.hooks.values()
    return 200, [server.webhooks.hook_json(repo, h) for h in hooks if h.repo == repo.full_name]


def _get_hook(server: GitHubServer, repo: Repo, query: Query, data: Any, hook: str) -> tuple[int, Any]:
    found = server.webhooks.hooks[int(hook)]
    if found.repo != repo.full_name:
        raise KeyError(hook)
    return 200, server.webhooks.hook_json(repo, found)


def _delete_hook(server: GitHubServer, repo: Repo, query: Query, data: Any, hook: str) -> tuple[int, Any]:
    _get_hook(server, repo, query, data, hook)
    del server.webhooks.hooks[int(hook)]
    return 204, None


def _merge(server: GitHubServer, repo: Repo, query: Query, data: Any, number: str) -> tuple[int, Any]:
    return 200, merge(server, repo, int(number), server.actor, data)


ROUTES: list[tuple[str, str, Any]] = [
    (r"/hooks", "POST", _create_hook),
    (r"/hooks", "GET", _list_hooks),
    (r"/hooks/(\d+)", "GET", _get_hook),
    (r"/hooks/(\d+)", "DELETE", _delete_hook),
    (r"/pulls/(\d+)/merge", "PUT", _merge),
]
