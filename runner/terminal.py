"""Neutralising terminal control sequences in text shown to a person (docs/architecture.md, Principles 13).

Stored logs and outputs stay faithful; text is made printable only where it is displayed.
"""

from __future__ import annotations

import re
from typing import TextIO

# C0 controls except \t and \n, DEL, and C1 controls (U+0080-U+009F). A lone \r (one not followed by
# \n) moves the cursor to the start of the line and can overwrite what was printed, so it counts.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f-\x9f]|\r(?!\n)")


def _escape(match: re.Match[str]) -> str:
    return f"\\x{ord(match.group()):02x}"


def printable(text: str) -> str:
    """`text` with every control character that a terminal would interpret made visible.

    ESC, the other C0 controls (NUL, BEL, backspace, ...), DEL, the C1 controls (U+0080-U+009F,
    including the 8-bit CSI U+009B and OSC U+009D) and a carriage return not followed by a line feed
    are replaced by their escape text (ESC becomes the four characters `\\x1b`). Line feeds, tabs
    and `\\r\\n` pairs stay as they are, so the result has the same lines as `text`. Never raises.
    """
    return _CONTROL.sub(_escape, text)


class PrintableWriter:
    """A text stream that writes `printable(text)` to `out`: for commands whose whole output is
    shown to a person and quotes what steps wrote (file names, diffs, symlink targets)."""

    def __init__(self, out: TextIO) -> None:
        self._out = out

    def write(self, text: str) -> int:
        self._out.write(printable(text))
        return len(text)

    def flush(self) -> None:
        self._out.flush()
