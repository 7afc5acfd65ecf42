"""The error hierarchy: one base `PipeError`, each subclass carrying the exit code it maps to.

Exit codes (README.md, docs/architecture.md): 0 success, 1 a step failed, 2 invalid pipeline or usage,
3 waiting at a wait point, 4 sandbox engine unavailable, 130 interrupted.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Iterator
from dataclasses import dataclass

from sandbox import errors as sandbox_errors


class ExitCode(enum.IntEnum):
    """The process exit codes of `pipe` (documented in README.md)."""

    SUCCESS = 0
    STEP_FAILED = 1
    INVALID = 2
    WAITING = 3
    ENGINE_UNAVAILABLE = 4
    INTERRUPTED = 130


class PipeError(Exception):
    """Base of every error a user can cause; `str(error)` is the one-line message."""

    exit_code: ExitCode = ExitCode.INVALID


class UsageError(PipeError):
    """Bad command-line usage or input values (exit 2)."""


class InputRefused(UsageError):
    """A step refused what it was given before doing anything (a dependency cycle among child
    runs): the step fails, `if: always()` steps still run, and pipe exits 2 with this message."""


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One problem in a pipeline file, printed as `FILE:LINE:COL: key.path: message`.

    `line` and `column` are 1-based; `path` is a key path such as `steps[3].retry.attempts`
    (empty for problems of the whole file).
    """

    file: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ValidationFailed(PipeError):
    """A pipeline file is invalid; carries every diagnostic found in it (exit 2)."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = sorted(diagnostics)
        super().__init__("\n".join(str(d) for d in self.diagnostics))


class TemplateError(PipeError):
    """A template failed to render at run time (undefined value, size cap, syntax)."""


class SecurityError(TemplateError):
    """A template tried to reach something the sandboxed environment forbids."""


class EngineUnavailable(PipeError):
    """The sandbox engine (Docker) does not answer (exit 4)."""

    exit_code = ExitCode.ENGINE_UNAVAILABLE


class RunBusy(PipeError):
    """Another live process owns the run (its lease has not expired); exit 2."""


class RunSkipped(PipeError):
    """A concurrency group was busy and the pipeline says to skip (`if-running: skip`); exit 0."""

    exit_code = ExitCode.SUCCESS


def from_sandbox(error: sandbox_errors.SandboxError) -> PipeError:
    """pipe's error for one a sandbox backend raised, with the same message: EngineUnavailable
    (exit 4) for an engine that does not answer, UsageError for malformed backend configuration,
    else PipeError (exit 2)."""
    if isinstance(error, sandbox_errors.EngineUnavailable):
        return EngineUnavailable(str(error))
    if isinstance(error, sandbox_errors.UsageError):
        return UsageError(str(error))
    return PipeError(str(error))


@contextlib.contextmanager
def sandbox_errors_mapped() -> Iterator[None]:
    """Within the block, a SandboxError is raised again as pipe's own error (`from_sandbox`)."""
    try:
        yield
    except sandbox_errors.SandboxError as error:
        raise from_sandbox(error) from error
