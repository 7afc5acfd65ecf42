"""The one place where errors become a message on stderr and an exit code.

A PipeError prints its one-line message (made printable: it may quote untrusted text) and exits
with its code; KeyboardInterrupt exits 130; any other exception is a bug: its traceback is saved
to a file whose path is printed.
"""

from __future__ import annotations

import sys
import tempfile
import traceback
from collections.abc import Callable

from runner.errors import ExitCode, PipeError
from runner.terminal import printable


def run_guarded(work: Callable[[], int]) -> int:
    """Call `work` and return its exit code, or the exit code of the error it raised."""
    try:
        return work()
    except PipeError as error:
        print(printable(str(error)), file=sys.stderr)
        return int(error.exit_code)
    except KeyboardInterrupt:
        print("pipe: interrupted", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)
    except Exception:
        with tempfile.NamedTemporaryFile("w", prefix="pipe-crash-", suffix=".log", delete=False) as log:
            traceback.print_exc(file=log)
        kind = sys.exc_info()[0]
        name = kind.__name__ if kind else "error"
        print(f"pipe: unexpected {name}; this is a bug in pipe. Traceback saved to {log.name}", file=sys.stderr)
        return int(ExitCode.STEP_FAILED)
