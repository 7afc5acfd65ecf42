"""Acting on a verified delivery: note its id and its body's SHA-256 in the store (a replay, under
its own delivery id or a new one, is answered "duplicate" and starts nothing), decide what it asks
for (runner/serve/events.py) and do it against the threads (runner/threads/) and the launcher:

- a rule's pipeline starts in the background for the issue's thread (made when there is none)
  or, for a pull request, the thread that owns it (a pull request of no thread is ignored); a
  thread waiting for feedback moves to `planning` on receipt; an archived one starts nothing;
- `/pipe retry` starts the thread's last run's pipeline again with the same inputs; `/pipe
  approve` / `/pipe reject` decide the thread's run waiting at a wait point (`pipe approve RUN`);
- a closed pull request archives its thread, the reason saying merged or closed.

Runs go through the launcher's limits (runner/serve/slots.py): per thread and pipeline one
running and one queued (the second process waits in the pipeline's concurrency group), a further
event merged into the queued one ("merged", 200); over the global cap a process waits in serve
("queued", 202); decisions only count toward the global cap. Every decision is one log line. Answers: 202
when something started or was queued, 200 otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.errors import PipeError
from runner.names import RunStatus, ThreadState
from runner.serve.config import ServeConfig
from runner.serve.events import Archive, Command, Ignore, Launch, decide
from runner.serve.launcher import Launcher
from runner.store import Store, ThreadRecord
from runner.threads import archive, thread_for_issue, thread_for_pull_request, transition

Log = Callable[[str], None]


@dataclass(frozen=True)
class Reply:
    """The HTTP answer to a delivery: `status` and a JSON `body` ({"status": word, ...})."""

    status: int
    body: dict[str, Any] = field(default_factory=dict)


class Dispatcher:
    """Handles deliveries for `config` on the store at `state_dir` (see the module docstring);
    `bot` is pipe's own login, `launcher` starts the processes, `log` takes one line per delivery."""

    def __init__(self, config: ServeConfig, bot: str, state_dir: Path, launcher: Launcher, log: Log) -> None:
        self.config = config
        self.bot = bot
        self.state_dir = state_dir
        self.launcher = launcher
        self.log = log

    def handle(self, delivery: str, event: str, payload: Mapping[str, Any], body_sha256: str | None = None) -> Reply:
        """Act on delivery `delivery` (X-GitHub-Delivery) of `event` (X-GitHub-Event) whose body
        parsed to `payload` and has the hex SHA-256 `body_sha256`. Errors of the store or a refused
        transition become a logged 200 "ignored" (GitHub would only redeliver the same thing);
        anything else propagates."""
        action = str(payload.get("action") or "") or None
        store = Store(self.state_dir)
        try:
            if not store.record_delivery(delivery, event, action, body_sha256):
                self.log(f"{delivery} {event}: duplicate delivery, ignored")
                return Reply(200, {"status": "duplicate"})
            decision = decide(self.config, self.bot, event, payload)
            try:
                reply = self._act(store, delivery, decision)
            except PipeError as error:
                reply = Reply(200, {"status": "ignored", "reason": str(error)})
        finally:
            store.close()
        detail = reply.body.get("reason") or reply.body.get("thread") or ""
        self.log(f"{delivery} {event}{'.' + action if action else ''}: {reply.body['status']} {detail}".rstrip())
        return reply

    def _act(self, store: Store, delivery: str, decision: Launch | Command | Archive | Ignore) -> Reply:
        if isinstance(decision, Ignore):
            return Reply(200, {"status": "ignored", "reason": decision.reason})
        if isinstance(decision, Archive):
            reason = "pull request merged" if decision.merged else "pull request closed without merging"
            archived = archive(store, decision.repo, decision.number, reason)
            if archived is None:
                return _ignored(f"pull request {decision.repo}#{decision.number} belongs to no thread")
            return Reply(200, {"status": "archived", "thread": archived.id, "reason": reason})
        thread = _thread(store, decision.repo, decision.number, decision.pull_request)
        if isinstance(decision, Launch):
            if thread is None and not decision.pull_request:
                thread = thread_for_issue(store, decision.repo, decision.number)
            if thread is None:
                return _ignored(f"pull request {decision.repo}#{decision.number} belongs to no thread")
            return self._launch(store, delivery, thread, decision)
        if thread is None:
            return _ignored(f"{decision.repo}#{decision.number} belongs to no thread")
        return self._command(store, delivery, thread, decision)

    def _launch(self, store: Store, delivery: str, thread: ThreadRecord, launch: Launch) -> Reply:
        if thread.state == ThreadState.ARCHIVED:
            return _ignored(f"thread {thread.id} is archived")
        if thread.state == ThreadState.WAITING_FOR_FEEDBACK:
            transition(store, thread.id, ThreadState.PLANNING, f"webhook delivery {delivery}")
        outcomes = []
        for rule, inputs in zip(launch.rules, launch.inputs, strict=True):
            argv = self.launcher.run_argv(rule.pipeline, inputs, launch.repo, rule.sandbox_image)
            outcomes.append(self.launcher.submit(f"{thread.id}/{rule.pipeline}", delivery, argv))
        status = _summary(outcomes)
        return Reply(200 if status == "merged" else 202, {"status": status, "thread": thread.id, "runs": len(outcomes)})

    def _command(self, store: Store, delivery: str, thread: ThreadRecord, command: Command) -> Reply:
        runs = [store.run(spec.run_id) for spec in reversed(store.specs(thread.id)) if spec.run_id]
        if command.name == "retry":
            if not runs:
                return _ignored(f"thread {thread.id} has no run to retry")
            last = runs[0]
            if thread.state == ThreadState.ARCHIVED:
                return _ignored(f"thread {thread.id} is archived")
            if thread.state == ThreadState.WAITING_FOR_FEEDBACK:
                transition(store, thread.id, ThreadState.PLANNING, f"/pipe retry by {command.by}")
            argv = self.launcher.run_argv(last.pipeline_path, dict(last.inputs), command.repo)
            status = self.launcher.submit(f"{thread.id}/{last.pipeline_path}", delivery, argv)
            body = {"status": status, "thread": thread.id, "retry_of": last.id}
            return Reply(200 if status == "merged" else 202, body)
        waiting = [run for run in runs if run.status == RunStatus.WAITING]
        if not waiting:
            return _ignored(f"thread {thread.id} has no run waiting for an approval")
        note = f"/pipe {command.name} by @{command.by}" + (f": {command.note}" if command.note else "")
        status = self.launcher.submit(None, delivery, self.launcher.decision_argv(command.name, waiting[0].id, note))
        return Reply(202, {"status": status, "thread": thread.id, "decided": waiting[0].id})


def _thread(store: Store, repo: str, number: int, pull_request: bool) -> ThreadRecord | None:
    """The thread of issue `number`, or the one owning pull request `number`; None when none."""
    if pull_request:
        return thread_for_pull_request(store, repo, number)
    return store.thread_by_issue(repo, number)


def _summary(outcomes: list[str]) -> str:
    """One word for the launcher's answers to a delivery's runs: the most that happened."""
    for word in ("started", "queued"):
        if word in outcomes:
            return word
    return "merged"


def _ignored(reason: str) -> Reply:
    return Reply(200, {"status": "ignored", "reason": reason})
