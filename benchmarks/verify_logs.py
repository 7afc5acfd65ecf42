"""Under a CPU hog on every core, run verify N times in a row and count the runs whose test output
is complete in `pipe logs` (the old verify script's `tail -f` lost it in 3 of 6 runs under load).

    .venv/bin/python benchmarks/verify_logs.py [RUNS]
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runner.cli import main

PIPELINE = """
version: 1
name: verify-logs
sandbox: {network: none}
steps:
  - id: verify
    uses: verify
    with:
      checks: [{run: auto}]
"""
TESTS = "import pytest\n\n@pytest.mark.parametrize('n', range(40))\ndef test_n(n):\n    print(n)\n"


def hog(stop: float) -> None:
    while time.time() < stop:
        pass


def main_(runs: int) -> int:
    root = Path(tempfile.mkdtemp(prefix="pipe-verify-logs-"))
    workspace = root / "workspace"
    (workspace / "tests").mkdir(parents=True)
    (workspace / "pyproject.toml").write_text("[tool.pytest.ini_options]\n")
    (workspace / "tests" / "test_n.py").write_text(TESTS)
    pipeline = root / "verify-logs.yml"
    pipeline.write_text(PIPELINE)
    state = root / "state"
    hogs = [multiprocessing.Process(target=hog, args=(time.time() + 3600,)) for _ in range(os.cpu_count() or 2)]
    for process in hogs:
        process.start()
    complete = 0
    try:
        for number in range(1, runs + 1):
            log_file = root / f"run-{number}.txt"
            with log_file.open("w") as sink, contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                code = main(["run", str(pipeline), "--workspace", str(workspace), "--state-dir", str(state)])
                print("=== pipe logs")
                main(["logs", "latest", "--state-dir", str(state)])
            text = log_file.read_text().split("=== pipe logs", 1)[-1]
            ok = code == 0 and "40 passed" in text and "::pipe:: check 0" in text
            complete += ok
            print(f"run {number:2d}: exit {code}, test output in `pipe logs`: {'yes' if ok else 'NO'}", flush=True)
    finally:
        for process in hogs:
            process.terminate()
    print(f"{complete}/{runs} runs under a CPU hog on {len(hogs)} cores kept the test output in `pipe logs`")
    return 0 if complete == runs else 1


if __name__ == "__main__":
    raise SystemExit(main_(int(sys.argv[1]) if len(sys.argv) > 1 else 20))
