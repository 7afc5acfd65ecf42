"""`pipe validate`: check pipeline files and report every problem."""

from __future__ import annotations

from typing import TextIO

from runner.errors import ExitCode, ValidationFailed
from runner.pipeline.spec import load_pipeline
from runner.terminal import printable


def validate_files(files: list[str], *, out: TextIO, err: TextIO) -> int:
    """Validate each file; `FILE: ok (N steps)` on `out`, diagnostics on `err`. Exit 2 if any failed."""
    failed = False
    for file in files:
        try:
            pipeline = load_pipeline(file)
        except ValidationFailed as error:
            failed = True
            print(printable(str(error)), file=err)
            continue
        except OSError as error:
            failed = True
            print(printable(f"{file}: cannot read: {error.strerror}"), file=err)
            continue
        print(printable(f"{file}: ok ({len(pipeline.all_steps())} steps)"), file=out)
    return int(ExitCode.INVALID if failed else ExitCode.SUCCESS)
