"""Cost of an allow-listed sandbox against `network: none`, per step, once the run's proxy is up.

For each policy it times `pipe run` on pipelines of FEW and MANY trivial `run:` steps (ROUNDS
times, medians) and prints the per-step time (the slope between the two), the fixed cost of a run
(the intercept: for the allow-list it includes building nothing, starting the proxy and removing
it) and the added cost per step of the allow-list (target: under 150 ms).

Run: python benchmarks/egress.py [FEW] [MANY] [ROUNDS]   (needs a Docker engine; the proxy image is
built first when missing, outside the timings)
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

POLICIES = {
    "network: none": "sandbox: {network: none}",
    "egress allow-list": "sandbox: {egress: {allow: [example.com, github]}}",
}


def pipeline(header: str, steps: int) -> str:
    lines = ["version: 1", "name: egress-bench", header, "steps:"]
    lines += [f"  - id: s{i}\n    run: 'true'" for i in range(steps)]
    return "\n".join(lines) + "\n"


def timed_run(directory: Path, header: str, steps: int) -> float:
    path = directory / f"p{steps}.yml"
    path.write_text(pipeline(header, steps))
    argv = [sys.executable, "-m", "runner", "run", str(path), "--state-dir", str(directory / "state")]
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(argv: list[str]) -> int:
    few, many, rounds = (int(argv[i]) if len(argv) > i else d for i, d in enumerate((2, 12, 3)))
    from sandbox.docker import DockerBackend
    from sandbox.network import ensure_proxy_image

    backend = DockerBackend()
    backend.ensure_image("pipe-sandbox", lambda _: None)
    ensure_proxy_image(backend.client, print)
    backend.close()
    slopes: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as temporary:
        directory = Path(temporary)
        for name, header in POLICIES.items():
            small = statistics.median(timed_run(directory, header, few) for _ in range(rounds))
            large = statistics.median(timed_run(directory, header, many) for _ in range(rounds))
            slopes[name] = (large - small) / (many - few)
            fixed = small - few * slopes[name]
            print(f"{name:20s} per step {slopes[name] * 1000:7.1f} ms   fixed per run {fixed * 1000:7.1f} ms")
    added = (slopes["egress allow-list"] - slopes["network: none"]) * 1000
    print(f"added per step by the allow-list: {added:.1f} ms (target < 150 ms)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
