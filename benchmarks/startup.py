"""Prints the wall time of `pipe --help` and `pipe validate pipelines/*.yml` beside `python -c pass`,
and of refusing a billion-laughs document. Run: python benchmarks/startup.py [ROUNDS]"""

from __future__ import annotations

import contextlib
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def wall(argv: list[str], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    python = sys.executable
    pipelines = sorted(str(p) for p in (REPO / "pipelines").glob("*.yml"))
    baseline = wall([python, "-c", "pass"], rounds)
    cases = {
        "python -c pass": baseline,
        "pipe --help": wall([python, "-m", "runner", "--help"], rounds),
        "pipe validate pipelines/*.yml": wall([python, "-m", "runner", "validate", *pipelines], rounds),
    }
    for name, seconds in cases.items():
        print(f"{name:32s} {seconds * 1000:8.1f} ms  ({seconds / baseline:4.1f}x python -c pass)")
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in "bcdefghi":
        lines.append(f"{level}: &{level} [" + ",".join([f"*{chr(ord(level) - 1)}"] * 9) + "]")
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as handle:
        handle.write("\n".join(lines) + "\n")
    from runner.errors import ValidationFailed
    from runner.pipeline.spec import load_pipeline

    start = time.perf_counter()
    with contextlib.suppress(ValidationFailed):
        load_pipeline(handle.name)
    print(f"{'refuse billion laughs (in-process)':32s} {(time.perf_counter() - start) * 1000:8.1f} ms")
    Path(handle.name).unlink()


if __name__ == "__main__":
    main()
