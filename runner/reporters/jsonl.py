"""JSON lines: one object per event or output line, for machines (`pipe run --json`)."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any, TextIO


class JsonLinesReporter:
    """Writes `{"at": epoch seconds, "event": kind, ...data}` lines to `stream`; output lines as
    `{"event": "output", "step": ..., "line": ...}`."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def _write(self, record: Mapping[str, Any]) -> None:
        self.stream.write(json.dumps(record, default=str) + "\n")
        self.stream.flush()

    def event(self, kind: str, data: Mapping[str, Any]) -> None:
        self._write({"at": round(time.time(), 3), "event": kind, **data})

    def output(self, step: str, text: str) -> None:
        for line in text.splitlines():
            self._write({"at": round(time.time(), 3), "event": "output", "step": step, "line": line})

    def close(self) -> None:
        self.stream.flush()
