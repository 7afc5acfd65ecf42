"""Celery workers for the tests and benchmarks/workers.py: the test broker (a real Redis,
PIPE_TEST_BROKER_URL, default database 15 of 127.0.0.1:6379, which `scripts/setup.sh setup_redis`
starts), and `pipe worker` processes, each in its own working directory, sharing a state directory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def broker() -> str:
    """The test broker's URL."""
    return os.environ.get("PIPE_TEST_BROKER_URL") or "redis://127.0.0.1:6379/15"


def broker_problem() -> str | None:
    """Why the test broker cannot be used (None: it answers a PING)."""
    try:
        import redis
    except ImportError:
        return "redis-py is not installed"
    try:
        redis.Redis.from_url(broker(), socket_connect_timeout=1).ping()
    except redis.RedisError as error:
        return f"no Redis at {broker()} ({error}); start one: bash -c 'source scripts/setup.sh; setup_redis'"
    return None


def flush_broker() -> None:
    """Empty the test broker's database (queues and unacknowledged tasks of an earlier test)."""
    import redis

    redis.Redis.from_url(broker()).flushdb()


def worker_env(state: Path) -> dict[str, str]:
    """The environment of a `pipe` process using the test broker and state directory `state`
    (this checkout's runner first on the module path)."""
    return {
        **os.environ,
        "PIPE_BROKER_URL": broker(),
        "PIPE_HOME": str(state),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }


@contextmanager
def workers(
    root: Path,
    state: Path,
    count: int,
    concurrency: int = 1,
    timeout: float = 30.0,
    *,
    work_dirs: bool = False,
    env: dict[str, str] | None = None,
    each: list[tuple[list[str], dict[str, str]]] | None = None,
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """`count` `pipe worker` processes, in `root/wN` each (their output in `root/wN.log`; with
    `work_dirs`, their runs' workspaces in `root/wN/work`; `env` added to their environment, and
    `each[N-1]` (queues, environment), when given, to worker N's), each
    the leader of its own process group (os.killpg kills a worker with its pool), ready (every one
    answered `pipe workers`) before the block runs; stopped after it (SIGTERM, then SIGKILL after
    20 s). Raises RuntimeError when they are not ready within `timeout` seconds."""
    from runner.workers.worker import live_workers

    started: list[subprocess.Popen[bytes]] = []
    try:
        for number in range(1, count + 1):
            cwd = root / f"w{number}"
            cwd.mkdir(parents=True, exist_ok=True)
            with open(root / f"w{number}.log", "wb") as log:
                command = [sys.executable, "-m", "runner", "worker", "-c", str(concurrency), "--state-dir", str(state)]
                if work_dirs:
                    command += ["--work-dir", str(cwd / "work")]
                queues, own = each[number - 1] if each else ([], {})
                command += [f"--queues={queue}" for queue in queues]
                started.append(
                    subprocess.Popen(
                        command,
                        cwd=cwd,
                        env={**worker_env(state), **(env or {}), **own},
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        pids = {f"pipe.{process.pid}@" for process in started}
        deadline = time.monotonic() + timeout
        while {w.name.split("@")[0] + "@" for w in live_workers(broker(), 0.5)} < pids:
            if time.monotonic() > deadline or any(p.poll() is not None for p in started):
                raise RuntimeError(f"workers not ready; see {root}/w*.log")
        yield started
    finally:
        for process in started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in started:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
