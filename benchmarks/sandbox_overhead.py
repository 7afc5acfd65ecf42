"""Per-step cost of pipe beside what the engine can do, on each container runtime, in one run.

For every runtime the engine offers among runc and crun it times, with the same image and network:

- pipe: a pipeline of STEPS trivial `run:` steps (a fresh hardened container per step);
- loop: STEPS x `docker run --rm` in a shell loop (a fresh container per step, no hardening);
- exec floor: one long-lived container and STEPS x `docker exec` (no fresh container at all).

and prints medians of ROUNDS, the per-step time in ms, pipe/loop (target <= 0.5 on each runtime)
and pipe/exec floor (target <= 1.5 on crun). act is timed when an `act` binary is on PATH (it is
not packaged for this machine's registries); otherwise its line says so.

Run: python benchmarks/sandbox_overhead.py [STEPS] [ROUNDS] [NETWORK]   (needs a Docker engine)
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNTIMES = ("runc", "crun")


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env=env)
    return time.perf_counter() - start


def offered_runtimes() -> list[str]:
    import docker

    client = docker.from_env()
    try:
        names = set(client.info().get("Runtimes") or {})
    finally:
        client.close()
    return [name for name in RUNTIMES if name in names]


def exec_floor(image: str, runtime: str, network: str, steps: int) -> float:
    """STEPS x `docker exec CONTAINER true` in one long-lived container (started before timing)."""
    started = subprocess.run(
        ["docker", "run", "-d", "--rm", "--init", "--runtime", runtime, "--network", network, image, "sleep", "600"],
        check=True,
        capture_output=True,
        text=True,
    )
    container = started.stdout.strip()
    try:
        loop = f"for i in $(seq {steps}); do docker exec {container} true; done"
        return timed(["bash", "-c", loop])
    finally:
        subprocess.run(["docker", "rm", "-f", container], check=False, capture_output=True)


def act_time(directory: Path, steps: int) -> float | None:
    """The same steps as one job of a GitHub Actions workflow under act, when act is installed."""
    act = shutil.which("act")
    if act is None:
        return None
    workflow = directory / "act" / ".github" / "workflows" / "bench.yml"
    workflow.parent.mkdir(parents=True)
    body = "      - run: 'true'\n" * steps
    workflow.write_text(f"on: push\njobs:\n  bench:\n    runs-on: ubuntu-latest\n    steps:\n{body}")
    return timed([act, "push", "-C", str(directory / "act"), "-P", "ubuntu-latest=debian:bookworm-slim"])


def measure(
    runtime: str, command: list[str], image: str, network: str, steps: int, rounds: int
) -> tuple[str, float, float, float]:
    """(runtime, pipe, loop, exec floor) in seconds, medians of `rounds` taken in turn."""
    env = {**os.environ, "PIPE_SANDBOX_RUNTIME": runtime}
    docker_run = f"docker run --rm --runtime {runtime} --network {network} {image} true"
    loop = ["bash", "-c", f"for i in $(seq {steps}); do {docker_run}; done"]
    times: list[tuple[float, float, float]] = []
    for _ in range(rounds):  # interleaved, so a busy moment weighs on all three alike
        times.append((timed(command, env), timed(loop), exec_floor(image, runtime, network, steps)))
    pipe, loops, floor = (statistics.median(column) for column in zip(*times, strict=True))
    return runtime, pipe, loops, floor


def main() -> None:
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    network = sys.argv[3] if len(sys.argv) > 3 else "bridge"
    from sandbox.images import default_image_tag

    image = default_image_tag()
    rows: list[tuple[str, float, float, float]] = []
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "bench.yml"
        body = "".join(f'  - id: s{i}\n    run: "true"\n' for i in range(steps))
        path.write_text(f"version: 1\nname: bench\nsandbox: {{network: {network}}}\nsteps:\n{body}")
        state = Path(directory) / "state"
        command = [sys.executable, "-m", "runner", "run", str(path), "--state-dir", str(state)]
        timed(command)  # builds the image if needed, warms caches
        for runtime in offered_runtimes():
            rows.append(measure(runtime, command, image, network, steps, rounds))
        act = act_time(Path(directory), steps)
    print(f"{steps} trivial steps, network {network}, medians of {rounds}; ms are per step")
    print(f"{'runtime':8} {'pipe':>14} {'run --rm loop':>16} {'exec floor':>14} {'pipe/loop':>10} {'pipe/floor':>11}")
    for runtime, pipe, loop, floor in rows:
        print(
            f"{runtime:8} {pipe:6.2f} s {pipe / steps * 1000:4.0f} ms {loop:6.2f} s {loop / steps * 1000:5.0f} ms"
            f" {floor:6.2f} s {floor / steps * 1000:4.0f} ms {pipe / loop:10.2f} {pipe / floor:11.2f}"
        )
    print("targets: pipe/loop <= 0.50 on each runtime; pipe/floor <= 1.50 on crun")
    if act is None:
        print("act: not measurable here (no `act` binary on PATH; not packaged by this machine's registries)")
    else:
        best = min(pipe for _, pipe, _, _ in rows)
        print(f"act, one job of {steps} steps: {act:6.2f} s   pipe/act: {best / act:.2f} (target <= 0.25)")


if __name__ == "__main__":
    main()
