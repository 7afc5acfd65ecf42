"""Celery workers: 16 runs of one 2-second step submitted at once, executed by 1, 2 and 4
`pipe worker` processes (concurrency 1 each, one shared state directory, the test Redis broker:
tests/support/workers.py); prints the wall time of each (first submit to last run finished) and
the throughput against one worker, then the scheduling overhead per run: submit (the run created
`pending`) to its first step's attempt starting, median and maximum over 10 runs submitted one at
a time to idle workers. Targets (issue 19): 4 workers >= 3.5x the throughput of 1; overhead
<= 150 ms median.

Run: python benchmarks/workers.py [RUNS] (needs Docker, the sandbox image and Redis:
bash -c 'source scripts/setup.sh; setup_redis')
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runner.store import Store
from tests.support.workers import broker, broker_problem, flush_broker, workers

STEP = """version: 1
name: two-seconds
inputs:
  n: {type: integer, default: 0}
steps:
  - id: sleep
    sandbox: {network: none}
    run: sleep 2
"""


def submit(pipeline: Path, state: Path, number: int) -> str:
    """Submit one run as `pipe submit` does (runner/workers/submit.py), in this process so that
    16 submissions take milliseconds, not 16 interpreter start-ups; its id."""
    from runner.pipeline.inputs import resolve_inputs
    from runner.pipeline.spec import load_pipeline
    from runner.workers.app import make_app
    from runner.workers.submit import create_pending, send

    loaded = load_pipeline(pipeline)
    store = Store(state)
    try:
        run_id = create_pending(
            store, loaded, resolve_inputs(loaded, {"n": number}), forge=None, publish=True, default_image=None
        )
    finally:
        store.close()
    send(make_app(broker()), run_id)
    return run_id


def wait_all(state: Path, run_ids: list[str], timeout: float = 600.0) -> float:
    """Wait until every run finished; the time the last one finished (epoch s)."""
    deadline = time.monotonic() + timeout
    store = Store(state)
    try:
        while True:
            runs = [store.run(run_id) for run_id in run_ids]
            if all(run.status.finished for run in runs):
                bad = [run.id for run in runs if run.status != "succeeded"]
                if bad:
                    raise RuntimeError(f"runs did not succeed: {bad}")
                return max(run.finished_at or 0.0 for run in runs)
            if time.monotonic() > deadline:
                raise RuntimeError("runs did not finish in time")
            time.sleep(0.1)
    finally:
        store.close()


def first_step_delay(state: Path, run_id: str) -> float:
    """Seconds from the run's creation (submit) to its first attempt starting."""
    store = Store(state)
    try:
        run = store.run(run_id)
        return min(attempt.started_at for attempt in store.attempts(run_id)) - run.created_at
    finally:
        store.close()


def main(runs: int = 16) -> int:
    problem = broker_problem()
    if problem:
        print(problem)
        return 1
    print(f"broker {broker()}; {runs} runs of one 2-second step each")
    walls: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="pipe-workers-") as scratch:
        root = Path(scratch)
        pipeline = root / "two-seconds.yml"
        pipeline.write_text(STEP)
        for count in (1, 2, 4):
            flush_broker()
            state = root / f"state-{count}"
            with workers(root / f"w-{count}", state, count=count, concurrency=1):
                for warm in range(count):  # warm-up, one run per worker: images, store, each pool process
                    submit(pipeline, state, -1 - warm)
                wait_all(state, [run.id for run in Store(state).runs()])
                began = time.time()
                ids = [submit(pipeline, state, n) for n in range(runs)]
                walls[count] = wait_all(state, ids) - began
            print(f"{count} worker(s): {walls[count]:6.1f} s wall, {walls[1] / walls[count]:.2f}x the throughput of 1")
        flush_broker()
        state = root / "state-overhead"
        with workers(root / "w-overhead", state, count=4, concurrency=1):
            submit(pipeline, state, -1)
            wait_all(state, [run.id for run in Store(state).runs()])
            delays = []
            for n in range(10):
                run_id = submit(pipeline, state, n)
                wait_all(state, [run_id])
                delays.append(first_step_delay(state, run_id) * 1000)
        print(
            f"scheduling overhead (submit -> first step's attempt starts): median {statistics.median(delays):.0f} ms,"
            f" max {max(delays):.0f} ms over {len(delays)} runs"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(*(int(arg) for arg in sys.argv[1:2])))
