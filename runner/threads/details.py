"""A thread as `pipe show THREAD`, the UI and their JSON read it: plain data from the store."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from runner.errors import UsageError
from runner.store import RunRecord, Store, ThreadRecord


def thread_details(store: Store, thread: ThreadRecord) -> dict[str, Any]:
    """A thread with its specs (each with its run's status), the runs that applied them (in spec
    order) and its transitions (oldest first), JSON-ready: {"thread": {id, repo, issue, state,
    branch, pull_request, created_at, updated_at}, "specs": [{version, kind, target_branch,
    instructions, run_id, run_status, created_at, ...}], "runs": [{id, pipeline, status,
    created_at}], "transitions": [{from_state, to_state, reason, run_id, at, ...}]}. Times are
    epoch seconds."""
    specs = store.specs(thread.id)
    runs: list[RunRecord] = []
    for spec in specs:
        if spec.run_id is not None:
            try:
                runs.append(store.run(spec.run_id))
            except UsageError:  # a run removed from the store: its spec stays
                continue
    status = {run.id: run.status for run in runs}
    return {
        "thread": asdict(thread),
        "specs": [{**asdict(spec), "run_status": status.get(spec.run_id or "")} for spec in specs],
        "runs": [
            {"id": r.id, "pipeline": r.pipeline_name, "status": r.status, "created_at": r.created_at} for r in runs
        ],
        "transitions": [asdict(t) for t in store.thread_transitions(thread.id)],
    }
