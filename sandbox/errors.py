"""The errors a sandbox backend raises: one base `SandboxError`, `str(error)` the one-line message.

The sandbox package imports nothing from `runner` (docs/architecture.md, "Layers"): pipe maps these
to its own errors, and so to exit codes, where it calls a backend (runner.errors.from_sandbox).
"""

from __future__ import annotations


class SandboxError(Exception):
    """Base of every error a user can act on that a backend raises (an image that cannot be built,
    a container the engine refuses, a runtime it does not offer); `str(error)` is the message."""


class EngineUnavailable(SandboxError):
    """The sandbox engine (Docker) does not answer; the message says how to make it answer."""


class UsageError(SandboxError):
    """Configuration given to a backend is malformed (a bad PIPE_HOST_ROOT / --host-root)."""


class PathsUnseen(SandboxError):
    """The engine cannot see the host directories pipe mounts into sandboxes (pipe itself runs in a
    container whose paths differ from the engine's), and no --host-root mapping says where they are."""
