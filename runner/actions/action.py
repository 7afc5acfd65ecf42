"""An action as an object: its name (`uses:`), its function, the Args dataclass its `with:` is parsed
into, whether it needs a forge, and the external effects it records with their undo functions.

Each action module declares its actions with `@action(...)`; runner/actions/registry.py lists them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from runner.actions.args import parse_args
from runner.actions.base import ActionContext, ActionResult
from runner.changes.external import ExternalUndo

A = TypeVar("A")
ActionFunction = Callable[[ActionContext, A], ActionResult]


@dataclass(frozen=True)
class Action(Generic[A]):
    """A built-in action. Calling it with a context parses `ctx.args` into `args` (raising
    ArgumentError for a value that does not fit, see runner/actions/args.py) and runs `function`.

    `needs_forge`: the run must have a forge; `forge_when`: `with:` keys that, when set, make it use
    one (wait/approval's `issue`); `effects`: change type -> its undo function, for every effect
    outside the workspace the action records with `ctx.record` (runner/changes/external.py)."""

    name: str
    function: ActionFunction[A]
    args: type[A]
    needs_forge: bool = False
    forge_when: tuple[str, ...] = ()
    effects: Mapping[str, ExternalUndo] = field(default_factory=dict)
    description: str = ""

    def __call__(self, ctx: ActionContext) -> ActionResult:
        """Run the action with its arguments parsed from `ctx.args`."""
        return self.function(ctx, parse_args(self.args, ctx.args, ctx.step_id))

    def uses_forge(self, with_: Mapping[str, Any]) -> bool:
        """Whether a step using this action with these (unrendered) `with:` arguments needs a forge."""
        return self.needs_forge or any(with_.get(key) is not None for key in self.forge_when)


def action(
    name: str,
    args: type[A],
    *,
    needs_forge: bool = False,
    forge_when: tuple[str, ...] = (),
    effects: Mapping[str, ExternalUndo] | None = None,
) -> Callable[[ActionFunction[A]], Action[A]]:
    """Declare `function(ctx, args)` as the action `name` (see Action)."""

    def declare(function: ActionFunction[A]) -> Action[A]:
        doc = (function.__doc__ or "").strip()
        return Action(name, function, args, needs_forge, forge_when, dict(effects or {}), doc)

    return declare
