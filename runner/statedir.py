"""The state directory (`--state-dir`, $PIPE_HOME, else `./.pipe`): the one place that spells the
paths below it. Nothing here creates anything; callers make the directories they write to.

    state.db                      the store (runner/store/)
    objects/                      content-addressed file contents of recorded changes
    runs/RUN/workspace/           a run's default workspace
    runs/RUN/logs/                its attempt logs (STEP[.ITERATION].NUMBER.log) and tracebacks
    runs/RUN/sandboxes/           the control channels of its sandboxes (FIFOs, removed on resume)
    runs/RUN/children/            the output of its child runs (`pipeline` steps)
    runs/RUN/worker.log           its console output, when a Celery worker executed it
    ca/                           the person's CA certificates (--ca-bundle), by digest
    forges/REPO-SLUG/records.json what a local forge recorded
    demo/forge/                   the forge of `pipe demo`
    cache/verify/                 verification results by key
    ui-actions.log                output of the commands `pipe ui` started
    serve/DELIVERY.log            output of the command `pipe serve` started for a webhook delivery

Layering and the life of a run are described in docs/architecture.md.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def default_state_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """`explicit`, else $PIPE_HOME, else `.pipe` in the working directory; always absolute
    (sandboxes bind-mount paths below it)."""
    if explicit:
        return Path(explicit).absolute()
    if os.environ.get("PIPE_HOME"):
        return Path(os.environ["PIPE_HOME"]).absolute()
    return Path.cwd() / ".pipe"


@dataclass(frozen=True)
class RunDir:
    """The directory of one run, `runs/RUN` under the state directory."""

    root: Path

    @property
    def workspace(self) -> Path:
        """The run's workspace when none was given (`--workspace`)."""
        return self.root / "workspace"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def sandboxes(self) -> Path:
        """The control channels of the run's sandboxes (FIFOs only; a resume removes them)."""
        return self.root / "sandboxes"

    @property
    def children(self) -> Path:
        """The output of the run's child runs, one `KEY.log` each."""
        return self.root / "children"

    @property
    def worker_log(self) -> Path:
        """The console output of the run when a Celery worker executed it (runner/workers/)."""
        return self.root / "worker.log"

    def attempt_file(self, step_id: str, iteration: int, number: int, suffix: str = "log") -> Path:
        """`logs/STEP[.ITERATION].NUMBER.SUFFIX`: an attempt's log (`log`) or its saved traceback
        (`traceback`); the iteration is left out for 0."""
        repeat = f".{iteration}" if iteration else ""
        return self.logs / f"{step_id}{repeat}.{number}.{suffix}"


@dataclass(frozen=True)
class StateDir:
    """The paths under one state directory `root` (absolute: sandboxes bind-mount below it)."""

    root: Path

    @classmethod
    def default(cls, explicit: str | os.PathLike[str] | None = None) -> StateDir:
        """The state directory chosen as `default_state_dir` says."""
        return cls(default_state_dir(explicit))

    @property
    def db(self) -> Path:
        """The store's SQLite database."""
        return self.root / "state.db"

    @property
    def objects(self) -> Path:
        """The object store of recorded file contents (runner/changes/objects.py)."""
        return self.root / "objects"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    def run(self, run_id: str) -> RunDir:
        """The directory of run `run_id` (an exact id, not a prefix)."""
        return RunDir(self.runs / run_id)

    @property
    def ca(self) -> Path:
        """The person's CA certificates, `<sha256>.pem` each."""
        return self.root / "ca"

    @property
    def forges(self) -> Path:
        """Local forges' records, one directory per forge."""
        return self.root / "forges"

    def forge_records(self, name: str) -> Path:
        """`forges/NAME/records.json`: what the local forge called `name` recorded."""
        return self.forges / name / "records.json"

    @property
    def demo_forge(self) -> Path:
        """The local forge `pipe demo` makes."""
        return self.root / "demo" / "forge"

    def verify_cache(self, key: str) -> Path:
        """A verification result kept under `key` (runner/actions/verify.py)."""
        return self.root / "cache" / "verify" / key

    @property
    def ui_actions_log(self) -> Path:
        """Output of the commands `pipe ui` started."""
        return self.root / "ui-actions.log"

    def serve_log(self, delivery: str) -> Path:
        """`serve/DELIVERY.log`: the output of the command `pipe serve` started for a webhook
        delivery (its X-GitHub-Delivery id)."""
        return self.root / "serve" / f"{delivery}.log"
