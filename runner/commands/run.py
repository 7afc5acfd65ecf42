"""`pipe run`: load a pipeline, resolve its inputs, then print the plan or execute it."""

from __future__ import annotations

from typing import TextIO

from runner.errors import ExitCode, UsageError
from runner.inputs import parse_assignments, resolve_inputs
from runner.plan import format_plan, plan
from runner.spec import load_pipeline


def run_pipeline(file: str, assignments: list[str], *, dry_run: bool, out: TextIO) -> int:
    """Run (or with `dry_run`, plan) the pipeline in `file` with `--input` assignments."""
    try:
        pipeline = load_pipeline(file)
    except OSError as error:
        raise UsageError(f"{file}: cannot read: {error.strerror}") from None
    inputs = resolve_inputs(pipeline, parse_assignments(assignments))
    if dry_run:
        print(format_plan(pipeline, plan(pipeline, inputs)), file=out)
        return int(ExitCode.SUCCESS)
    raise UsageError("running pipelines needs the engine, which is not built yet; use --dry-run")
