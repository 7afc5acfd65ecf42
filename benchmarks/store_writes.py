"""The store's share of a step's critical path: the writes one step makes (start an attempt, three
events, finish it, record the step's result, a few recorded changes with their manifest rows, the
run's heartbeat), timed per step on the database $PIPE_STORE_URL names (default: SQLite in a fresh
state directory), plus the cost of opening a store (the lease thread and `pipe serve` open one per
use). Prints medians in ms over STEPS steps.

Run: python benchmarks/store_writes.py [STEPS]   (PIPE_STORE_URL=postgresql://... for PostgreSQL)
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runner.store import StepRecord, Store  # the checkout's runner, not an installed one


def one_step(store: Store, run_id: str, index: int, log: Path) -> None:
    """The writes the engine makes for one step that changed two files."""
    attempt = store.start_attempt(run_id, f"s{index}", 0, 1, log, time.time())
    for kind in ("step_started", "attempt_started", "attempt_finished"):
        store.add_event(run_id, kind, f"s{index}", {"n": index})
    store.finish_attempt(attempt, "succeeded", 0, time.time(), {"out": "v"}, None)
    changes = [(f"s{index}", 0, 1, "file_write", f"f{index}.{n}", {"digest": "x" * 64}) for n in range(2)]
    rows = [(f"f{index}.{n}", "file", 0o644, 0, 0, 10, "x" * 64, None, 1, 10, index, 0o100644, 1) for n in range(2)]
    store.save_changes(run_id, changes, rows, [])
    store.record_step(run_id, StepRecord(f"s{index}", 0, index, "success", "success", 1, 1.0, 2.0, {}, None))
    store.update_run(run_id, current_step=f"s{index}")


def main(steps: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        state = Path(directory)
        opens = []
        for _ in range(20):
            started = time.perf_counter()
            Store(state).close()
            opens.append(time.perf_counter() - started)
        store = Store(state)
        try:
            run_id = store.create_run(store.add_pipeline("bench", "b.yml", f"d{time.time()}", "version: 1"), {})
            per_step = []
            for index in range(steps):
                started = time.perf_counter()
                one_step(store, run_id, index, state / "log")
                per_step.append(time.perf_counter() - started)
            where = store.url.split(":")[0]
        finally:
            store.close()
    print(
        f"store {where}: {steps} steps, writes per step median {statistics.median(per_step) * 1000:.2f} ms, "
        f"p90 {statistics.quantiles(per_step, n=10)[-1] * 1000:.2f} ms; "
        f"opening a store median {statistics.median(opens) * 1000:.2f} ms"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
