"""Acting on a verified delivery: note its id in the store (a replay is answered "duplicate" and
starts nothing), decide what it asks for (runner/serve/events.py) and do it against the threads
(runner/threads/) and the launcher:

- a rule's pipeline starts in the background for the issue's thread (made when there is none)
  or, for a pull request, the thread that owns it (a pull request of no thread is ignored); a
  thread waiting for feedback moves to `planning` on receipt; an archived one starts nothing;
- `/pipe retry` starts the thread's last run's pipeline again with the same inputs; `/pipe
  approve` / `/pipe reject` decide the thread's run waiting at a wait point (`pipe approve RUN`);
- a closed pull request archives its thread, the reason saying merged or closed.

Every decision is one log line. Answers: 202 when something started, 200 otherwise.
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

    def handle(self, delivery: str, event: str, payload: Mapping[str, Any]) -> Reply:
        """Act on delivery `delivery` (X-GitHub-Delivery) of `event` (X-GitHub-Event) whose body
        parsed to `payload`. Errors of the store or a refused transition become a logged 200
        "ignored" (GitHub would only redeliver the same thing); anything else propagates."""
        action = str(payload.get("action") or "") or None
        store = Store(self.state_dir)
        try:
            if not store.record_delivery(delivery, event, action):
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
        for rule, inputs in zip(launch.rules, launch.inputs, strict=True):
            argv = self.launcher.run_argv(rule.pipeline, inputs, launch.repo, rule.sandbox_image)
            self.launcher.start(delivery, argv)
        return Reply(202, {"status": "started", "thread": thread.id, "runs": len(launch.rules)})

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
            self.launcher.start(delivery, argv)
            return Reply(202, {"status": "started", "thread": thread.id, "retry_of": last.id})
        waiting = [run for run in runs if run.status == RunStatus.WAITING]
        if not waiting:
            return _ignored(f"thread {thread.id} has no run waiting for an approval")
        note = f"/pipe {command.name} by @{command.by}" + (f": {command.note}" if command.note else "")
        self.launcher.start(delivery, self.launcher.decision_argv(command.name, waiting[0].id, note))
        return Reply(202, {"status": "started", "thread": thread.id, "decided": waiting[0].id})


def _thread(store: Store, repo: str, number: int, pull_request: bool) -> ThreadRecord | None:
    """The thread of issue `number`, or the one owning pull request `number`; None when none."""
    if pull_request:
        return thread_for_pull_request(store, repo, number)
    return store.thread_by_issue(repo, number)


def _ignored(reason: str) -> Reply:
    return Reply(200, {"status": "ignored", "reason": reason})
