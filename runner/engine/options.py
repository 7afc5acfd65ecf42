"""What a run is asked to do before it starts: `RunOptions` (how to run) and `ResumePoint`
(where a resumed run continues). Both are frozen; the engine never changes them."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class RunOptions:
    """How to run: where state and the workspace live, the host environment the credentials and
    secrets come from, secret values, and how many sandboxes to start ahead of the running step
    (PIPE_PRESTART; unset: as many as the run's own measures call for, see
    runner/engine/sandboxing.py). `ca_bundle` is the person's CA bundle (`--ca-bundle`,
    PIPE_CA_BUNDLE), checked and copied at the start of the run; `max_log` the bytes of output one
    attempt keeps (PIPE_MAX_LOG, 64 MiB); `credentials` the values of the credentials a step may
    get, name -> variables (loaded by the command: runner/engine/credentials.py)."""

    state_dir: Path
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    secrets: Mapping[str, str] = field(default_factory=dict)
    workspace: Path | None = None
    token_file: Path | None = None
    ahead: int | None = field(
        default_factory=lambda: int(os.environ["PIPE_PRESTART"]) if os.environ.get("PIPE_PRESTART") else None
    )
    trigger: str = "cli"
    forge: Any = None
    publish: bool = True
    event: Mapping[str, Any] = field(default_factory=dict)
    parent: tuple[str, str] | None = None  # (parent run id, child key) when started by a pipeline step
    queue: str | None = None  # the broker queue a submitted run goes to (runner/workers/), stored with it
    default_image: str | None = field(default_factory=lambda: os.environ.get("PIPE_SANDBOX_IMAGE") or None)
    default_runtime: str | None = field(default_factory=lambda: os.environ.get("PIPE_SANDBOX_RUNTIME") or None)
    ca_bundle: Path | None = None
    credentials: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    worker: str | None = None  # the Celery worker executing the run (`host:pid`), stored with it
    # With a broker: submits a child run (pipeline file, inputs, (parent, key)) -> its run id
    # (runner/workers/submit.py); None runs children as local processes (runner/actions/children.py).
    submit_child: Callable[[Path, Mapping[str, Any], tuple[str, str]], str] | None = None
    max_log: int = field(default_factory=lambda: int(os.environ.get("PIPE_MAX_LOG", str(64 * 1024**2))))


@dataclass(frozen=True)
class ResumePoint:
    """Where a resumed run continues: the index of the first top-level step to run again, and
    the ids of steps to skip. `inner` (step id, iteration) continues the repeat group at
    `restart_at` from that step of that iteration (a decided wait point): the group's earlier
    steps and iterations are kept, not run again."""

    run_id: str
    restart_at: int
    skip: frozenset[str] = frozenset()
    inner: tuple[str, int] | None = None
