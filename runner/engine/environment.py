"""What a step sees: the expression context its templates render in (`inputs`, `env`, `secrets`,
`github`, `run`, `repeat`, `steps`), the pipeline's rendered `env:`, and its sandbox plan (settings,
variables, credentials, labels)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from runner import __version__
from runner.engine.sandboxing import SandboxPlan
from runner.engine.scope import RunScope
from runner.names import Outcome
from runner.pipeline.expressions import Expressions
from runner.pipeline.model import Pipeline, Step
from runner.results import StepResult


def step_expressions(
    scope: RunScope, results: Mapping[str, StepResult], failed_step: str | None, iteration: int
) -> Expressions:
    """The expressions a step's templates and `if:` use in repeat `iteration` (0 outside one),
    given the latest result of each step so far (`results`) and the first step that concluded
    `failure` (`failed_step`): `success()` holds until there is one, `failure()` after."""
    failed = failed_step is not None
    context = {
        "inputs": dict(scope.inputs),
        "env": dict(scope.pipeline_env),
        "secrets": dict(scope.options.secrets),
        "github": {
            "event": dict(scope.options.event),
            "actions": scope.options.environ.get("GITHUB_ACTIONS") == "true",
        },
        "run": {
            "id": scope.run_id,
            "pipeline": scope.pipeline.name,
            "workspace": str(scope.workspace),
            "failed_step": failed_step or "",
            "pipe_version": __version__,
        },
        "repeat": {"iteration": iteration},
        "steps": {
            step_id: {"outputs": r.outputs, "outcome": r.outcome.value, "conclusion": r.conclusion.value}
            for step_id, r in results.items()
        },
    }
    return Expressions(context, status={"success": not failed, "failure": failed, "cancelled": False})


def first_failure(results: Iterable[StepResult]) -> str | None:
    """The id of the first of `results` (in the order they ended) whose conclusion is failure, or None."""
    return next((r.step_id for r in results if r.conclusion is Outcome.FAILURE), None)


def render_pipeline_env(
    pipeline: Pipeline, inputs: Mapping[str, Any], secrets: Mapping[str, str], run_id: str
) -> dict[str, str]:
    """The pipeline's `env:`, rendered with `inputs`, `secrets` and `run` (id, pipeline).
    Raises TemplateError."""
    expressions = Expressions(
        {"inputs": dict(inputs), "secrets": dict(secrets), "env": {}, "run": {"id": run_id, "pipeline": pipeline.name}}
    )
    return {key: expressions.render(value) for key, value in pipeline.env.items()}


def sandbox_plan(scope: RunScope, step: Step) -> SandboxPlan:
    """How to start `step`'s sandbox: its settings, the pipeline's env and pipe's own variables,
    the values of its credentials (withheld from sandboxes that must not get them), its labels."""
    env = dict(scope.pipeline_env)
    env.update(
        {
            "CI": "true",
            "PIPE": "true",
            "PIPE_RUN_ID": scope.run_id,
            "PIPE_STEP": step.id,
            "PIPE_WORKSPACE": "/workspace",
        }
    )
    names = step.credentials if step.credentials is not None else scope.pipeline.credentials
    withheld: set[str] = set()
    for name in names:
        values = scope.credentials.get(name, {})
        env.update(values)
        withheld |= set(values)
    labels = {"pipe.run": scope.run_id, "pipe.step": step.id, "pipe.pipeline": scope.pipeline.name}
    return SandboxPlan(scope.settings(step), env, labels, frozenset(withheld))
