"""The sandbox backend as pipe uses it: opened by name, with every error it raises mapped to pipe's.

The sandbox package has its own errors (sandbox/errors.py) and imports nothing from `runner`; the
commands open their backend here, so everything above sees only PipeError and its subclasses (an
engine that stops answering is EngineUnavailable, exit 4), as docs/architecture.md ("Layers") says.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import sandbox
from runner.errors import sandbox_errors_mapped
from sandbox.base import Backend, ExecResult, Payload, Prepared, SandboxSpec


class GuardedPrepared:
    """A started sandbox whose errors are pipe's (see `Prepared`)."""

    def __init__(self, prepared: Prepared) -> None:
        self.wrapped = prepared

    def execute(self, payload: Payload, *, timeout: float, on_output: Callable[[bytes], None]) -> ExecResult:
        """`Prepared.execute`; a SandboxError is raised as pipe's error."""
        with sandbox_errors_mapped():
            return self.wrapped.execute(payload, timeout=timeout, on_output=on_output)

    def discard(self, wait: bool = False) -> None:
        """`Prepared.discard`; a SandboxError is raised as pipe's error."""
        with sandbox_errors_mapped():
            self.wrapped.discard(wait)


class GuardedBackend:
    """A backend whose errors are pipe's (see `Backend`); `client` is the wrapped backend's engine
    client when it has one (the egress proxy needs Docker's), else None."""

    def __init__(self, backend: Backend) -> None:
        self.wrapped = backend
        self.name = backend.name

    @property
    def client(self) -> Any:
        """The wrapped backend's engine client, or None; raises EngineUnavailable when it cannot connect."""
        with sandbox_errors_mapped():
            return getattr(self.wrapped, "client", None)

    def check(self) -> None:
        """`Backend.check`: raises EngineUnavailable (exit 4) when the engine does not answer."""
        with sandbox_errors_mapped():
            self.wrapped.check()

    def ensure_image(self, image: str, progress: Callable[[str], None]) -> str:
        """`Backend.ensure_image`; raises PipeError when the image can be neither built nor pulled."""
        with sandbox_errors_mapped():
            return self.wrapped.ensure_image(image, progress)

    def resolve_runtime(self, requested: str) -> str:
        """`Backend.resolve_runtime`; raises PipeError for a runtime the engine does not offer."""
        with sandbox_errors_mapped():
            return self.wrapped.resolve_runtime(requested)

    def prepare(self, spec: SandboxSpec) -> GuardedPrepared:
        """`Backend.prepare`; raises PipeError when the engine refuses the sandbox."""
        with sandbox_errors_mapped():
            return GuardedPrepared(self.wrapped.prepare(spec))

    def reap(self, labels: Mapping[str, str]) -> int:
        """`Backend.reap`: how many sandboxes carrying all of `labels` were removed."""
        with sandbox_errors_mapped():
            return self.wrapped.reap(labels)

    def close(self) -> None:
        """`Backend.close`."""
        with sandbox_errors_mapped():
            self.wrapped.close()


def open_backend(name: str = "docker", **options: Any) -> GuardedBackend:
    """The sandbox backend `name` (sandbox.BACKENDS) made with `options`, its errors mapped to pipe's.
    Raises UsageError for malformed options (a bad --host-root) and KeyError for an unknown name."""
    with sandbox_errors_mapped():
        return GuardedBackend(sandbox.backend(name, **options))
