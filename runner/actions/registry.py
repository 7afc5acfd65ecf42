"""Every built-in action, listed by reference (the way pre-commit's all_languages.py lists its
languages), so the type checker follows each name to its function and Args class.

To add an action: write `@action("family/name", NameArgs, ...)` over a function `(ctx, args) ->
ActionResult` in its family's module, list it in BUILTIN below, and declare its `with:` in
schemas/pipeline.schema.json (a test checks that the Args fields and the schema agree). Effects
outside the workspace it records need an undo function (runner/actions/undo.py) in its `effects`
and their type in runner.changes.recording.EXTERNAL_TYPES (also tested).

Importing this module imports the action modules, never docker, PyGithub or GitPython: those stay
inside the functions that use them (`pipe --help` and `pipe validate` do not import this module).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from runner.actions import agent, checks, children, feedback, git, github, verify, wait
from runner.actions.action import Action
from runner.actions.base import ActionContext, RunState
from runner.changes.external import ExternalUndo
from runner.errors import UsageError
from runner.forges.base import Forge
from runner.pipeline.model import Pipeline, Step

BUILTIN: tuple[Action[Any], ...] = (
    agent.agent,
    git.checkout,
    git.commit,
    git.push,
    git.sync,
    checks.checks,
    github.comment,
    github.create_issues,
    github.issue,
    github.issues,
    github.labels,
    github.pr_diff,
    github.pull_request,
    github.release,
    github.review,
    feedback.review_threads,
    feedback.reply_threads,
    children.pipeline,
    verify.verify,
    wait.approval,
)

ACTIONS: Mapping[str, Action[Any]] = {found.name: found for found in BUILTIN}


def _undo_functions() -> dict[str, ExternalUndo]:
    """change type -> its undo function, from every action's `effects`. Raises ValueError when two
    actions register different undo functions for the same change type."""
    found: dict[str, ExternalUndo] = {}
    for listed in BUILTIN:
        for kind, undo in listed.effects.items():
            if found.setdefault(kind, undo) is not undo:
                raise ValueError(f"action {listed.name}: change type {kind!r} already has another undo function")
    return found


EXTERNAL_UNDO: Mapping[str, ExternalUndo] = _undo_functions()


def needs_forge(pipeline: Pipeline) -> bool:
    """Whether a step of `pipeline` uses an action that needs a forge (or, like wait/approval with
    an `issue`, uses one with the `with:` it has), or progress goes to an issue comment."""
    for step in pipeline.all_steps():
        found = ACTIONS.get(step.uses) if step.uses else None
        if found is not None and found.uses_forge(step.with_):
            return True
    return pipeline.report.issue_comment is not None


def forge_reader(
    pipeline: Pipeline, run_id: str, inputs: Mapping[str, Any], forge: Forge | None
) -> Callable[[Step, dict[str, Any]], tuple[dict[str, str], str | None]]:
    """`read(step, args)`: run a forge read (github/issue, github/issues, github/pr-diff) again with
    its rendered `args`, for `pipe resume` (runner/changes/resume.py): (outputs, error). The read
    gets no sandbox, records nothing and publishes nothing; any exception goes to the caller."""

    def refuse(*_: Any, **__: Any) -> Any:
        raise UsageError("a forge read cannot run a sandbox or record a change")

    def read(step: Step, args: dict[str, Any]) -> tuple[dict[str, str], str | None]:
        context = ActionContext(
            run_id=run_id,
            pipeline=pipeline.name,
            step_id=step.id,
            args=args,
            inputs=inputs,
            workspace=Path("."),
            state=RunState(),
            publish=False,
            forge=forge,
            log=lambda text: None,
            run_in_sandbox=refuse,
            record=refuse,
        )
        if step.uses is None:
            raise UsageError(f"step {step.id}: not an action")
        done = ACTIONS[step.uses](context)
        return done.outputs, done.error

    return read
