"""What an action gets and gives back: the ActionContext (its narrow view of the run), the
ActionResult, and the small interfaces the context carries instead of the store.

An action never sees the store or the engine's options: it gets its rendered `with:` arguments,
the forge (the `Forge` protocol, None when the run has none), the run's state, callables to run a
script in the step's sandbox and to record effects outside the workspace, and, where it needs
them, `approvals` (its own wait point's), `children` (reads of its child runs) and
`step_attempts` (the step's attempts in this iteration). See docs/architecture.md, "Adding an
action".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from runner.errors import UsageError
from runner.forges.base import Forge
from runner.statedir import StateDir
from runner.store import ApprovalRecord, AttemptRecord, RunRecord, StepRecord
from runner.store.records import RunState
from sandbox.base import ExecResult

MAX_CAPTURE = 1024 * 1024  # characters of a sandbox script's output kept in SandboxRun.output

__all__ = ["MAX_CAPTURE", "ActionContext", "ActionResult", "Approvals", "Children", "RunState", "SandboxRun"]


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


@dataclass
class ActionResult:
    """An action's end: `outputs` for later steps; `error` (one line) set when it failed;
    `waiting` when a wait point stops the run until a person decides."""

    outputs: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    waiting: bool = False


class Approvals(Protocol):
    """The approval of the wait point being run (one run, step and iteration)."""

    def current(self) -> ApprovalRecord | None:
        """The approval as stored; None before it was first requested."""
        ...

    def request(self, after_comment: int) -> ApprovalRecord:
        """Store the request (once); `after_comment`: only forge comments with a greater id decide."""
        ...

    def decide(self, decision: str, comment: str | None, by: str) -> ApprovalRecord:
        """Record a decision (`approved` or `rejected`) found on the forge."""
        ...


class Children(Protocol):
    """Reads of the runs a `pipeline` step started (its children), as the store has them."""

    def runs(self) -> list[RunRecord]:
        """The step's run's child runs, oldest first."""
        ...

    def last_event(self, run_id: str) -> int:
        """The id of run `run_id`'s newest event (0 when it has none)."""
        ...

    def changed_inputs(self, run_id: str, after: int) -> dict[str, list[str]]:
        """{step id: output names} a resumed child said changed in its forge reads (its newest
        `inputs_changed` event after event id `after`); {} when none did."""
        ...

    def pull_request_url(self, run_id: str) -> str:
        """The pull request run `run_id` opened or updated ("" when none)."""
        ...

    def steps(self, run_id: str) -> list[StepRecord]:
        """Run `run_id`'s step results."""
        ...


@dataclass
class ActionContext:
    """What an action may use (see the module docstring). `args` is the rendered `with:` mapping
    (the action's function gets it parsed into its Args dataclass, runner/actions/args.py);
    `forge` is None when the run has none (`need_forge()` says so clearly); `publish` is False
    under --no-publish.

    `run_in_sandbox(script, env, mounts, files=None, credentials=True, image=None)` runs a script in
    a fresh sandbox of the step (with `credentials=False`, none of the step's credentials reach it;
    with `image`, in that image instead of the step's); `record(type, target, data)` records an
    effect outside the workspace (a type some action's `effects` can undo);
    `pending_changes()` lists what the attempt changed in the workspace so far and `undo_pending()`
    puts it back; `base_dir` is the pipeline file's directory (for relative paths such as schemas).
    `state_dir` is the run's state directory (caches, child logs), None when there is none;
    `secrets` the run's secret values by name; `token_file`, `default_image` and `ca_bundle` what
    the run was started with (a child run gets them too); `sandbox_user` (uid, gid) the step's
    sandboxes run as; `submit_child(pipeline file, inputs, (run id, child key))` creates a child
    run `pending` and enqueues it on the broker, returning its id (None: no broker, children are
    local processes)."""

    run_id: str
    pipeline: str
    step_id: str
    args: Mapping[str, Any]
    inputs: Mapping[str, Any]
    workspace: Path
    state: RunState
    publish: bool
    forge: Forge | None
    log: Callable[[str], None]
    run_in_sandbox: Callable[..., SandboxRun]
    record: Callable[[str, str, Mapping[str, Any]], None]
    pending_changes: Callable[[], list[Any]] = lambda: []
    undo_pending: Callable[[], int] = lambda: 0
    base_dir: Path = Path(".")
    iteration: int = 0
    approvals: Approvals | None = None
    children: Children | None = None
    step_attempts: Callable[[], Sequence[AttemptRecord]] = lambda: ()
    state_dir: StateDir | None = None
    secrets: Mapping[str, str] = field(default_factory=dict)
    token_file: Path | None = None
    default_image: str | None = None
    ca_bundle: Path | None = None
    sandbox_user: tuple[int, int] = (1000, 1000)
    submit_child: Callable[[Path, Mapping[str, Any], tuple[str, str]], str] | None = None

    def need_forge(self) -> Forge:
        """The forge; raises UsageError naming the step when the run has none."""
        if self.forge is None:
            raise UsageError(f"step {self.step_id}: this action needs a forge (--forge github|local)")
        return self.forge

    def need_approvals(self) -> Approvals:
        """The wait point's approval; raises UsageError when the context has none."""
        if self.approvals is None:
            raise UsageError(f"step {self.step_id}: this action needs the run's store (approvals)")
        return self.approvals

    def need_children(self) -> Children:
        """The child runs' reads; raises UsageError when the context has none."""
        if self.children is None:
            raise UsageError(f"step {self.step_id}: this action needs the run's store (child runs)")
        return self.children

    def need_state_dir(self) -> StateDir:
        """The state directory; raises UsageError when the context has none."""
        if self.state_dir is None:
            raise UsageError(f"step {self.step_id}: this action needs the state directory")
        return self.state_dir
