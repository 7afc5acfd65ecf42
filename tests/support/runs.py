"""Filling a store with runs directly (no containers), for UI tests and benchmarks."""

from __future__ import annotations

import time
from pathlib import Path

from runner.store import StepRecord, Store


def fake_runs(state_dir: Path, count: int, status: str = "succeeded", pipeline: str = "hello") -> list[str]:
    """`count` finished runs of `pipeline`, each with two steps and an attempt, in one store."""
    store = Store(state_dir)
    pipeline_id = store.add_pipeline(pipeline, f"pipelines/{pipeline}.yml", f"digest-{pipeline}", "version: 1")
    ids = []
    try:
        for _ in range(count):
            run_id = store.create_run(pipeline_id, {"who": "world"})
            now = time.time()
            store.update_run(run_id, status=status, started_at=now - 2, finished_at=now, workspace=str(state_dir))
            for position, step in enumerate(("greet", "count")):
                attempt = store.start_attempt(run_id, step, 0, 1, state_dir / "none.log", now - 2)
                store.finish_attempt(attempt, "succeeded", 0, now - 1, {"n": "1"}, None)
                store.record_step(
                    run_id, StepRecord(step, 0, position, "success", "success", 1, now - 2, now - 1, {"n": "1"}, None)
                )
            ids.append(run_id)
    finally:
        store.close()
    return ids
