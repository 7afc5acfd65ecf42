"""`pipe run`: load a pipeline, resolve its inputs and secrets, then print the plan or execute it."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from types import FrameType
from typing import TextIO

from runner import __version__
from runner.actions import ACTIONS
from runner.errors import ExitCode, UsageError
from runner.inputs import parse_assignments, resolve_inputs
from runner.model import Pipeline
from runner.plan import format_plan, plan
from runner.spec import load_pipeline
from runner.store import Store


def load(file: str) -> Pipeline:
    """Load `file`, turning an unreadable file into a UsageError (exit 2)."""
    try:
        return load_pipeline(file)
    except OSError as error:
        raise UsageError(f"{file}: cannot read: {error.strerror}") from None


def check_actions(pipeline: Pipeline) -> None:
    """Refuse (exit 2) a pipeline that uses an action this version cannot execute."""
    for step in pipeline.all_steps():
        if step.uses is not None and step.uses not in ACTIONS:
            where = f"{pipeline.path}:{step.line}: steps.{step.id}"
            raise UsageError(f"{where}: action '{step.uses}' is not available in pipe {__version__}")


def _interrupt_on_sigterm() -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def run_pipeline(
    file: str,
    assignments: list[str],
    *,
    dry_run: bool,
    out: TextIO,
    state_dir: Path,
    json_lines: bool = False,
    secret_files: list[Path] | None = None,
    workspace: Path | None = None,
    token_file: Path | None = None,
) -> int:
    """Run (or with `dry_run`, plan) the pipeline in `file` with `--input` assignments.

    Returns the run's exit code (0, 1, 3 or 130). Raises UsageError (2) for bad input and
    EngineUnavailable (4) when Docker does not answer.
    """
    pipeline = load(file)
    inputs = resolve_inputs(pipeline, parse_assignments(assignments))
    if dry_run:
        print(format_plan(pipeline, plan(pipeline, inputs)), file=out)
        return int(ExitCode.SUCCESS)
    check_actions(pipeline)
    from runner.engine import Engine, RunOptions
    from runner.reporters.console import console_reporter
    from runner.reporters.jsonl import JsonLinesReporter
    from runner.secrets import resolve_secrets
    from sandbox import backend as make_backend

    secrets = resolve_secrets(pipeline, os.environ, secret_files or [])
    reporter = JsonLinesReporter(out) if json_lines else console_reporter(out)
    store = Store(state_dir)
    backend = make_backend("docker")
    _interrupt_on_sigterm()
    try:
        options = RunOptions(state_dir=state_dir, secrets=secrets, workspace=workspace, token_file=token_file)
        result = Engine(pipeline, store, backend, reporter, options).run(inputs)
    finally:
        reporter.close()
        backend.close()
        store.close()
    return int(result.exit_code)
