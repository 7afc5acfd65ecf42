"""`pipe serve` as a real process receiving the test GitHub server's signed webhooks: a labeled
issue becomes one issue-to-pr run (its thread waiting for feedback on the draft pull request it
opened); two review events for one thread 50 ms apart give one run and one queued behind it; a
replayed delivery and a bad signature start nothing."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from runner.names import RunStatus, ThreadState
from runner.resources import data_path
from runner.store import RunRecord, Store
from runner.threads import thread_for_issue, transition
from tests.support.github import TOKEN
from tests.support.github_server import GitHubServer, Repo
from tests.support.github_server.webhooks import Delivery

pytestmark = pytest.mark.docker

SECRET = "webhook-secret-for-tests"
EXAMPLE = data_path("pipelines") / "example"
SLEEPY = """\
version: 1
name: feedback-round
inputs:
  pr: {type: integer, required: true}
  repo: {type: string, default: ""}
concurrency: {group: "thread/{{ inputs.repo }}/{{ inputs.pr }}", if-running: wait}
steps:
  - id: answer
    run: sleep 4
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


class Serve:
    """`pipe serve` on a free port, its output in serve.out."""

    def __init__(self, tmp_path: Path, github: GitHubServer, rules: str) -> None:
        self.state = tmp_path / "state"
        config = tmp_path / "serve.yml"
        config.write_text(f"secret: {{env: HOOK_SECRET}}\ngithub: {{api-url: {github.api_url}}}\nrules:\n{rules}")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/webhook"
        self.output = tmp_path / "serve.out"
        env = {**os.environ, "HOOK_SECRET": SECRET, "GITHUB_TOKEN": TOKEN}
        argv = [sys.executable, "-m", "runner", "serve", "--config", str(config), "--port", str(self.port)]
        with open(self.output, "wb") as out:
            self.process = subprocess.Popen(
                [*argv, "--state-dir", str(self.state)], stdout=out, stderr=subprocess.STDOUT, env=env
            )
        wait_for(self._healthy, 30, "pipe serve to answer /healthz")

    def _healthy(self) -> bool:
        if self.process.poll() is not None:
            pytest.fail(f"pipe serve exited: {self.output.read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)

    def store(self) -> Store:
        return Store(self.state)


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)


@pytest.fixture
def serve_factory(tmp_path: Path, github: GitHubServer) -> Iterator[Callable[[str], Serve]]:
    started: list[Serve] = []

    def start(rules: str) -> Serve:
        found = Serve(tmp_path, github, rules)
        started.append(found)
        return found

    yield start
    for found in started:
        found.stop()


def example_repo(github: GitHubServer) -> Repo:
    root = EXAMPLE / "repo"
    files = {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}
    return github.create_repo("octo/words", files)


def finished_run(serve: Serve, delivery: str) -> RunRecord | None:
    """The run webhook delivery `delivery` started, once it finished; None before."""
    store = serve.store()
    try:
        record = store.delivery(delivery)
        if record is None or record.run_id is None:
            return None
        run = store.run(record.run_id)
        return run if run.status.finished else None
    finally:
        store.close()


def answered(deliveries: list[Delivery], event: str) -> list[Delivery]:
    return [d for d in deliveries if d.event == event]


def test_a_labeled_issue_delivered_as_a_webhook_opens_one_draft_pull_request(
    github: GitHubServer, serve_factory: Callable[[str], Serve]
) -> None:
    repo = example_repo(github)
    text = (EXAMPLE / "issues" / "1.md").read_text()
    _, front, body = text.split("---", 2)
    title = next(line.split(":", 1)[1].strip() for line in front.splitlines() if line.startswith("title:"))
    issue = repo.add_issue(title, body.strip(), ("bug",))
    serve = serve_factory("  - {on: issue-labeled, label: pipe, pipeline: issue-to-pr}\n")
    github.webhooks.add_hook(repo, serve.url, SECRET)
    github.label_issue("octo/words", issue["number"], "pipe", by="octocat")
    (labeled,) = answered(github.webhooks.wait(), "issues")
    assert (labeled.status, labeled.response["status"]) == (202, "started"), labeled.response

    run = wait_for(lambda: finished_run(serve, labeled.guid), 600, "the issue-to-pr run")
    log = (serve.state / "serve" / f"{labeled.guid}.log").read_text()
    assert run.status == RunStatus.SUCCEEDED, log[-4000:]
    (pull,) = repo.pulls.values()
    assert pull["draft"] is True and pull["head"]["ref"] == "fix/issue-1"
    store = serve.store()
    (thread,) = store.threads()
    assert (thread.issue, thread.state, thread.pull_request) == (1, ThreadState.WAITING_FOR_FEEDBACK, pull["number"])
    assert len(store.runs(limit=10)) == 1
    store.close()
    # pipe's own comments and labels came back as webhooks: none started anything
    others = [d for d in github.webhooks.wait() if d.event != "ping" and d is not labeled]
    assert others and all(d.response.get("status") in ("ignored", "duplicate") for d in others), [
        (d.event, d.response) for d in others
    ]


def test_two_review_events_for_one_thread_give_one_run_and_one_queued(
    tmp_path: Path, github: GitHubServer, serve_factory: Callable[[str], Serve]
) -> None:
    repo = github.create_repo("octo/app", {"calc.py": "def add(a, b):\n    return a - b\n"})
    repo.add_issue("Fix add", "")
    repo.commit_to("fix/issue-1", {"calc.py": "def add(a, b):\n    return a + b\n"}, "fix add")
    pull = github._pull(repo, {"title": "Fix add", "head": "fix/issue-1", "base": "main", "draft": True})
    (tmp_path / "round.yml").write_text(SLEEPY)
    serve = serve_factory("  - {on: changes-requested, pipeline: round.yml}\n")
    store = serve.store()
    thread = thread_for_issue(store, "octo/app", 1)
    transition(store, thread.id, ThreadState.WORKING, "test")
    transition(store, thread.id, ThreadState.WAITING_FOR_FEEDBACK, "test", pull_request=pull["number"])
    store.close()
    github.webhooks.add_hook(repo, serve.url, SECRET, ["pull_request_review"])

    github.review("octo/app", pull["number"], "alice", "please rename", event="REQUEST_CHANGES")
    time.sleep(0.05)
    github.review("octo/app", pull["number"], "bob", "and add a test", event="REQUEST_CHANGES")
    first, second = answered(github.webhooks.wait(), "pull_request_review")
    assert [first.status, second.status] == [202, 202], (first.response, second.response)

    def one_running() -> bool:
        store = serve.store()
        try:
            return [r.status for r in store.runs(limit=10)] == [RunStatus.RUNNING]
        finally:
            store.close()

    wait_for(one_running, 60, "the first run to start")
    logs = [serve.state / "serve" / f"{d.guid}.log" for d in (first, second)]
    queued = wait_for(
        lambda: [p for p in logs if p.exists() and "concurrency_wait" in p.read_text()], 30, "one run queued"
    )
    assert len(queued) == 1
    store = serve.store()
    assert len(store.runs(limit=10)) == 1 and store.thread(thread.id).state == ThreadState.PLANNING
    store.close()

    # a replay of a delivery and a forged one start nothing
    github.webhooks.redeliver(first)
    assert github.webhooks.wait()[-1].response == {"status": "duplicate"}
    forged = urllib.request.Request(
        serve.url,
        data=json.dumps(first.payload).encode(),
        headers={
            "X-GitHub-Event": "pull_request_review",
            "X-GitHub-Delivery": "forged-1",
            "X-Hub-Signature-256": "sha256=0",
        },
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(forged, timeout=10)
    assert refused.value.code == 401
    refused.value.close()

    def both_done() -> list[Any]:
        store = serve.store()
        try:
            runs = store.runs(limit=10)
            return runs if len(runs) == 2 and all(r.status == RunStatus.SUCCEEDED for r in runs) else []
        finally:
            store.close()

    later, earlier = wait_for(both_done, 120, "both runs to succeed, one after the other")
    assert earlier.finished_at is not None and later.created_at >= earlier.finished_at - 1.5  # queued, then ran
    store = serve.store()
    linked = {store.delivery(d.guid).run_id for d in (first, second)}  # type: ignore[union-attr]
    store.close()
    assert linked == {earlier.id, later.id}


HELLO = """\
version: 1
name: hello-from-a-worker
inputs:
  repo: {type: string, default: ""}
  issue: {type: integer, required: true}
steps:
  - id: say
    sandbox: {network: none}
    run: echo "issue {{ inputs.issue }} of {{ inputs.repo }}"
"""


@pytest.mark.redis
def test_with_a_broker_a_webhook_run_executes_on_a_worker(
    tmp_path: Path, github: GitHubServer, serve_factory: Callable[[str], Serve], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.support.workers import broker, flush_broker, workers

    flush_broker()
    monkeypatch.setenv("PIPE_BROKER_URL", broker())
    repo = github.create_repo("octo/words", {"README.md": "# words\n"})
    issue = repo.add_issue("Say hello", "From a worker, please.", ("bug",))
    pipeline = tmp_path / "hello.yml"
    pipeline.write_text(HELLO)
    with workers(tmp_path, tmp_path / "state", count=1):
        serve = serve_factory(f"  - {{on: issue-labeled, label: pipe, pipeline: {pipeline}}}\n")
        github.webhooks.add_hook(repo, serve.url, SECRET)
        github.label_issue("octo/words", issue["number"], "pipe", by="octocat")
        (labeled,) = answered(github.webhooks.wait(), "issues")
        assert (labeled.status, labeled.response["status"]) == (202, "started"), labeled.response

        run = wait_for(lambda: finished_run(serve, labeled.guid), 300, "the run the webhook submitted")
    log = (serve.state / "serve" / f"{labeled.guid}.log").read_text()
    assert run.status == RunStatus.SUCCEEDED, log[-4000:]
    assert run.trigger == "submit" and run.worker is not None and run.worker.startswith("pipe.")
    assert f"issue {issue['number']} of octo/words" in (serve.state / "runs" / run.id / "worker.log").read_text()
    assert '"event": "run_finished"' in log  # the serve's process followed the run to its end
