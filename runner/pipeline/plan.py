"""The dry-run plan: every step with what it would run, rendered where the values are known.

Step outputs are not known before a run, so they render as `<steps.ID.outputs.NAME>` placeholders;
secrets render as `***`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runner.errors import TemplateError
from runner.pipeline.expressions import Expressions
from runner.pipeline.model import Pipeline, Step

# Attributes Jinja2's sandbox probes on every value it calls; an Unknown must not claim them.
_PROBED = frozenset({"unsafe_callable", "alters_data", "jinja_pass_arg"})


class Unknown:
    """A value known only once the run has reached it; renders as `<path>`.

    Attribute access, item access and calls give further Unknowns (`steps.x.outputs.get('y')`
    renders as `<steps.x.outputs.y>`); iterating one gives nothing.
    """

    def __init__(self, path: str) -> None:
        self.path = path

    def __getattr__(self, name: str) -> Unknown:
        if name.startswith("_") or name in _PROBED:
            raise AttributeError(name)
        return Unknown(f"{self.path}.{name}")

    def __call__(self, *args: Any, **kwargs: Any) -> Unknown:
        """`outputs.get('name', default)` reads `outputs.name`; any other call keeps the path."""
        head, _, method = self.path.rpartition(".")
        if method == "get" and args:
            return Unknown(f"{head}.{args[0]}")
        return Unknown(f"{self.path}()")

    def __getitem__(self, name: object) -> Unknown:
        return Unknown(f"{self.path}.{name}")

    def __str__(self) -> str:
        return f"<{self.path}>"

    def __repr__(self) -> str:
        return f"<{self.path}>"

    def __iter__(self) -> Any:
        return iter(())

    # Comparisons with an unknown value are false: the plan shows the branch a template takes then.
    def __lt__(self, other: object) -> bool:
        return False

    __gt__ = __le__ = __ge__ = __lt__


class _MaskedSecrets(Mapping[str, str]):
    def __init__(self, names: list[str]) -> None:
        self._names = names

    def __getitem__(self, name: str) -> str:
        if name not in self._names:
            raise KeyError(name)
        return "***"

    def __iter__(self) -> Any:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


@dataclass(frozen=True)
class PlannedStep:
    """One line of the plan: `depth` is the nesting level inside repeat groups; `detail` is the
    rendered script or action arguments (or the error that rendering met)."""

    step: Step
    depth: int
    title: str
    detail: str


def plan(pipeline: Pipeline, inputs: Mapping[str, Any]) -> list[PlannedStep]:
    """The steps of `pipeline` as they would run with `inputs` (already resolved)."""
    context: dict[str, Any] = {
        "inputs": dict(inputs),
        "env": dict(pipeline.env),
        "run": Unknown("run"),
        "github": Unknown("github"),
        "secrets": _MaskedSecrets([s.name for s in pipeline.secrets]),
        "steps": {s.id: Unknown(f"steps.{s.id}") for s in pipeline.all_steps()},
        "repeat": Unknown("repeat"),
    }
    expressions = Expressions(context, filters={"fromjson": _fromjson})
    planned: list[PlannedStep] = []

    def walk(steps: tuple[Step, ...], depth: int) -> None:
        for step in steps:
            title = _safe(expressions.render, step.display_name)
            if step.run is not None:
                detail = _safe(expressions.render_script, step.run)
            elif step.repeat is not None:
                until = f" until {step.repeat.until}" if step.repeat.until else ""
                detail = f"repeat at most {step.repeat.max} times{until}"
            else:
                arguments = _safe(expressions.render_value, dict(step.with_))
                detail = f"uses {step.uses} with {arguments}"
            planned.append(PlannedStep(step, depth, title, detail))
            if step.repeat is not None:
                walk(step.repeat.steps, depth + 1)

    walk(pipeline.steps, 0)
    return planned


def _fromjson(value: Any) -> Any:
    """The `fromjson` filter of the plan: an Unknown stays unknown (iterating it gives nothing)."""
    return value if isinstance(value, Unknown) else json.loads(value)


def _safe(render: Any, value: Any) -> Any:
    """`render(value)`, or `value` with the reason it cannot be rendered before the run."""
    try:
        return render(value)
    except TemplateError as error:
        return f"{value}\n(cannot render yet: {error})"


def format_plan(pipeline: Pipeline, planned: list[PlannedStep]) -> str:
    """The plan as text for people."""
    lines = [f"pipeline {pipeline.name} ({pipeline.path}): {len(planned)} steps, dry run"]
    for number, entry in enumerate(planned, 1):
        indent = "  " * entry.depth
        step = entry.step
        extras = []
        if step.condition is not None:
            extras.append(f"if: {step.condition}")
        if step.retry.attempts > 1:
            extras.append(f"attempts: {step.retry.attempts}")
        if step.timeout is not None:
            extras.append(f"timeout: {step.timeout:g}s")
        if step.continue_on_error:
            extras.append("continue-on-error")
        suffix = f"  [{', '.join(extras)}]" if extras else ""
        lines.append(f"{indent}{number}. {step.id} ({step.kind}): {entry.title}{suffix}")
        for detail_line in entry.detail.rstrip("\n").splitlines():
            lines.append(f"{indent}     | {detail_line}")
    return "\n".join(lines)
