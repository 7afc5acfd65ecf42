"""Built-in actions (`uses:`), one module per family, listed in runner/actions/registry.py.

An action is an `Action` object (runner/actions/action.py): a function `(ActionContext, Args) ->
ActionResult`, the frozen dataclass its `with:` arguments are parsed into (runner/actions/args.py),
whether it needs a forge, and the effects outside the workspace it records with what undoes them.
It acts through its context (runner/actions/base.py): its arguments, the forge, the run's state
(its branch, the remote commit last seen, its pull request), a way to run a script in the step's
sandbox, and a way to record effects. The schema declares every action's `with:`; a pipeline using
an action missing from the registry is refused before anything runs (exit 2).

This package's top level stays light (no action module is imported here): import the registry
for the actions themselves.
"""

from __future__ import annotations

from runner.actions.base import MAX_CAPTURE, ActionContext, ActionResult, Approvals, Children, RunState, SandboxRun

__all__ = ["MAX_CAPTURE", "ActionContext", "ActionResult", "Approvals", "Children", "RunState", "SandboxRun"]
