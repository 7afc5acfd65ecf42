"""Issue 18: the forge's review-feedback and CI methods against the test GitHub server (GraphQL
review threads, replies, resolution, reviewers, checks), the github/review-threads,
github/reply-threads and github/checks actions run directly (idempotent replies, undo), and
GitHub App installation tokens (JWT checked by the server, writes and pushes made as the App's bot;
shapes checked against GitHub's OpenAPI description)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from githubkit_schemas.latest import models

from runner.actions.base import ActionContext, ActionResult, RunState
from runner.actions.checks import checks as checks_action
from runner.actions.checks import wait_for_checks
from runner.actions.feedback import reply_threads, review_threads
from runner.actions.undo import Origin, undo_thread_reply, undo_thread_resolve
from runner.errors import UsageError
from runner.forges import open_forge
from runner.forges.base import CheckState, ForgeError
from runner.forges.github import GitHubForge
from runner.forges.local import LocalForge
from runner.store import ChangeRecord
from tests.support.github_server import GitHubServer, Repo

TOKEN = "test-token-789"
CALC = "def add(a, b):\n    return a - b\n\n\ndef sub(a, b):\n    return a - b\n"
FIXED = "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b  # subtract\n"
Recorded = list[tuple[str, str, dict[str, Any]]]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[GitHubServer]:
    found = GitHubServer(tmp_path / "server", TOKEN).start()
    try:
        yield found
    finally:
        found.stop()


def _pull(server: GitHubServer) -> tuple[Repo, int, str]:
    """octo/demo with pull request `fix` (changing lines 2 and 6 of calc.py) by pipe, reviewed by
    alice with two inline comments: (repo, number, head SHA)."""
    repo = server.create_repo("octo/demo", {"calc.py": CALC})
    head = repo.commit_to("fix", {"calc.py": FIXED}, "fix add")
    number = int(server._pull(repo, {"title": "Fix add", "head": "fix", "base": "main", "body": ""})["number"])
    comments = [
        {"path": "calc.py", "line": 2, "body": "Name this better."},
        {"path": "calc.py", "line": 6, "body": "Drop the comment."},
    ]
    server.review("octo/demo", number, "alice", "Some changes", "REQUEST_CHANGES", comments)
    return repo, number, head


def _forge(server: GitHubServer) -> GitHubForge:
    return GitHubForge("octo/demo", TOKEN, server.api_url, sleep=lambda seconds: None)


def _no_sandbox(*args: Any, **options: Any) -> Any:
    raise AssertionError("these actions never use a sandbox")


def _context(forge: Any, args: dict[str, Any], records: Recorded, state: RunState | None = None) -> ActionContext:
    return ActionContext(
        run_id="r1",
        pipeline="pr-feedback",
        step_id="step",
        args=args,
        inputs={},
        workspace=Path("."),
        state=state or RunState(),
        publish=True,
        forge=forge,
        log=lambda text: None,
        run_in_sandbox=_no_sandbox,
        record=lambda kind, target, data: records.append((kind, target, dict(data))),
    )


def _change(kind: str, target: str, data: dict[str, Any]) -> ChangeRecord:
    return ChangeRecord(1, "step", 0, 1, kind, target, data, 0.0, None)


def test_review_threads_replies_resolution_and_reviewers(server: GitHubServer) -> None:
    _, number, _ = _pull(server)
    forge = _forge(server)
    assert forge.viewer_login() == "pipe-bot"
    threads = forge.review_threads(number)
    assert [(t.path, t.line, t.resolved) for t in threads] == [("calc.py", 2, False), ("calc.py", 6, False)]
    assert [c.author for c in threads[0].comments] == ["alice"] and threads[0].url.endswith(
        f"#discussion_r{threads[0].comments[0].id}"
    )
    reply = forge.reply_to_thread(number, threads[0].id, "Done.")
    forge.resolve_thread(threads[0].id)
    again = forge.review_threads(number)
    assert [c.body for c in again[0].comments] == ["Name this better.", "Done."] and again[0].resolved
    assert again[0].comments[1].id == reply.id and again[0].comments[1].author == "pipe-bot"
    forge.unresolve_thread(threads[0].id)
    forge.delete_review_comment(reply.id)
    forge.delete_review_comment(reply.id)  # already gone: no error
    assert [len(t.comments) for t in forge.review_threads(number)] == [1, 1]
    assert not forge.review_threads(number)[0].resolved
    assert forge.reviewers(number) == ["alice", "pipe-bot"]  # a reply is a COMMENTED review, as on GitHub
    with pytest.raises(ForgeError, match=r"HTTP 404.*Could not resolve to a PullRequest"):
        forge.review_threads(99)


def test_checks_read_check_runs_and_the_newest_status_per_context(server: GitHubServer) -> None:
    _, _, head = _pull(server)
    server.add_check_run("octo/demo", head, "build", "success")
    server.add_check_run("octo/demo", head, "lint", "failure", polls=1)
    server.set_status("octo/demo", head, "pending", "ci/docs")
    server.set_status("octo/demo", head, "success", "ci/docs")
    found = {(c.name, c.kind): c for c in _forge(server).checks(head)}
    assert (found["build", "check"].status, found["build", "check"].conclusion) == ("completed", "success")
    assert found["lint", "check"].status == "in_progress"
    assert (found["ci/docs", "status"].status, found["ci/docs", "status"].conclusion) == ("completed", "success")
    assert (found["lint", "check"].status, found["lint", "check"].conclusion) != ("completed", "failure")
    assert {(c.name, c.conclusion) for c in _forge(server).checks(head)} >= {("lint", "failure")}


def test_the_local_forge_says_it_cannot(tmp_path: Path) -> None:
    forge_dir = tmp_path / "forge"
    subprocess.run(["git", "init", "-q", "--bare", str(forge_dir / "repo.git")], check=True)
    forge = LocalForge(forge_dir, tmp_path / "state")
    with pytest.raises(ForgeError, match="not supported by the local forge"):
        forge.review_threads(1)
    with pytest.raises(ForgeError, match="not supported by the local forge"):
        forge.checks("abc")


def test_review_threads_action_lists_what_waits_and_reply_threads_answers_once(server: GitHubServer) -> None:
    _, number, head = _pull(server)
    forge, records = _forge(server), Recorded()
    started = forge.review_threads(number)[0]
    mine = server.review_comment("octo/demo", number, "pipe-bot", "A note of pipe's own", path="calc.py", line=6)
    assert mine["user"]["login"] == "pipe-bot"
    read = review_threads(_context(forge, {"pr": number}, records))
    listed = json.loads(read.outputs["threads"])
    assert [(t["n"], t["line"], t["author"]) for t in listed] == [(1, 2, "alice"), (2, 6, "alice")]
    assert listed[0]["id"] == started.id and listed[0]["comments"] == [{"author": "alice", "body": "Name this better."}]
    assert read.outputs["count"] == "2" and read.outputs["round"] == "0"
    assert (read.outputs["branch"], read.outputs["head"]) == ("fix", head)
    assert "### Thread 1: calc.py:2" in read.outputs["prompt"] and "> Drop the comment." in read.outputs["prompt"]

    decisions = {
        "decisions": [
            {"thread": 1, "decision": "fix", "reason": "renamed"},
            {"thread": 2, "decision": "decline", "reason": "The comment explains the sign."},
        ]
    }
    args = {"pr": number, "decisions": json.dumps(decisions), "commit": head}
    done = reply_threads(_context(forge, args, records))
    assert done.error is None
    assert done.outputs == {"replied": "2", "resolved": "1", "declined": "1", "human": "0"}
    threads = forge.review_threads(number)
    assert threads[0].comments[-1].body.startswith(f"Fixed in {head}.") and threads[0].resolved
    assert threads[1].comments[-1].body.startswith("The comment explains the sign.") and not threads[1].resolved
    assert server.requested_reviewers("octo/demo", number) == ["alice"]
    assert [kind for kind, _, _ in records] == ["thread_reply", "thread_resolve", "thread_reply"]

    again = reply_threads(_context(forge, args, records))  # a retry or resume: nothing new
    assert again.outputs["replied"] == "0" and again.outputs["resolved"] == "0"
    assert [len(t.comments) for t in forge.review_threads(number)] == [2, 2, 1]
    after = review_threads(_context(forge, {"pr": number}, []))
    assert after.outputs["count"] == "0" and after.outputs["round"] == "1"

    for kind, target, data in reversed(records):
        undo = undo_thread_reply if kind == "thread_reply" else undo_thread_resolve
        undo(_change(kind, target, data), forge, Origin("r1"))
    assert [(len(t.comments), t.resolved) for t in forge.review_threads(number)] == [(1, False)] * 3


def test_reply_threads_refuses_unknown_threads_and_bad_decisions(server: GitHubServer) -> None:
    _, number, _ = _pull(server)
    forge, records = _forge(server), Recorded()
    bad = reply_threads(_context(forge, {"pr": number, "decisions": '[{"thread": 3, "decision": "fix"}]'}, records))
    assert bad.error is not None and "no thread 3" in bad.error
    worse = reply_threads(_context(forge, {"pr": number, "decisions": '[{"thread": 1, "decision": "maybe"}]'}, records))
    assert worse.error is not None and "'maybe'" in worse.error
    unchanged = reply_threads(
        _context(forge, {"pr": number, "decisions": '[{"thread": 1, "decision": "fix", "reason": "no"}]'}, records)
    )
    assert unchanged.outputs["resolved"] == "0" and server.requested_reviewers("octo/demo", number) == []
    assert records == [("thread_reply", records[0][1], records[0][2])]


def test_wait_for_checks_concludes_or_times_out() -> None:
    done = CheckState("build", "check", "completed", "success")
    failed = CheckState("lint", "check", "completed", "failure")
    running = CheckState("slow", "check", "in_progress", "")
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    def wait(reads: list[list[CheckState]], timeout: float = 60.0) -> str:
        it = iter(reads)
        last: list[CheckState] = []

        def read() -> list[CheckState]:
            nonlocal last
            last = next(it, last)
            return last

        now[0] = 0.0
        return wait_for_checks(read, timeout, 5.0, clock=lambda: now[0], sleep=sleep)[0]

    assert wait([[running], [done]]) == "success"
    assert wait([[running, done], [failed, done]]) == "failure"
    assert wait([[running]], timeout=20.0) == "timed_out"
    assert wait([[]]) == "success" and now[0] == 30.0  # nothing reports: after the grace


def test_checks_action_takes_the_pushed_head_and_fails_on_failure(server: GitHubServer) -> None:
    _, number, head = _pull(server)
    server.add_check_run("octo/demo", head, "build", "failure")
    forge = _forge(server)
    found = checks_action(_context(forge, {"interval": "1s", "timeout": "5s"}, [], RunState(remote_sha=head)))
    assert found.outputs["conclusion"] == "failure" and found.error is not None and "build" in found.error
    allowed = checks_action(_context(forge, {"allow-failure": True}, [], RunState(pull_request=number)))
    assert allowed.error is None and json.loads(allowed.outputs["checks"])[0]["name"] == "build"
    none: ActionResult = checks_action(_context(forge, {}, []))
    assert none.error is not None and "no commit" in none.error


def test_an_app_installation_acts_as_its_bot(server: GitHubServer, tmp_path: Path) -> None:
    _, number, _ = _pull(server)
    app = server.register_app("pipe-app", ["octo/demo"])
    key_file = tmp_path / "app.pem"
    key_file.write_text(app.private_key)
    settings = {"forge": "github", "repo": "octo/demo", "api_url": server.api_url, "app_id": str(app.id)}
    forge = open_forge({**settings, "app_key_file": str(key_file)}, state_dir=tmp_path, environ={})
    assert forge.describe() == {**settings, "app_key_file": str(key_file)}
    assert forge.viewer_login() == "pipe-app[bot]"
    comment = forge.create_comment(number, "Hello from the App")
    assert comment.author == "pipe-app[bot]"
    thread = forge.review_threads(number)[0]
    forge.reply_to_thread(number, thread.id, "On it.")
    assert forge.review_threads(number)[0].comments[-1].author == "pipe-app"  # GraphQL drops "[bot]"
    token = forge.credential_token()
    assert token and token.startswith("ghs_") and server.actor_of(token) == "pipe-app[bot]"

    clone = tmp_path / "clone"
    url = f"{server.git_base}/octo/demo.git".replace("://", f"://x-access-token:{token}@")
    git = ["git", "-c", "user.name=pipe", "-c", "user.email=pipe@example.com"]
    subprocess.run([*git, "clone", "-q", url, str(clone)], check=True)
    subprocess.run([*git, "-C", str(clone), "commit", "-q", "--allow-empty", "-m", "as the app"], check=True)
    subprocess.run([*git, "-C", str(clone), "push", "-q", "origin", "HEAD:refs/heads/app-branch"], check=True)
    assert server.pushed_by("octo/demo", "refs/heads/app-branch") == "pipe-app[bot]"

    from_env = open_forge(settings, state_dir=tmp_path, environ={"GITHUB_APP_PRIVATE_KEY": app.private_key})
    assert from_env.viewer_login() == "pipe-app[bot]"
    with pytest.raises(UsageError, match="GITHUB_APP_PRIVATE_KEY"):
        open_forge(settings, state_dir=tmp_path, environ={})
    other = server.register_app("other-app", [])
    with pytest.raises(ForgeError, match="HTTP 404"):
        open_forge(
            {**settings, "app_id": str(other.id)},
            state_dir=tmp_path,
            environ={"GITHUB_APP_PRIVATE_KEY": other.private_key},
        )
    with pytest.raises(ForgeError, match="HTTP 401"):  # signed with another App's key
        open_forge(settings, state_dir=tmp_path, environ={"GITHUB_APP_PRIVATE_KEY": other.private_key})


def _call(server: GitHubServer, method: str, path: str, authorization: str) -> tuple[int, Any]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        server.api_url + path,
        method=method,
        data=b"{}" if method == "POST" else None,
        headers={"Authorization": authorization},
    )
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_app_endpoints_have_githubs_shapes_and_check_the_jwt(server: GitHubServer) -> None:
    import jwt

    server.create_repo("octo/demo", {"calc.py": CALC})
    app = server.register_app("pipe-app", ["octo/demo"])
    now = int(time.time())
    signed = jwt.encode({"iat": now - 60, "exp": now + 540, "iss": str(app.id)}, app.private_key, algorithm="RS256")
    status, found = _call(server, "GET", "/repos/octo/demo/installation", f"Bearer {signed}")
    assert status == 200
    installation = models.Installation.model_validate(found)
    assert (installation.id, installation.app_slug) == (app.installation_id, "pipe-app")
    status, found = _call(server, "GET", "/app", f"Bearer {signed}")
    assert status == 200 and models.Integration.model_validate(found).slug == "pipe-app"
    status, found = _call(server, "POST", f"/app/installations/{app.installation_id}/access_tokens", f"Bearer {signed}")
    assert status == 201
    token = models.InstallationToken.model_validate(found).token
    status, found = _call(server, "GET", "/repos/octo/demo", f"token {token}")
    assert status == 200
    status, found = _call(server, "GET", "/user", f"token {token}")
    assert status == 403  # an installation has no user
    expired = jwt.encode({"iat": now - 900, "exp": now - 300, "iss": str(app.id)}, app.private_key, algorithm="RS256")
    assert _call(server, "GET", "/app", f"Bearer {expired}")[0] == 401
    assert _call(server, "GET", "/app", f"token {TOKEN}")[0] == 401
    assert _call(server, "GET", "/repos/octo/demo", "token ghs_unknown")[0] == 401
