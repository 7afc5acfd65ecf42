"""What the pages show, read from the store: plain dicts for the templates and the JSON API."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from runner.changes.diffs import diff_lines
from runner.changes.objects import ObjectStore
from runner.changes.rollback import describe_effect
from runner.names import FINISHED
from runner.statedir import StateDir
from runner.store import AttemptRecord, RunRecord, Store
from runner.ui.query import Filters, list_runs
from runner.ui.runview import fold_git, header, nest, repeat_groups, timeline
from runner.ui.tree import run_tree
from runner.units import format_duration


def _when(stamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp)) if stamp else "-"


def run_summary(run: RunRecord) -> dict[str, Any]:
    # No ticking durations for unfinished runs: a live page changes only when the run does.
    took = format_duration(run.finished_at - run.started_at) if run.started_at and run.finished_at else "…"
    return {
        "id": run.id,
        "pipeline": run.pipeline_name,
        "path": run.pipeline_path,
        "status": run.status,
        "trigger": run.trigger,
        "issue": str(run.inputs.get("issue") or ""),
        "repository": str(run.inputs.get("repo") or ""),
        "started": _when(run.started_at or run.created_at),
        "duration": took,
        "current_step": run.current_step or "",
        "error": run.error or "",
        "finished": run.status in FINISHED,
    }


def runs_page(state_dir: Path, filters: Filters) -> dict[str, Any]:
    """One page of the runs list: {"runs": [run_summary], "total", "page", "pages", "pipelines"}."""
    from runner.ui.query import PAGE_SIZE

    runs, total, names = list_runs(state_dir, filters)
    pages = max(1, -(-total // PAGE_SIZE))
    return {
        "runs": [run_summary(run) for run in runs],
        "total": total,
        "page": filters.page,
        "pages": pages,
        "pipelines": names,
    }


def live_attempt(store: Store, run: RunRecord) -> AttemptRecord | None:
    """The newest attempt of a run still going (its log is the one the page follows), else None."""
    attempts = store.attempts(run.id)
    return attempts[-1] if attempts and run.status not in FINISHED else None


def run_detail(store: Store, state_dir: Path, run_id: str) -> dict[str, Any]:
    """The run page's data: the run, its steps with their attempts, changes (with diffs) and the
    newest attempt while the run is going (its log is read by runner.ui.logs, not here)."""
    run = store.run(run_id)
    attempts = store.attempts(run.id)
    objects = ObjectStore(StateDir(state_dir).objects)
    changes: dict[tuple[str, int], list[dict[str, Any]]] = {}
    by_step: dict[tuple[str, int], list[Any]] = {}
    for change in store.changes(run.id):
        by_step.setdefault((change.step_id, change.iteration), []).append(change)
    for key, recorded in by_step.items():
        kept, folded = fold_git(recorded)
        changes[key] = [
            {
                "text": describe_effect(change),
                "undone": change.undone_at is not None,
                "diff": diff_lines(objects, change),
            }
            for change in kept
        ]
        if folded:
            changes[key].append({"text": folded, "undone": False, "diff": [], "folded": True})
    steps = []
    seen: set[tuple[str, int]] = set()
    for step in store.steps(run.id):
        key = (step.step_id, step.iteration)
        seen.add(key)
        steps.append(
            _step(
                step.step_id,
                step.iteration,
                step.outcome,
                step.conclusion,
                step.error,
                step.outputs,
                [a for a in attempts if (a.step_id, a.iteration) == key],
                changes.get(key, []),
            )
        )
    for attempt in attempts:  # a step still going (or interrupted) has attempts but no result yet
        key = (attempt.step_id, attempt.iteration)
        if key not in seen:
            seen.add(key)
            status = (
                "waiting"
                if attempt.status == "waiting"
                else "running"
                if attempt.status == "running"
                else "interrupted"
            )
            steps.append(
                _step(
                    attempt.step_id,
                    attempt.iteration,
                    status,
                    status,
                    attempt.error,
                    {},
                    [a for a in attempts if (a.step_id, a.iteration) == key],
                    changes.get(key, []),
                )
            )
    live = live_attempt(store, run)
    waits = []
    for step_id, iteration in dict.fromkeys((a.step_id, a.iteration) for a in attempts):
        approval = store.approval(run.id, step_id, iteration)
        if approval is not None:
            waits.append((step_id, iteration, approval.requested_at, approval.decided_at))
    children = store.children(run.id)
    return {
        "run": run_summary(run),
        "inputs": run.inputs,
        "header": header(run, steps),
        "steps": nest(steps, repeat_groups(store, run.id)),
        # No ticking: an unfinished bar ends at the newest time the store knows, so a live page
        # changes only when the run does.
        "timeline": timeline(attempts, waits, run.finished_at or _newest(attempts, waits)),
        "tree": run_tree([step["outputs"] for step in steps], children),
        "parent": run.parent_id,
        "children": [{**run_summary(child), "key": child.child_key} for child in children],
        "log": {"step": live.step_id, "attempt": live.id} if live else None,
        "waiting": run.status == "waiting",
    }


def _newest(attempts: list[AttemptRecord], waits: list[tuple[str, int, float, float | None]]) -> float:
    stamps = [a.finished_at or a.started_at for a in attempts] + [w[3] or w[2] for w in waits]
    return max(stamps, default=0.0)


def _step(
    step_id: str,
    iteration: int,
    outcome: str,
    conclusion: str,
    error: str | None,
    outputs: dict[str, str],
    attempts: list[Any],
    changes: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "id": step_id,
        "iteration": iteration,
        "outcome": outcome,
        "conclusion": conclusion,
        "error": error or "",
        "outputs": outputs,
        "changes": changes,
        "attempts": [
            {
                "id": a.id,
                "has_log": bool(a.log_path),
                "number": a.number,
                "status": a.status,
                "exit_code": "-" if a.exit_code is None else a.exit_code,
                "started": _when(a.started_at),
                "duration": format_duration(a.finished_at - a.started_at) if a.finished_at else "…",
            }
            for a in attempts
        ],
    }
