"""Starting the `pipe` commands a webhook asks for, as background processes of the serve process:
`pipe run PIPELINE -i ... --json` for a rule or `/pipe retry` (with a broker, PIPE_BROKER_URL:
`pipe submit PIPELINE -i ... --json --wait`, so a Celery worker executes the run and this process
only follows it), `pipe approve|reject RUN` for a command. Each is its own process (as child runs
are, runner/actions/children.py) with the state directory and forge options of the
configuration; its output goes to `serve/DELIVERY.log` in the state directory. A run's id is read
from its first JSON line that names one (`run_started`, after any wait for its concurrency group,
or `run_submitted`) and handed to `link(delivery, run_id)`.

The GitHub token reaches the process as today's runs take it: `--token-file` when the
configuration named a file, else GITHUB_TOKEN in its environment; never on its command line. The
webhook secret never does: the variables the configuration reads its secret and token from, and
any variable holding the webhook secret, are left out of the processes' environment.

`submit` keeps the numbers bounded (runner/serve/slots.py): at most `max-processes` at once, and
per thread and pipeline one running and one queued (waiting in its concurrency group, or here for
a free slot), further events merged into the queued one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

from runner.names import EventKind
from runner.pipeline.expressions import to_text
from runner.serve.config import ServeConfig
from runner.serve.slots import Job, Slots
from runner.statedir import StateDir

Popen = subprocess.Popen[bytes]
_NAMING = (EventKind.RUN_STARTED.value, EventKind.RUN_RESUMED.value)
Link = Callable[[str, str], None]


class Launcher:
    """Starts processes for `config` on the store at `state_dir`; `link(delivery, run_id)` is
    called from a reader thread once a started run's id is known. `environ` is the processes'
    base environment (default: os.environ)."""

    def __init__(
        self, config: ServeConfig, state_dir: Path, link: Link, environ: Mapping[str, str] | None = None
    ) -> None:
        self.config = config
        self.state_dir = state_dir
        self.link = link
        secret = config.secret.decode(errors="replace")
        self.environ = {
            name: value
            for name, value in (os.environ if environ is None else environ).items()
            if name not in config.secret_names and not (secret and value.strip() == secret)
        }
        # PIPE_BROKER_URL (runner/workers/app.py): runs are submitted to Celery workers
        self.broker = bool(self.environ.get("PIPE_BROKER_URL"))
        self.processes: list[Popen] = []
        self._readers: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._slots = Slots(config.max_processes)
        self._jobs: dict[Popen, Job] = {}  # a process submit started -> its job
        self._ended: set[Popen] = set()  # processes that ended before submit noted their job

    def run_argv(
        self, pipeline: str, inputs: Mapping[str, Any], repo: str, sandbox_image: str | None = None
    ) -> list[str]:
        """`pipe run` of `pipeline` with `inputs` against repository `repo`, or with a broker
        `pipe submit --wait` (see the module docstring)."""
        argv = [sys.executable, "-m", "runner", "submit" if self.broker else "run", pipeline]
        for name, value in inputs.items():
            argv += ["-i", f"{name}={to_text(value)}"]
        argv += ["--repo", repo, "--api-url", self.config.api_url, "--json"]
        if sandbox_image:
            argv += ["--sandbox-image", sandbox_image]
        if self.broker:  # a worker executes the run with its own token: only the state directory
            return [*argv, "--wait", "--state-dir", str(self.state_dir)]
        return argv + self._common()

    def decision_argv(self, decision: str, run_id: str, comment: str) -> list[str]:
        """`pipe approve|reject --comment COMMENT -- RUN` (`decision` is approve or reject)."""
        argv = [sys.executable, "-m", "runner", decision, f"--comment={comment}", "--json", *self._common()]
        return [*argv, "--", run_id]

    def _common(self) -> list[str]:
        argv = ["--state-dir", str(self.state_dir)]
        if self.config.token_file is not None:
            argv += ["--token-file", str(self.config.token_file)]
        return argv

    def submit(self, key: str | None, delivery: str, argv: list[str]) -> str:
        """Start `argv` for `delivery` within the limits (see the module docstring): "started",
        "queued" (started when its key's run or a global slot frees) or "merged" (dropped: a
        queued run of `key` stands for it). `key` names a thread and pipeline; None: no per-key
        limit. Raises what `start` raises (the slot is given back first)."""
        job = Job(key, delivery, tuple(argv))
        with self._lock:
            outcome = self._slots.offer(job)
        if outcome == "started":
            self._begin(job)
        return outcome

    def _begin(self, job: Job) -> None:
        """Start `job`, which holds a slot; a job whose process ends frees it (see _finished)."""
        try:
            process: Popen | None = self.start(job.delivery, list(job.argv))
        except BaseException:
            self._finished(job)
            raise
        if process is None:  # a test double that starts nothing: the slot stays taken
            return
        with self._lock:
            ended = process in self._ended
            self._ended.discard(process)
            if not ended:
                self._jobs[process] = job
        if ended:
            self._finished(job)

    def _finished(self, job: Job) -> None:
        with self._lock:
            ready = self._slots.finish(job)
        for waiting in ready:
            try:
                self._begin(waiting)
            except OSError:  # cannot start: its slot is given back, the others still start
                continue

    def _exited(self, process: Popen) -> None:
        """`process` ended: free its slot (or note the end for _begin, when it was that quick)."""
        with self._lock:
            job = self._jobs.pop(process, None)
            if job is None:
                self._ended.add(process)
        if job is not None:
            self._finished(job)

    def start(self, delivery: str, argv: list[str]) -> Popen:
        """Start `argv` in the background for delivery `delivery` (its X-GitHub-Delivery id); its
        output is appended to the delivery's log. Returns the process (kept in `processes`)."""
        log = StateDir(self.state_dir).serve_log(delivery)
        log.parent.mkdir(parents=True, exist_ok=True)
        env = dict(self.environ)
        if self.config.token_file is None and self.config.token:
            env["GITHUB_TOKEN"] = self.config.token
        with open(log, "ab") as errors:
            process = subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=errors, stdin=subprocess.DEVNULL, env=env, start_new_session=True
            )
        reader = threading.Thread(
            target=self._read, args=(delivery, process, log), name=f"serve-{delivery}", daemon=True
        )
        reader.start()
        with self._lock:
            self.processes = [p for p in self.processes if p.poll() is None] + [process]
            self._readers = [r for r in self._readers if r.is_alive()] + [reader]
        return process

    def _read(self, delivery: str, process: Popen, log: Path) -> None:
        """Copy the process's JSON lines to `log`; link the first run id they name to `delivery`;
        reap the process once its output ends."""
        linked = False
        stream: IO[bytes] | None = process.stdout
        assert stream is not None
        with stream, open(log, "ab") as out:
            for line in stream:
                out.write(line)
                out.flush()
                if linked:
                    continue
                run_id = _run_id(line)
                if run_id:
                    linked = True
                    try:
                        self.link(delivery, run_id)
                    except Exception as error:  # the run goes on; only the link is lost
                        out.write(f"pipe serve: cannot link run {run_id}: {error}\n".encode())
        process.wait()
        self._exited(process)

    def wait(self, timeout: float | None = None) -> None:
        """Wait for every started process and its output reader (tests; shutdown)."""
        with self._lock:
            processes, readers = list(self.processes), list(self._readers)
        for process in processes:
            process.wait(timeout)
        for reader in readers:
            reader.join(timeout)


def _run_id(line: bytes) -> str | None:
    """The run a `pipe run --json` or `pipe submit --json` line is about (`run_started`,
    `run_resumed` or `run_submitted`), or None."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if isinstance(record, dict) and record.get("event") in (*_NAMING, "run_submitted"):
        run = record.get("run")
        return run if isinstance(run, str) and run else None
    return None
