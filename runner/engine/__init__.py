"""The engine: runs a pipeline's steps in sandboxes, recording attempts, changes and events.

The public surface is `Engine` (one per run: `.run(inputs)`, `.resume(point)`), `RunOptions`
and `ResumePoint`. The parts: `lifecycle` (create, lease, concurrency, finish, on-failure
rollback), `steps` (`if:`, repeat, retries), `attempts`, `context` (what an action acts
through), `scope` (the frozen per-run scope), `environment` (expressions and sandbox plans).
See docs/architecture.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runner.engine.options import ResumePoint, RunOptions

if TYPE_CHECKING:
    from runner.engine.engine import Engine

__all__ = ["Engine", "ResumePoint", "RunOptions"]


def __getattr__(name: str) -> Any:
    """`Engine` is imported on first use: modules below the engine (actions) import parts of
    this package, and the engine imports them."""
    if name == "Engine":
        from runner.engine.engine import Engine

        return Engine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
