"""Eight child runs of trivial steps with parallelism 4: the parent's wall time beside the sum of
the children's own durations, as a ratio (well under 1 means they really ran side by side).

Run: python benchmarks/children.py [CHILDREN] [PARALLELISM]   (needs a Docker engine)
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runner.cli import main as pipe
from runner.store import Store

CHILD = """version: 1
name: trivial
inputs: {n: {type: integer}}
sandbox: {network: none}
steps:
  - id: a
    run: echo {{ inputs.n }}
  - id: b
    run: "true"
  - id: c
    run: "true"
"""


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    parallelism = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        (root / "child.yml").write_text(CHILD)
        items = json.dumps([{"id": i, "inputs": {"n": i}} for i in range(1, count + 1)])
        (root / "parent.yml").write_text(
            "version: 1\nname: fan-out\nsteps:\n  - id: children\n    uses: pipeline\n"
            f"    with: {{pipeline: child.yml, parallelism: {parallelism}, for-each: '{items}'}}\n"
        )
        pipe(["run", str(root / "child.yml"), "-i", "n=0", "--state-dir", str(root / "warm")])  # builds the image
        start = time.perf_counter()
        code = pipe(["run", str(root / "parent.yml"), "--state-dir", str(root / "state")])
        wall = time.perf_counter() - start
        store = Store(root / "state")
        parent = next(run for run in store.runs() if run.parent_id is None)
        children = store.children(parent.id)
        total = sum((run.finished_at or 0) - (run.started_at or 0) for run in children)
    print(f"exit code {code}; {len(children)} children, parallelism {parallelism}")
    print(f"parent wall time:               {wall:6.2f} s")
    print(f"sum of the children's durations: {total:6.2f} s")
    print(f"ratio: {wall / total:.2f}  (1.00 would be one after the other)")


if __name__ == "__main__":
    main()
