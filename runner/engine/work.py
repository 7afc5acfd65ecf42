"""An attempt's work and how it ends: the `Work` an attempt runs (a `run:` script here; a `uses:`
action in runner/engine/context.py) and `WorkDone`, its end, which says "waiting" for a wait
point instead of raising."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from runner.engine.sandboxing import Sandboxes
from runner.outputs import OutputError, parse_outputs
from runner.pipeline.model import Step
from sandbox.base import ExecResult, ExecStatus, Payload


@dataclass(frozen=True)
class WorkDone:
    """How an attempt's work ended: the sandbox result, the outputs it wrote, an error (None when
    it succeeded), and `waiting` when a wait point waits for a decision (the run stops there)."""

    result: ExecResult
    outputs: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    waiting: bool = False


Work = Callable[[Callable[[bytes], None], int], WorkDone]
"""An attempt's work: given where its output goes (raw bytes) and the attempt number, its end."""


def script_work(
    step: Step, sandboxes: Sandboxes, script: str, env: dict[str, str], timeout: float, memory: int | None
) -> Work:
    """An attempt of a `run:` step: the rendered `script` in the step's (warm) sandbox with the
    step's rendered `env`, stopped after `timeout` seconds; `memory` (bytes) names the limit in an
    out-of-memory error."""

    def work(on_output: Callable[[bytes], None], number: int) -> WorkDone:
        prepared = sandboxes.take(step)
        try:
            payload = Payload(script, {**env, "PIPE_ATTEMPT": str(number)})
            result = prepared.execute(payload, timeout=timeout, on_output=on_output)
        finally:
            prepared.discard()
        error = describe(result, timeout, memory)
        try:
            return WorkDone(result, parse_outputs(result.outputs), error)
        except OutputError as problem:
            return WorkDone(result, {}, f"$PIPE_OUTPUT: {problem}")

    return work


def describe(result: ExecResult, timeout: float, memory: int | None) -> str | None:
    """The one-line error of a script's end (None when it succeeded)."""
    if result.status is ExecStatus.SUCCEEDED:
        return None
    if result.status is ExecStatus.TIMEOUT:
        return f"timed out after {timeout:g}s"
    if result.status is ExecStatus.OOM:
        return f"killed: out of memory (limit {memory} bytes)"
    if result.status is ExecStatus.ERROR:
        return result.detail or "the sandbox failed"
    return f"exited with code {result.exit_code}"
