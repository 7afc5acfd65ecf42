"""Undoing effects outside the workspace (pushes, pull requests, comments, releases, labels): the
contract between rollback (runner/changes/rollback.py) and the undo functions the actions register
with their effects (runner/actions/registry.py, runner/actions/undo.py).

The changes layer never imports the actions: whoever rolls back (the engine, `pipe rollback`)
passes the registry's undo functions to the Undoer. An undo function is called as
`undo(change, forge, origin)`; it first checks that the forge still shows what the run left, and
raises RollbackConflict when someone changed it meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runner.errors import ExitCode, PipeError
from runner.store import ChangeRecord


class RollbackConflict(PipeError):
    """The state found is not the state recorded; the rollback stopped without overwriting it."""

    exit_code = ExitCode.STEP_FAILED


@dataclass(frozen=True)
class Origin:
    """The run being rolled back, and `written_at(run_id, target)`: when another run wrote `target`
    (seconds since the epoch; None when this store does not know)."""

    run_id: str
    written_at: Callable[[str, str], float | None] = lambda run_id, target: None


# undo(change, forge, origin): puts one recorded external change back (the forge as the
# `Forge` protocol of runner/forges/base.py, opened from the settings recorded with the change).
ExternalUndo = Callable[[ChangeRecord, Any, Origin], None]
