"""The thread reporter: keeps a run's thread in step with the run, from the run's events.

Built by the `pipe run` / `pipe resume` command for a pipeline with a `thread:` key. When the run
starts (`run_started`, or `run_resumed`) it adds the thread's next spec, linked to the run
(`initial` while the thread has no pull request, else `update` targeting the pull request's
branch), and moves the thread to `working` (through `planning` when it waited for feedback). When
the run finishes (`run_finished`) it keeps the branch and pull request the run's state holds, the
spec's rendered `instructions`, and moves the thread to `waiting_for_feedback` (the run succeeded,
or a pull request exists) or back to `planning` (it failed without one). A run stopped at a wait
point leaves its thread `working`.

A thread problem (a template that does not render, no thread owning the pull request, an archived
thread) never fails the run: it is told to `on_problem` and the thread is left alone.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any

from runner.errors import PipeError
from runner.names import EventKind, RunStatus, SpecKind, ThreadState
from runner.pipeline.expressions import Expressions
from runner.pipeline.model import ThreadBinding
from runner.store import RunState, Store, ThreadRecord
from runner.threads.api import thread_for_issue, thread_for_pull_request, transition
from runner.threads.binding import render_target
from runner.threads.machine import path_to


def _tell_stderr(message: str) -> None:
    print(f"pipe: thread: {message}", file=sys.stderr)


class ThreadReporter:
    """A Reporter (runner/reporters) that moves the thread of `binding` as the run goes.

    `inputs` are the run's inputs, `state` the RunState the engine updates (branch, pull request),
    `default_repo` the forge's repository (for an empty `thread.repo`), `env` the pipeline's env
    (for `instructions`)."""

    def __init__(
        self,
        store: Store,
        binding: ThreadBinding,
        inputs: Mapping[str, Any],
        state: RunState,
        *,
        default_repo: str = "",
        env: Mapping[str, str] | None = None,
        on_problem: Callable[[str], None] = _tell_stderr,
    ) -> None:
        self.store = store
        self.binding = binding
        self.inputs = dict(inputs)
        self.state = state
        self.default_repo = default_repo
        self.env = dict(env or {})
        self.on_problem = on_problem
        self.thread_id: str | None = None
        self.spec_version: int | None = None

    def event(self, kind: str, data: Mapping[str, Any]) -> None:
        """Act on run_started / run_resumed and run_finished; ignore every other kind."""
        run_id = str(data.get("run", ""))
        try:
            if kind in (EventKind.RUN_STARTED, EventKind.RUN_RESUMED):
                self._start(run_id)
            elif kind == EventKind.RUN_FINISHED and self.thread_id is not None:
                self._finish(run_id, str(data.get("status", "")))
        except (PipeError, ValueError) as problem:
            self.on_problem(str(problem))

    def output(self, step: str, text: str) -> None:
        """Step output is not the thread's concern."""

    def close(self) -> None:
        """Nothing to release: every write was made when its event came."""

    def _thread(self) -> ThreadRecord | None:
        target = render_target(self.binding, self.inputs, self.default_repo)
        if target.issue is not None:
            return thread_for_issue(self.store, target.repo, target.issue)
        assert target.pull_request is not None
        found = thread_for_pull_request(self.store, target.repo, target.pull_request)
        if found is None:
            self.on_problem(f"no thread owns pull request #{target.pull_request} of {target.repo}; none is kept")
        return found

    def _start(self, run_id: str) -> None:
        thread = self._thread()
        if thread is None:
            return
        if thread.state == ThreadState.ARCHIVED:
            self.on_problem(f"thread {thread.id} is archived; the run does not change it")
            return
        update = thread.pull_request is not None
        kind = SpecKind.UPDATE if update else SpecKind.INITIAL
        spec = self.store.add_spec(thread.id, kind, thread.branch if update else None, run_id)
        self.thread_id, self.spec_version = thread.id, spec.version
        for state in path_to(thread.state, ThreadState.WORKING):
            reason = (
                f"run {run_id} applies spec {spec.version} ({kind})"
                if state == ThreadState.WORKING
                else f"spec {spec.version} ({kind}) planned"
            )
            transition(self.store, thread.id, state, reason, run_id)

    def _finish(self, run_id: str, status: str) -> None:
        assert self.thread_id is not None and self.spec_version is not None
        if status == RunStatus.WAITING:
            return
        instructions = self._instructions(run_id)
        if instructions is not None:
            self.store.set_spec_instructions(self.thread_id, self.spec_version, instructions)
        thread = self.store.thread(self.thread_id)
        if thread.state != ThreadState.WORKING:
            return  # moved meanwhile (archived: the pull request was merged while the run went)
        has_pull_request = self.state.pull_request is not None or thread.pull_request is not None
        succeeded = status == RunStatus.SUCCEEDED
        to = ThreadState.WAITING_FOR_FEEDBACK if succeeded or has_pull_request else ThreadState.PLANNING
        transition(
            self.store,
            self.thread_id,
            to,
            f"run {run_id} {status or 'ended'}",
            run_id,
            branch=self.state.branch,
            pull_request=self.state.pull_request,
        )

    def _instructions(self, run_id: str) -> str | None:
        """The rendered `instructions` (None: none declared, or they do not render, told to
        `on_problem`), with the steps as the run left them (a repeat group's last iteration)."""
        if self.binding.instructions is None:
            return None
        steps: dict[str, Any] = {}
        for step in self.store.steps(run_id):
            steps[step.step_id] = {"outputs": step.outputs, "outcome": step.outcome, "conclusion": step.conclusion}
        context = {"inputs": self.inputs, "steps": steps, "env": self.env, "run": {"id": run_id}}
        try:
            return Expressions(context).render(self.binding.instructions)
        except PipeError as problem:
            self.on_problem(f"thread.instructions: {problem}")
            return None
