"""The actions `pipe ui` can start, each a fixed `pipe` command line (an allow-list): approve,
reject, rollback and resume (optionally again from a top-level step). A value from the request
reaches the command line only once checked: the run id matched exactly against the store, the
rollback mode against `runner.changes.rollback.MODES`, a step id against the run's steps, a count parsed
as an integer, a comment free of control characters; each as one `--option=value` word, and the
run id after `--`."""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from pathlib import Path

from runner.changes.rollback import MODES
from runner.errors import PipeError
from runner.store import RunRecord, Store

ACTIONS = ("approve", "reject", "rollback", "resume")
RESUMABLE = ("failed", "cancelled", "running")  # `running` with a dead runner: resume takes its lease
COMMENT_LIMIT = 4000
_RUN_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z-]{0,79}")
_COUNT = re.compile(r"[1-9][0-9]{0,5}")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class ActionRefused(Exception):
    """The request names no allowed action, or a value that did not pass its check."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def find_run(store: Store, run_id: str) -> RunRecord:
    """The run whose id is exactly `run_id` (no prefix, no `latest`); ActionRefused (404) otherwise."""
    if _RUN_ID.fullmatch(run_id):
        try:
            run = store.run(run_id)
        except PipeError:
            pass
        else:
            if run.id == run_id:
                return run
    raise ActionRefused(404, f"no run {run_id!r}")


def rollback_options(store: Store, run_id: str, values: Mapping[str, str]) -> tuple[str, int | None, str | None]:
    """(mode, steps, to) from a form or query; ActionRefused (400) for anything not allowed."""
    mode = values.get("mode", "")
    if mode not in MODES:
        raise ActionRefused(400, f"mode must be one of {', '.join(MODES)}")
    if mode == "steps":
        steps = values.get("steps", "")
        if not _COUNT.fullmatch(steps):
            raise ActionRefused(400, "steps must be a whole number of at least 1")
        return mode, int(steps), None
    if mode == "to":
        to = values.get("to", "")
        if to not in {step.step_id for step in store.steps(run_id)}:
            raise ActionRefused(400, f"run {run_id} has no completed step {to!r}")
        return mode, None, to
    return mode, None, None


def action_argv(store: Store, state_dir: Path, action: str, run_id: str, form: Mapping[str, str]) -> list[str]:
    """The `pipe` command line for `action` on run `run_id`; raises ActionRefused."""
    if action not in ACTIONS:
        raise ActionRefused(404, f"no action {action!r}; pipe ui knows {', '.join(ACTIONS)}")
    run = find_run(store, run_id)
    argv = [sys.executable, "-m", "runner", action, "--state-dir", str(state_dir)]
    if action == "rollback":
        mode, steps, to = rollback_options(store, run.id, form)
        argv.append({"hard": "--hard", "soft": "--soft", "steps": f"--steps={steps}", "to": f"--to={to}"}[mode])
    elif action == "resume":
        if run.status not in RESUMABLE:
            raise ActionRefused(409, f"run {run.id} is {run.status}; only a failed or cancelled run is resumed here")
        start = form.get("from", "")
        if start:
            if start not in {step.step_id for step in store.steps(run.id) if step.iteration == 0}:
                raise ActionRefused(400, f"run {run.id} has no top-level step {start!r}")
            argv.append(f"--from={start}")
    elif comment := form.get("comment", ""):
        if len(comment) > COMMENT_LIMIT or _CONTROL.search(comment):
            raise ActionRefused(400, f"a comment is at most {COMMENT_LIMIT} characters, without control characters")
        argv.append(f"--comment={comment}")
    return [*argv, "--", run.id]
