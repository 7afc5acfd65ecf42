"""What one attempt may record (`Limits`, from PIPE_MAX_RECORD, PIPE_MAX_RECORD_FILE and
PIPE_MAX_RECORD_SECONDS) and what is left of it while recording (`Budget`); see
runner/changes/recording.py for what happens to a file over a cap."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from runner.changes.objects import Block
from runner.errors import UsageError

_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(name: str, text: str) -> int:
    """Bytes from `text` such as 4194304, 4M, 4MiB or 2G (binary units). Raises UsageError."""
    match = re.fullmatch(r"\s*(\d+)\s*([kKmMgGtT]?)(?:i?[bB])?\s*", text)
    if match is None:
        raise UsageError(f"{name}={text!r}: expected a size such as 2G, 512M or 1048576")
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


def human(size: int) -> str:
    """`size` bytes for a message: 3.0 GiB, 512 KiB, 12 bytes."""
    for unit, factor in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor:
            value = size / factor
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{size} bytes"


@dataclass(frozen=True)
class Limits:
    """What one attempt may record: `total` bytes of file data, `per_file` bytes of one file's
    data (holes not counted), `seconds` of recording."""

    total: int = 2 << 30
    per_file: int = 1 << 30
    seconds: float = 300.0

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Limits:
        """From PIPE_MAX_RECORD, PIPE_MAX_RECORD_FILE and PIPE_MAX_RECORD_SECONDS (defaults
        above; the per-file cap is at most the total). Raises UsageError for a bad value."""
        environ = os.environ if environ is None else environ
        total = parse_size("PIPE_MAX_RECORD", environ.get("PIPE_MAX_RECORD") or str(cls.total))
        per_file = min(
            total, parse_size("PIPE_MAX_RECORD_FILE", environ.get("PIPE_MAX_RECORD_FILE") or str(cls.per_file))
        )
        text = environ.get("PIPE_MAX_RECORD_SECONDS") or str(cls.seconds)
        try:
            seconds = float(text)
        except ValueError:
            raise UsageError(f"PIPE_MAX_RECORD_SECONDS={text!r}: expected a number of seconds") from None
        return cls(total, per_file, seconds)


class OutOfTime(Exception):
    """Recording went past its time cap."""


class Budget:
    """What is left of one attempt's recording allowance; `refused` collects why it failed."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.left = limits.total
        self.deadline = time.monotonic() + limits.seconds
        self.refused: list[str] = []

    def expired(self) -> bool:
        """Whether the attempt's recording time is up."""
        return time.monotonic() > self.deadline

    def watch(self, blocks: Iterator[Block]) -> Iterator[Block]:
        """`blocks` passed on one by one; raises OutOfTime once the recording time is up."""
        for block in blocks:
            if self.expired():
                raise OutOfTime
            yield block
