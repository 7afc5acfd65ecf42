"""`pipe serve` without processes: the Starlette application with a launcher that records what it
would start. Signatures, replays, pipe's own events, threads and pull requests, commands, archive,
and the configuration's errors with file, line and key."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from starlette.testclient import TestClient

from runner.errors import UsageError, ValidationFailed
from runner.names import RunStatus, SpecKind, ThreadState
from runner.resources import load_schema
from runner.serve.app import MAX_BODY, WebhookApp
from runner.serve.config import ServeConfig, load_config
from runner.serve.dispatch import Dispatcher
from runner.serve.events import Ignore, Launch, decide, mentions
from runner.serve.launcher import Launcher
from runner.serve.signature import sign, verify
from runner.store import Store
from runner.threads import thread_for_issue, transition
from tests.support.cli import Cli

SECRET = "s3cret-hook"
BOT = "pipe-bot"
CONFIG = """\
secret: {env: HOOK_SECRET}
github:
  api-url: http://github.test/api/v3
  bot: pipe-bot
rules:
  - on: issue-labeled
    label: pipe
    pipeline: issue-to-pr
    inputs: {agent: fake, title: "{{ event.issue.title }}"}
  - on: changes-requested
    pipeline: pr-feedback
  - on: mention
    pipeline: pr-feedback
"""


class Recording(Launcher):
    """A launcher that keeps the command lines it would start."""

    def __init__(self, config: ServeConfig, state_dir: Path) -> None:
        super().__init__(config, state_dir, link=lambda delivery, run: None)
        self.started: list[tuple[str, list[str]]] = []

    def start(self, delivery: str, argv: list[str]) -> Any:
        self.started.append((delivery, argv))
        return None


class Hooks:
    """The application under test and what it started."""

    def __init__(self, tmp_path: Path) -> None:
        (tmp_path / "serve.yml").write_text(CONFIG)
        self.config = load_config(tmp_path / "serve.yml", {"HOOK_SECRET": SECRET, "GITHUB_TOKEN": "t0ken"})
        self.state = tmp_path / "state"
        self.launcher = Recording(self.config, self.state)
        self.lines: list[str] = []
        dispatcher = Dispatcher(self.config, BOT, self.state, self.launcher, self.lines.append)
        self.client = TestClient(WebhookApp(self.config.secret, dispatcher).application())

    def send(
        self, event: str, payload: dict[str, Any], delivery: str | None = None, signature: str | None = "good"
    ) -> Any:
        body = json.dumps(payload).encode()
        headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery or str(uuid.uuid4())}
        if signature == "good":
            headers["X-Hub-Signature-256"] = sign(SECRET.encode(), body)
        elif signature is not None:
            headers["X-Hub-Signature-256"] = signature
        return self.client.post("/webhook", content=body, headers=headers)

    def store(self) -> Store:
        return Store(self.state)


@pytest.fixture
def hooks(tmp_path: Path) -> Iterator[Hooks]:
    yield Hooks(tmp_path)


def sender(login: str) -> dict[str, Any]:
    return {"login": login, "type": "Bot" if login.endswith("[bot]") else "User"}


def labeled(number: int = 7, by: str = "octocat", label: str = "pipe") -> dict[str, Any]:
    return {
        "action": "labeled",
        "issue": {"number": number, "title": "Fix add"},
        "label": {"name": label},
        "repository": {"full_name": "octo/app"},
        "sender": sender(by),
    }


def review(number: int, state: str = "changes_requested", by: str = "reviewer") -> dict[str, Any]:
    return {
        "action": "submitted",
        "review": {"state": state, "user": sender(by), "author_association": "COLLABORATOR"},
        "pull_request": {"number": number},
        "repository": {"full_name": "octo/app"},
        "sender": sender(by),
    }


def comment(number: int, body: str, association: str = "MEMBER", by: str = "octocat") -> dict[str, Any]:
    return {
        "action": "created",
        "issue": {"number": number, "pull_request": {"url": "x"}},
        "comment": {"body": body, "user": sender(by), "author_association": association},
        "repository": {"full_name": "octo/app"},
        "sender": sender(by),
    }


def thread_with_pull_request(hooks: Hooks, issue: int, pull: int, state: ThreadState) -> str:
    store = hooks.store()
    try:
        thread = thread_for_issue(store, "octo/app", issue)
        transition(store, thread.id, ThreadState.WORKING, "test")
        transition(store, thread.id, ThreadState.WAITING_FOR_FEEDBACK, "test", branch="pipe/7", pull_request=pull)
        if state != ThreadState.WAITING_FOR_FEEDBACK:
            transition(store, thread.id, state, "test")
        return thread.id
    finally:
        store.close()


def test_a_bad_or_missing_signature_is_refused_and_starts_nothing(hooks: Hooks) -> None:
    for signature in (None, "sha256=" + "0" * 64, "sha1=abc", sign(b"other secret", b"{}")):
        answer = hooks.send("issues", labeled(), signature=signature)
        assert answer.status_code == 401
    assert hooks.launcher.started == []
    store = hooks.store()
    assert store.threads() == []  # nothing recorded either
    store.close()
    assert not verify(SECRET.encode(), b"{}", None)
    assert verify(SECRET.encode(), b"{}", sign(SECRET.encode(), b"{}"))


def test_a_labeled_issue_starts_its_rule_once_however_often_it_is_delivered(hooks: Hooks) -> None:
    delivery = str(uuid.uuid4())
    first = hooks.send("issues", labeled(), delivery)
    again = hooks.send("issues", labeled(), delivery)
    assert (first.status_code, first.json()["status"]) == (202, "started")
    assert (again.status_code, again.json()) == (200, {"status": "duplicate"})
    ((started_for, argv),) = hooks.launcher.started
    assert started_for == delivery
    assert argv[3:5] == ["run", "issue-to-pr"]
    assert argv[argv.index("--repo") + 1] == "octo/app"
    assert argv[argv.index("--api-url") + 1] == "http://github.test/api/v3"
    assert [argv[i + 1] for i, word in enumerate(argv) if word == "-i"] == [
        "repo=octo/app",
        "issue=7",
        "agent=fake",
        "title=Fix add",
    ]
    assert "t0ken" not in " ".join(argv)  # the token goes through the environment
    store = hooks.store()
    (thread,) = store.threads()
    assert (thread.repo, thread.issue, thread.state) == ("octo/app", 7, ThreadState.PLANNING)
    record = store.delivery(delivery)
    assert record is not None and record.event == "issues"
    store.close()


def test_events_pipe_itself_caused_start_nothing(hooks: Hooks) -> None:
    thread_with_pull_request(hooks, 7, 8, ThreadState.WAITING_FOR_FEEDBACK)
    for answer in (
        hooks.send("issues", labeled(by=BOT)),
        hooks.send("pull_request_review", review(8, by=BOT)),
        hooks.send("issue_comment", comment(8, "/pipe retry", by=BOT)),
    ):
        assert answer.status_code == 200
        assert answer.json()["status"] == "ignored"
        assert "own identity" in answer.json()["reason"]
    assert hooks.launcher.started == []
    config = hooks.config
    assert isinstance(decide(config, "pipe[bot]", "issues", labeled(by="pipe[bot]")), Ignore)


def test_review_feedback_starts_pr_feedback_only_for_a_pull_request_of_a_thread(hooks: Hooks) -> None:
    thread_id = thread_with_pull_request(hooks, 7, 8, ThreadState.WAITING_FOR_FEEDBACK)
    foreign = hooks.send("pull_request_review", review(99))
    assert foreign.json()["status"] == "ignored" and "no thread" in foreign.json()["reason"]
    approved = hooks.send("pull_request_review", review(8, state="approved"))
    assert approved.json()["status"] == "ignored"
    started = hooks.send("pull_request_review", review(8))
    assert (started.status_code, started.json()["thread"]) == (202, thread_id)
    ((_, argv),) = hooks.launcher.started
    assert argv[3:5] == ["run", "pr-feedback"]
    assert [argv[i + 1] for i, word in enumerate(argv) if word == "-i"] == ["repo=octo/app", "pr=8"]
    store = hooks.store()
    assert store.thread(thread_id).state == ThreadState.PLANNING
    store.close()
    assert any("no thread" in line for line in hooks.lines)  # the ignored one was logged


def test_a_mention_of_the_bot_in_a_review_comment_counts(hooks: Hooks) -> None:
    thread_with_pull_request(hooks, 7, 8, ThreadState.WAITING_FOR_FEEDBACK)
    payload = comment(8, "please look, @pipe-bot")
    payload["pull_request"] = {"number": 8}
    assert hooks.send("pull_request_review_comment", payload).status_code == 202
    payload["comment"]["body"] = "mail pipe-bot@example.com or @pipe-botany"
    assert hooks.send("pull_request_review_comment", payload).json()["status"] == "ignored"
    assert len(hooks.launcher.started) == 1
    assert mentions("@Pipe-Bot: fix", "pipe-bot[bot]")
    assert not mentions("x@pipe-bot", "pipe-bot")


def test_commands_approve_the_waiting_run_and_need_an_allowed_author(hooks: Hooks) -> None:
    thread_id = thread_with_pull_request(hooks, 7, 8, ThreadState.WAITING_FOR_FEEDBACK)
    store = hooks.store()
    pipeline = store.add_pipeline("issue-to-pr", "pipelines/issue-to-pr.yml", "digest", "version: 1")
    run_id = store.create_run(pipeline, {"issue": 7, "repo": "octo/app"})
    store.update_run(run_id, status=RunStatus.WAITING)
    store.add_spec(thread_id, SpecKind.INITIAL, None, run_id)
    store.close()
    refused = hooks.send("issue_comment", comment(8, "/pipe approve", association="NONE"))
    assert refused.json()["status"] == "ignored"
    assert hooks.launcher.started == []
    answer = hooks.send("issue_comment", comment(8, "Looks right.\n/pipe approve ship it"))
    assert (answer.status_code, answer.json()["decided"]) == (202, run_id)
    ((_, argv),) = hooks.launcher.started
    assert argv[3] == "approve" and argv[-2:] == ["--", run_id]
    assert "--comment=/pipe approve by @octocat: ship it" in argv
    retry = hooks.send("issue_comment", comment(8, "/pipe retry"))
    assert retry.json()["retry_of"] == run_id
    assert hooks.launcher.started[-1][1][3:5] == ["run", "pipelines/issue-to-pr.yml"]


def test_a_closed_pull_request_archives_its_thread(hooks: Hooks) -> None:
    thread_id = thread_with_pull_request(hooks, 7, 8, ThreadState.WAITING_FOR_FEEDBACK)
    closed = {
        "action": "closed",
        "number": 8,
        "pull_request": {"number": 8, "merged": True},
        "repository": {"full_name": "octo/app"},
        "sender": sender(BOT),  # a merge pipe made itself still ends the thread
    }
    answer = hooks.send("pull_request", closed)
    assert answer.json() == {"status": "archived", "thread": thread_id, "reason": "pull request merged"}
    store = hooks.store()
    assert store.thread(thread_id).state == ThreadState.ARCHIVED
    store.close()
    assert hooks.send("issues", labeled()).json()["status"] == "ignored"  # archived: nothing starts
    assert hooks.launcher.started == []


def test_odd_requests_are_answered_without_acting(hooks: Hooks) -> None:
    assert hooks.client.get("/healthz").json() == {"status": "ok"}
    assert hooks.send("ping", {"zen": "hi"}).json() == {"status": "pong"}
    assert hooks.send("issues", labeled(), delivery="../../etc").status_code == 400
    body = b"[" * (MAX_BODY + 1)
    big = hooks.client.post("/webhook", content=body, headers={"X-Hub-Signature-256": sign(SECRET.encode(), body)})
    assert big.status_code == 413
    unknown = hooks.send("issues", {**labeled(), "issue": "not an issue"})
    assert unknown.json()["status"] == "ignored"
    assert hooks.launcher.started == []


def test_configuration_errors_name_file_line_and_key(tmp_path: Path) -> None:
    path = tmp_path / "serve.yml"
    path.write_text(
        "secret: {env: HOOK_SECRET}\n"
        "github:\n"
        "  api-url: ftp://nope\n"
        "rules:\n"
        "  - on: issue-labeled\n"
        "    pipeline: issue-to-pr\n"
        "  - on: merged\n"
        "    pipeline: x\n"
        "    colour: blue\n"
    )
    with pytest.raises(ValidationFailed) as failed:
        load_config(path, {"HOOK_SECRET": "x"})
    found = [(d.line, d.path) for d in failed.value.diagnostics]
    assert (3, "github.api-url") in found
    assert (5, "rules[0]") in found  # issue-labeled needs a label
    assert (7, "rules[1].on") in found
    assert (9, "rules[1].colour") in found
    assert all(d.file == str(path) for d in failed.value.diagnostics)
    assert "serve.yml:7:" in str(failed.value)

    path.write_text("secret: {env: HOOK_SECRET}\nrules:\n  - {on: mention, pipeline: x}\n")
    with pytest.raises(UsageError, match=r"serve\.yml:1:9: secret: the environment variable HOOK_SECRET"):
        load_config(path, {})
    path.write_text("secret: {env: HOOK_SECRET}\nrules: [{on: mention, pipeline: x}]\nrules: []\n")
    with pytest.raises(ValidationFailed, match=r"serve\.yml:3"):
        load_config(path, {"HOOK_SECRET": "x"})


def test_the_launcher_reads_the_run_id_and_links_it(tmp_path: Path) -> None:
    (tmp_path / "serve.yml").write_text(CONFIG)
    config = load_config(tmp_path / "serve.yml", {"HOOK_SECRET": SECRET, "GITHUB_TOKEN": "t0ken"})
    linked: list[tuple[str, str]] = []
    launcher = Launcher(config, tmp_path, lambda delivery, run: linked.append((delivery, run)), environ={})
    script = (
        "import json, os; print('noise'); print(json.dumps({'event': 'concurrency_wait', 'group': 'g'}));"
        "print(json.dumps({'event': 'run_started', 'run': 'r-1'})); print(json.dumps({'event': 'run_started',"
        " 'run': 'r-2'})); print(os.environ['GITHUB_TOKEN'])"
    )
    launcher.start("d-1", ["python3", "-c", script])
    launcher.wait(30)
    assert linked == [("d-1", "r-1")]
    log = (tmp_path / "serve" / "d-1.log").read_text()
    assert "concurrency_wait" in log and "t0ken" in log
    assert isinstance(decide(config, BOT, "issues", labeled()), Launch)


def test_the_schema_is_valid_and_the_command_is_wired(cli: Cli, tmp_path: Path) -> None:
    jsonschema.Draft202012Validator.check_schema(load_schema("serve.schema.json"))
    assert "--config" in cli("serve", "--help").out
    (tmp_path / "serve.yml").write_text("secret: {env: NOPE_NOT_SET}\nrules: [{on: mention, pipeline: x}]\n")
    result = cli("serve", "--config", str(tmp_path / "serve.yml"), "--state-dir", str(tmp_path / "state"))
    assert result.code == 2 and "NOPE_NOT_SET is not set" in result.err
