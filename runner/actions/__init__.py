"""Built-in actions (`uses:`), one module per family, listed in ACTIONS.

An action is a function `(ActionContext) -> ActionResult`. It gets its rendered `with:` arguments,
the forge, the run's state (its branch, the remote commit last seen, its pull request), a way to
run a script in the step's sandbox, and a way to record effects outside the workspace with what
undoes them. The schema declares every action's `with:`; a pipeline using an action missing here
is refused before anything runs (exit 2).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.errors import UsageError
from sandbox.base import ExecResult

# action name -> "module:function"
ACTIONS: dict[str, str] = {
    "git/checkout": "runner.actions.git:checkout",
    "git/commit": "runner.actions.git:commit",
    "git/push": "runner.actions.git:push",
    "git/sync": "runner.actions.git:sync",
    "github/issue": "runner.actions.github:issue",
    "github/comment": "runner.actions.github:comment",
    "github/pull-request": "runner.actions.github:pull_request",
    "github/labels": "runner.actions.github:labels",
    "github/pr-diff": "runner.actions.github:pr_diff",
    "github/review": "runner.actions.github:review",
    "github/release": "runner.actions.github:release",
    "verify": "runner.actions.verify:verify",
    "agent": "runner.actions.agent:agent",
    "wait/approval": "runner.actions.wait:approval",
    "pipeline": "runner.actions.children:pipeline",
    "github/issues": "runner.actions.github:issues",
    "github/create-issues": "runner.actions.github:create_issues",
}


@dataclass
class RunState:
    """What git and forge actions of one run know about each other, kept in the store."""

    branch: str | None = None
    base: str | None = None
    remote_sha: str | None = None
    pull_request: int | None = None
    pull_request_url: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class SandboxRun:
    """A script's end in the sandbox: how it ended, the outputs it wrote, and its output (stdout
    and stderr merged, masked, the last MAX_CAPTURE characters). `output_error` says why the
    outputs could not be read (too large, malformed): then `outputs` is empty and the caller must
    fail rather than take the missing values for "nothing to report"."""

    result: ExecResult
    outputs: dict[str, str]
    output: str = ""
    output_error: str | None = None


MAX_CAPTURE = 1024 * 1024


@dataclass
class ActionContext:
    """What an action may use. `args` are its rendered `with:` arguments; `forge` is None when the
    run has none (`need_forge()` says so clearly); `publish` is False under --no-publish.

    `run_in_sandbox(script, env, mounts, files=None, credentials=True, image=None)` runs a script in a
    fresh sandbox of the step (with `credentials=False`, none of the step's credentials reach it; with
    `image`, in that image instead of the step's);
    `pending_changes()` lists what the attempt changed in the workspace so far and `undo_pending()`
    puts it back; `base_dir` is the pipeline file's directory (for relative paths such as schemas)."""

    run_id: str
    pipeline: str
    step_id: str
    args: Mapping[str, Any]
    inputs: Mapping[str, Any]
    workspace: Path
    state: RunState
    publish: bool
    forge: Any
    log: Callable[[str], None]
    run_in_sandbox: Callable[..., SandboxRun]
    record: Callable[[str, str, Mapping[str, Any]], None]
    pending_changes: Callable[[], list[Any]] = lambda: []
    undo_pending: Callable[[], int] = lambda: 0
    base_dir: Path = Path(".")
    store: Any = None
    iteration: int = 0
    options: Any = None

    def need_forge(self) -> Any:
        if self.forge is None:
            raise UsageError(f"step {self.step_id}: this action needs a forge (--forge github|local)")
        return self.forge


@dataclass
class ActionResult:
    """An action's end: `outputs` for later steps; `error` set when it failed."""

    outputs: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    waiting: bool = False


def action_function(name: str) -> Callable[[ActionContext], ActionResult]:
    """The function implementing action `name` (KeyError when there is none)."""
    module, function = ACTIONS[name].split(":")
    found: Callable[[ActionContext], ActionResult] = getattr(importlib.import_module(module), function)
    return found
