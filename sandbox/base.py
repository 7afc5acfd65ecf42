"""The `Sandbox` protocol every isolation backend satisfies, and the records it exchanges.

A step attempt runs in a fresh sandbox in two phases, so a backend may start the sandbox before
the step's script is known (pipe starts the next step's sandbox while the current one runs):

1. `prepare(spec)` creates and starts an isolated sandbox that waits, doing nothing;
2. `Prepared.execute(payload, ...)` hands it the script and the late environment, streams the
   output and returns an `ExecResult`; `Prepared.discard()` removes it in every case.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


class ExecStatus(enum.Enum):
    """How an attempt's process ended."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"  # non-zero exit
    TIMEOUT = "timeout"  # killed at its time limit
    OOM = "oom"  # killed for exceeding its memory limit
    CANCELLED = "cancelled"  # interrupted (Ctrl-C)
    ERROR = "error"  # the sandbox itself failed (image missing, engine error)


@dataclass(frozen=True)
class SandboxSpec:
    """Everything known about a sandbox before its script is.

    Sizes are bytes; `cpus` is cores; `uid`/`gid` is the user the processes run as; `env` holds the
    values known early (credentials, PIPE_* variables), which a backend hands over with the
    payload, never as inspectable container configuration; `labels` go on the container.
    `control_dir` names the private host directory the backend uses to talk to the sandbox: its
    parent is where the backend makes it, its name a prefix (the backend adds a unique suffix, so a
    run resumed after a crash never collides with what the crashed process left). `mounts` are
    further (host path, container path) pairs mounted read-write (a local forge's repository).
    `ca_bundle` is a host file pipe checked and copied, mounted read-only; `max_log` is how many
    bytes of output an attempt passes on before the rest is dropped behind one marker line.
    `runtime` is the engine's container runtime asked for: `auto` (the fastest the engine offers)
    or a name the backend checks with `Backend.resolve_runtime`.
    """

    image: str
    workspace: Path
    control_dir: Path
    uid: int
    gid: int
    workdir: str = "/workspace"
    env: Mapping[str, str] = field(default_factory=dict)
    network: str = "bridge"
    memory: int = 2 * 1024**3
    cpus: float = 2.0
    pids: int = 512
    read_only: bool = False
    ca_bundle: Path | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    mounts: tuple[tuple[str, str], ...] = ()
    max_log: int = 64 * 1024**2
    runtime: str = "auto"
    dns: tuple[str, ...] = ()  # the resolvers Docker's embedded DNS forwards to (egress networks)


@dataclass(frozen=True)
class Payload:
    """What the sandbox runs: a shell script, environment values known only now, and `files`
    (name -> bytes) placed in the sandbox's private in-memory directory, readable at `/pipe/NAME`.
    None of it is written to the host's disk."""

    script: str
    env: Mapping[str, str] = field(default_factory=dict)
    files: Mapping[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class ExecResult:
    """The end of an attempt: status, exit code (None when killed or never started), duration in
    seconds from handing over the payload, `outputs` (the raw text the script wrote to
    $PIPE_OUTPUT) and `detail` (an error message: why the sandbox failed, for ERROR, or that the
    outputs were cut, which the caller must treat as an error); `runtime` the container runtime
    the sandbox ran on (None when unknown or no sandbox ran)."""

    status: ExecStatus
    exit_code: int | None
    duration: float
    outputs: str = ""
    detail: str = ""
    runtime: str | None = None


class Prepared(Protocol):
    """A started sandbox waiting for its payload."""

    def execute(self, payload: Payload, *, timeout: float, on_output: Callable[[bytes], None]) -> ExecResult:
        """Run `payload`; `on_output` receives raw output chunks (stdout and stderr merged) as they
        come. Stops the processes after `timeout` seconds (ExecStatus.TIMEOUT).
        A KeyboardInterrupt during the run propagates after the sandbox is killed."""
        ...

    def discard(self, wait: bool = False) -> None:
        """Remove the sandbox (kills what still runs), in the background unless `wait`;
        safe to call more than once."""
        ...


class Backend(Protocol):
    """An isolation engine."""

    name: str

    def check(self) -> None:
        """Raise sandbox.errors.EngineUnavailable with a how-to-fix message when the engine does not answer."""
        ...

    def ensure_image(self, image: str, progress: Callable[[str], None]) -> str:
        """Make `image` available (building the default image when needed); returns the image to use."""
        ...

    def resolve_runtime(self, requested: str) -> str:
        """The runtime to use for `requested` (`auto` or a name); raises sandbox.errors.SandboxError
        naming the runtimes the engine offers when it does not offer `requested`."""
        ...

    def prepare(self, spec: SandboxSpec) -> Prepared:
        """Create and start a sandbox for `spec` that waits for its payload."""
        ...

    def reap(self, labels: Mapping[str, str]) -> int:
        """Remove every sandbox carrying all of `labels`; returns how many were removed."""
        ...

    def close(self) -> None:
        """Finish background work (pending removals) and release connections."""
        ...
