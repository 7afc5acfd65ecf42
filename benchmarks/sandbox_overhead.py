"""Wall time of a 20-step pipeline of trivial steps (a fresh container per step) beside 20
`docker run --rm` of the same image in a shell loop, as a ratio (target: 0.5 or less).

Run: python benchmarks/sandbox_overhead.py [STEPS] [ROUNDS] [NETWORK]   (needs a Docker engine;
NETWORK is bridge, the default of pipelines, or none; both sides use the same)
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(argv: list[str], **options: object) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, **options)  # type: ignore[call-overload]
    return time.perf_counter() - start


def main() -> None:
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    network = sys.argv[3] if len(sys.argv) > 3 else "bridge"
    from sandbox.images import default_image_tag

    image = default_image_tag()
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "bench.yml"
        body = "".join(f'  - id: s{i}\n    run: "true"\n' for i in range(steps))
        path.write_text(f"version: 1\nname: bench\nsandbox: {{network: {network}}}\nsteps:\n{body}")
        state = Path(directory) / "state"
        command = [sys.executable, "-m", "runner", "run", str(path), "--state-dir", str(state)]
        timed(command)  # builds the image if needed, warms caches
        pipe_times = [timed(command) for _ in range(rounds)]
        loop = f"for i in $(seq {steps}); do docker run --rm --network {network} {image} true; done"
        docker_times = [timed(["bash", "-c", loop]) for _ in range(rounds)]
    pipe_time, docker_time = statistics.median(pipe_times), statistics.median(docker_times)
    print(f"network: {network}")
    print(f"pipe run, {steps} steps:          {pipe_time:6.2f} s  (median of {rounds})")
    print(f"{steps} x docker run --rm (loop):  {docker_time:6.2f} s  (median of {rounds})")
    print(f"ratio: {pipe_time / docker_time:.2f}  (target <= 0.50)")


if __name__ == "__main__":
    main()
