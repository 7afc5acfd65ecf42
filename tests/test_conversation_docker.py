"""Issue 18, what it must show (1): the conversation loop end to end. GitHub (the test server)
delivers signed webhooks to `pipe serve` running as a subprocess; the runs it starts use real
sandboxes and the fake agent (tests/agents/fake_agent.py), whose directives travel in the issue's
body and in the reviewer's comments.

An issue labelled `pipe` becomes a draft pull request (thread: waiting_for_feedback); a review with
two inline comments that requests changes becomes one commit on the same branch, a reply with its
SHA in both review threads, both resolved, review re-requested (thread: waiting_for_feedback again,
spec 2 of kind `update` targeting the pull request's branch); merging archives the thread. One pull
request, one branch, one commit per round, and pipe never answers its own comments.

Then, run by hand: a round whose agent declines only replies (no commit, no new review asked for),
a run with nothing new to answer says so, and `max-rounds` stops pipe from answering again."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from runner.names import RunStatus, SpecKind, ThreadState
from runner.resources import data_path
from runner.store import Store
from tests.support.agents import agent_image
from tests.support.cli import Cli, CliResult
from tests.support.github import TOKEN
from tests.support.github_server import GitHubServer, Repo
from tests.support.github_server.shapes import VIEWER

pytestmark = pytest.mark.docker

PIPELINES = data_path("pipelines")
REPO_ROOT = Path(__file__).resolve().parent.parent
SECRET = "conversation-webhook-secret"
REVIEWER = "octocat"
WAIT = 300.0  # seconds a run may take on a busy two-core machine

CALC = "def add(a, b):\n    return a - b\n"
FIXED = "def add(a, b):\n    return a + b\n\n\ndef twice(a):\n    return a + a\n"  # the issue's fix
REVIEWED = (  # what the reviewer asks for
    '"""Small arithmetic."""\n\n\ndef add(a, b):\n    """a plus b."""\n    return a + b\n\n\n'
    "def twice(a):\n    return 2 * a\n"
)

DONE = {
    "status": "done",
    "summary": "add() adds; twice() added.",
    "changes": [{"path": "calc.py", "description": "fixed"}],
}
ISSUE = f"""`add(2, 3)` returns -1.

WRITE calc.py
```
{FIXED}```
RESULT
```json
{json.dumps(DONE)}
```
"""

RESULT = {
    "decisions": [
        {"thread": 1, "decision": "fix", "reason": "Added the docstrings."},
        {"thread": 2, "decision": "fix", "reason": "Now `2 * a`."},
    ],
    "summary": "Docstrings, and twice() multiplies.",
}

# The first comment carries the fix (the file's new content), the second the agent's decisions.
FIRST_COMMENT = f"Please document the module and add().\n\nWRITE calc.py\n```\n{REVIEWED}```\n"
SECOND_COMMENT = f"Multiply here.\n\nRESULT\n```json\n{json.dumps(RESULT)}\n```\n"


# ---- the pieces: pipe serve, the hook, the reviewer --------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def serve_config(tmp_path: Path, github: GitHubServer) -> Path:
    """A `pipe serve` configuration: labelled issues run issue-to-pr, reviews requesting changes
    run pr-feedback, both with the fake agent in the test agent image."""
    image = agent_image()
    rules = [
        {
            "on": "issue-labeled",
            "label": "pipe",
            "pipeline": str(PIPELINES / "issue-to-pr.yml"),
            "inputs": {"agent": "fake-agent"},
            "sandbox-image": image,
        },
        {
            "on": "changes-requested",
            "pipeline": str(PIPELINES / "pr-feedback.yml"),
            "inputs": {"agent": "fake-agent"},
            "sandbox-image": image,
        },
    ]
    config = {
        "secret": {"env": "PIPE_WEBHOOK_SECRET"},
        "github": {"api-url": github.api_url, "token": {"env": "GITHUB_TOKEN"}, "bot": VIEWER},
        "state-dir": str(tmp_path / "state"),
        "repositories": ["octo/demo"],
        "rules": rules,
    }
    path = tmp_path / "serve.yml"
    path.write_text(json.dumps(config, indent=2))  # JSON is YAML
    return path


class Serve:
    """`pipe serve` as a subprocess on a free port; its output goes to `log`."""

    def __init__(self, config: Path, state: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        env = {**os.environ, "GITHUB_TOKEN": TOKEN, "PIPE_WEBHOOK_SECRET": SECRET, "PYTHONPATH": str(REPO_ROOT)}
        argv = [sys.executable, "-m", "runner", "serve", "--config", str(config), "--port", str(self.port)]
        argv += ["--state-dir", str(state)]
        with log.open("wb") as out:
            self.process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=config.parent)
        wait_for(self.healthy, 30, "pipe serve to answer /healthz", self)

    def healthy(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"pipe serve exited with {self.process.returncode}:\n{self.output()}")
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def wait_for(check: Callable[[], Any], seconds: float, what: str, serve: Serve | None = None) -> Any:
    """Poll `check` until it returns something true; fail naming `what` (with serve's output)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    said = f"\n--- pipe serve's output ---\n{serve.output()}" if serve is not None else ""
    raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}{said}")


def api(github: GitHubServer, method: str, path: str, data: Any = None) -> Any:
    """A REST call to the test server with the token (as the repository's admin would make it)."""
    request = urllib.request.Request(
        f"{github.api_url}{path}",
        data=None if data is None else json.dumps(data).encode(),
        method=method,
        headers={"Authorization": f"token {TOKEN}", "Accept": "application/vnd.github+json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        body = answer.read()
        return json.loads(body) if body else None


def branches(repo: Repo) -> list[str]:
    listed = repo.git("for-each-ref", "--format=%(refname:short)", "refs/heads/")
    return sorted(listed.split())


def commits(repo: Repo, branch: str) -> list[str]:
    """The branch's commits that are not on the default branch, newest first."""
    return repo.git("rev-list", branch, f"^{repo.default_branch}").split()


def idle(store: Store) -> bool:
    """No run of the store is still going."""
    return all(run.status.finished for run in store.runs())


@pytest.fixture
def serve(tmp_path: Path, github: GitHubServer) -> Iterator[Serve]:
    running = Serve(serve_config(tmp_path, github), tmp_path / "state", tmp_path / "serve.log")
    try:
        yield running
    finally:
        running.stop()


# ---- the conversation ------------------------------------------------------------------------


def test_an_issue_becomes_a_pull_request_that_answers_its_review_and_is_archived_on_merge(
    tmp_path: Path, github: GitHubServer, serve: Serve
) -> None:
    state = tmp_path / "state"
    repo = github.create_repo("octo/demo", {"calc.py": CALC, "README.md": "# demo\n"})
    api(github, "POST", "/repos/octo/demo/hooks", {
        "name": "web", "active": True, "events": ["*"],
        "config": {"url": f"{serve.url}/webhook", "content_type": "json", "secret": SECRET},
    })  # fmt: skip
    issue = repo.add_issue("add() subtracts", ISSUE, author=REVIEWER)["number"]

    # 1. The label starts issue-to-pr: a draft pull request, the thread waits for feedback.
    github.label_issue("octo/demo", issue, "pipe", by=REVIEWER)
    store = Store(state)
    thread = wait_for(
        lambda: (t := store.thread_by_issue("octo/demo", issue)) and t.state == ThreadState.WAITING_FOR_FEEDBACK and t,
        WAIT,
        "issue-to-pr to open the pull request",
        serve,
    )
    wait_for(lambda: idle(store), WAIT, "issue-to-pr to finish", serve)
    ((number, pull),) = repo.pulls.items()
    branch = pull["head"]["ref"]
    assert (thread.branch, thread.pull_request) == (branch, number)
    assert pull["draft"] is True
    assert repo.git("show", f"{branch}:calc.py") == FIXED
    first_round = commits(repo, branch)
    assert len(first_round) == 1

    # 2. A review with two inline comments requesting changes starts pr-feedback.
    github.review(
        "octo/demo",
        number,
        REVIEWER,
        body="Two things.",
        event="REQUEST_CHANGES",
        comments=[
            {"path": "calc.py", "line": 2, "body": FIRST_COMMENT},
            {"path": "calc.py", "line": 6, "body": SECOND_COMMENT},
        ],
    )
    wait_for(lambda: len(store.specs(thread.id)) == 2, 60, "pr-feedback's run to start", serve)
    wait_for(
        lambda: store.thread(thread.id).state == ThreadState.WAITING_FOR_FEEDBACK and idle(store),
        WAIT,
        "pr-feedback to answer the review",
        serve,
    )
    runs = store.runs()
    assert sorted(run.pipeline_name for run in runs) == ["issue-to-pr", "pr-feedback"], serve.output()
    feedback = next(run for run in runs if run.pipeline_name == "pr-feedback")
    assert feedback.status == RunStatus.SUCCEEDED, serve.output()

    # One commit on the same branch, on top of the first round's.
    assert list(repo.pulls) == [number] and branches(repo) == sorted(["main", branch])
    second_round = commits(repo, branch)
    assert len(second_round) == 2 and second_round[1:] == first_round
    sha = second_round[0]
    assert repo.git("show", f"{branch}:calc.py") == REVIEWED

    # A reply with that SHA in both threads, both resolved, review requested again.
    threads = github.review_threads("octo/demo", number)
    assert len(threads) == 2
    for review_thread in threads:
        assert review_thread.resolved_by is not None
        said = [c for c in repo.review_comments.values() if c.thread == review_thread.id]
        mine = [c for c in said if c.author == VIEWER]
        assert len(mine) == 1, said  # one reply, and no reply to its own comments
        assert sha[:7] in mine[0].body, mine[0].body
    assert REVIEWER in github.requested_reviewers("octo/demo", number)
    body = repo.pulls[number]["body"]  # the same description, its Verification redone, the round added
    assert body.startswith(f"Fixes #{issue}\n") and "add() adds; twice() added." in body
    assert body.count("## Verification") == 1 and "thread 2: fix: Now `2 * a`." in body

    # The thread: spec 2, an update of the pull request's branch, applied by pr-feedback's run.
    specs = store.specs(thread.id)
    assert [(s.version, s.kind) for s in specs] == [(1, SpecKind.INITIAL), (2, SpecKind.UPDATE)]
    assert specs[1].target_branch == branch and specs[1].run_id == feedback.id
    assert store.thread(thread.id).state == ThreadState.WAITING_FOR_FEEDBACK

    # 3. Merging archives the thread, and nothing else starts.
    github.merge("octo/demo", number, by=REVIEWER)
    wait_for(lambda: store.thread(thread.id).state == ThreadState.ARCHIVED, 60, "the thread to be archived", serve)
    assert len(store.runs()) == 2
    deliveries = github.webhooks.wait()
    assert all(d.status in (200, 202) for d in deliveries), [(d.event, d.status, d.response) for d in deliveries]
    started = [(d.event, d.action) for d in deliveries if d.status == 202]
    assert started == [("issues", "labeled"), ("pull_request_review", "submitted")], started
    own = [d for d in deliveries if d.payload["sender"]["login"] == VIEWER and d.event != "ping"]
    assert any(d.event == "pull_request_review_comment" for d in own)  # its replies were delivered...
    assert all(d.response["status"] == "ignored" for d in own)  # ...and started nothing
    moves = [(t.from_state, t.to_state) for t in store.thread_transitions(thread.id)]
    assert moves[-1][1] == ThreadState.ARCHIVED
    assert moves.count((ThreadState.WORKING, ThreadState.WAITING_FOR_FEEDBACK)) == 2, moves


# ---- the rounds that change nothing ----------------------------------------------------------

DECLINED: dict[str, Any] = {
    "decisions": [{"thread": 1, "decision": "decline", "reason": "add() is named as the others are."}],
    "summary": "Nothing to change.",
}


def run_pipeline(cli: Cli, tmp_path: Path, github: GitHubServer, pipeline: str, *inputs: str) -> CliResult:
    """`pipe run` of a shipped pipeline against the test server, with the fake agent."""
    argv = ["run", str(PIPELINES / pipeline), "-i", "agent=fake-agent", "--repo", "octo/demo"]
    argv += ["--api-url", github.api_url, "--sandbox-image", agent_image(), "--state-dir", str(tmp_path / "state")]
    for assignment in inputs:
        argv += ["-i", assignment]
    return cli(*argv)


def test_a_declined_round_only_replies_and_answered_feedback_is_skipped(
    cli: Cli, tmp_path: Path, github: GitHubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    store = Store(tmp_path / "state")
    repo = github.create_repo("octo/demo", {"calc.py": CALC, "README.md": "# demo\n"})
    issue = repo.add_issue("add() subtracts", ISSUE, author=REVIEWER)["number"]
    opened = run_pipeline(cli, tmp_path, github, "issue-to-pr.yml", f"issue={issue}")
    assert opened.code == 0, opened.out + opened.err
    ((number, pull),) = repo.pulls.items()
    branch = pull["head"]["ref"]
    head = repo.sha(branch)
    comment = f"Rename add()?\n\nRESULT\n```json\n{json.dumps(DECLINED)}\n```\n"
    where = {"path": "calc.py", "line": 2, "body": comment}
    github.review("octo/demo", number, REVIEWER, event="REQUEST_CHANGES", comments=[where])

    # The agent declines: a reply with its reason, no commit, the thread left open, no new review asked.
    declined = run_pipeline(cli, tmp_path, github, "pr-feedback.yml", f"pr={number}")
    assert declined.code == 0, declined.out + declined.err
    assert repo.sha(branch) == head
    (thread,) = github.review_threads("octo/demo", number)
    said = [c for c in repo.review_comments.values() if c.thread == thread.id]
    assert [c.author for c in said] == [REVIEWER, VIEWER]
    assert said[1].body.startswith(DECLINED["decisions"][0]["reason"])
    assert thread.resolved_by is None
    assert github.requested_reviewers("octo/demo", number) == []

    # Nothing new: the next run says so and changes nothing.
    nothing = run_pipeline(cli, tmp_path, github, "pr-feedback.yml", f"pr={number}")
    assert nothing.code == 0, nothing.out + nothing.err
    assert "Nothing to answer on #" in nothing.out + nothing.err
    assert len(repo.review_comments) == 2 and repo.sha(branch) == head

    # The reviewer insists, but max-rounds is reached: pipe leaves it to a person.
    github.review_comment("octo/demo", number, REVIEWER, "Please do rename it.", in_reply_to=said[0].id)
    stopped = run_pipeline(cli, tmp_path, github, "pr-feedback.yml", f"pr={number}", "max-rounds=0")
    assert stopped.code == 0, stopped.out + stopped.err
    assert "max-rounds 0" in stopped.out + stopped.err
    assert len(repo.review_comments) == 3 and repo.sha(branch) == head

    (record,) = store.threads()
    assert record.state == ThreadState.WAITING_FOR_FEEDBACK and record.pull_request == number
    kinds = [(s.kind, s.target_branch) for s in store.specs(record.id)]
    assert kinds == [(SpecKind.INITIAL, None)] + [(SpecKind.UPDATE, branch)] * 3


# ---- the default agent: no model, patches proposed in the threads ----------------------------

PATCH_ISSUE = """`add(2, 3)` returns -1.

```diff
--- a/calc.py
+++ b/calc.py
@@ -1,2 +1,2 @@
 def add(a, b):
-    return a - b
+    return a + b
```
"""
DOCSTRING = """Please say what it does:

```diff
--- a/calc.py
+++ b/calc.py
@@ -1,2 +1,3 @@
 def add(a, b):
+    \"\"\"a plus b.\"\"\"
     return a + b
```
"""


def test_the_default_agent_applies_the_patches_proposed_in_threads_and_leaves_the_rest_to_a_person(
    cli: Cli, tmp_path: Path, github: GitHubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pr-feedback's default agent (pipe-patch-agent, no model) fixes the thread that proposes a
    patch, with a reply carrying the round's commit, and answers `human` to the one that does not."""
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    repo = github.create_repo("octo/demo", {"calc.py": CALC})
    issue = repo.add_issue("add() subtracts", PATCH_ISSUE, author=REVIEWER)["number"]
    common = ["--repo", "octo/demo", "--api-url", github.api_url, "--state-dir", str(tmp_path / "state")]
    opened = cli("run", str(PIPELINES / "issue-to-pr.yml"), "-i", f"issue={issue}", *common)
    assert opened.code == 0, opened.out + opened.err
    ((number, pull),) = repo.pulls.items()
    branch = pull["head"]["ref"]
    before = commits(repo, branch)
    comments = [
        {"path": "calc.py", "line": 1, "body": DOCSTRING},
        {"path": "calc.py", "line": 2, "body": "Should this not be a method?"},
    ]
    github.review("octo/demo", number, REVIEWER, event="REQUEST_CHANGES", comments=comments)

    answered = cli("run", str(PIPELINES / "pr-feedback.yml"), "-i", f"pr={number}", *common)
    assert answered.code == 0, answered.out + answered.err
    after = commits(repo, branch)
    assert len(after) == len(before) + 1  # one commit for the round
    assert repo.git("show", f"{branch}:calc.py") == 'def add(a, b):\n    """a plus b."""\n    return a + b\n'
    first, second = github.review_threads("octo/demo", number)
    replies = {
        t.id: [c.body for c in repo.review_comments.values() if c.thread == t.id and c.author == VIEWER]
        for t in (first, second)
    }
    assert replies[first.id][0].startswith(f"Fixed in {repo.sha(branch)}")
    assert first.resolved_by is not None
    assert replies[second.id][0].startswith("Leaving this one for a person")
    assert second.resolved_by is None
