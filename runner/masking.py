"""Secret masking: every secret and credential value becomes `***` in console output, log files and
the store, including its base64 (standard and URL-safe, at any alignment), URL-encoded forms and
each line of a multi-line value. Like GitHub Actions' `::add-mask::`, values shorter than
MIN_LENGTH characters are not masked (they would mask ordinary words)."""

from __future__ import annotations

import base64
import re
import urllib.parse
from collections.abc import Iterable
from typing import Any

from runner.values import map_strings

MASK = "***"
MIN_LENGTH = 4
_MIN_ENCODED = 6


def _base64_forms(secret: bytes) -> set[str]:
    """The base64 text that any encoding of data containing `secret` must contain, for each of the
    three byte alignments: only the 4-character groups made entirely of the secret's bytes."""
    forms: set[str] = set()
    for offset in range(3):
        padded = b"\0" * offset + secret
        encoded = base64.b64encode(padded).decode()
        first_group = (offset + 2) // 3
        last_group = len(padded) // 3
        core = encoded[first_group * 4 : last_group * 4]
        if len(core) >= _MIN_ENCODED:
            forms.add(core)
            forms.add(core.replace("+", "-").replace("/", "_"))
    return forms


def variants(value: str) -> set[str]:
    """Every form of `value` that is masked."""
    found: set[str] = set()
    pieces = [value] + [line.strip() for line in value.splitlines()]
    for piece in pieces:
        if len(piece) < MIN_LENGTH:
            continue
        found.add(piece)
        found.add(urllib.parse.quote(piece, safe=""))
        found.add(urllib.parse.quote_plus(piece, safe=""))
        found.add(urllib.parse.quote(piece))
        found |= _base64_forms(piece.encode())
    return {v for v in found if len(v) >= MIN_LENGTH}


class Masker:
    """Replaces registered secret values (and their variants) with `***`."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._variants: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str) -> None:
        """Register one more secret value."""
        new = variants(secret) - self._variants
        if new:
            self._variants |= new
            ordered = sorted(self._variants, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(v) for v in ordered))

    def unfinished(self, data: bytes) -> int:
        """Where a secret form may begin in `data` without ending in it: the index of the earliest
        suffix of `data` that is a proper prefix of a masked form, else len(data). A stream that
        must pass `data` on before its end is known keeps `data[unfinished(data):]` back."""
        forms = [v.encode() for v in self._variants]
        for start in range(max(len(data) - self.longest + 1, 0), len(data)):
            tail = data[start:]
            if any(form.startswith(tail) for form in forms):
                return start
        return len(data)

    @property
    def longest(self) -> int:
        """Length of the longest masked form (how much text a stream must hold back)."""
        return max((len(v) for v in self._variants), default=0)

    @property
    def longest_bytes(self) -> int:
        """Length in UTF-8 bytes of the longest masked form."""
        return max((len(v.encode()) for v in self._variants), default=0)

    def mask(self, text: str) -> str:
        """`text` with every masked form replaced."""
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(MASK, text)

    def mask_value(self, value: Any) -> Any:
        """Mask every string inside `value` (lists and mappings recursively)."""
        return map_strings(value, self.mask)

    def byte_pattern(self) -> re.Pattern[bytes] | None:
        """The masked forms as UTF-8, longest first (None when nothing is masked)."""
        if not self._variants:
            return None
        ordered = sorted((v.encode() for v in self._variants), key=len, reverse=True)
        return re.compile(b"|".join(re.escape(v) for v in ordered))


class ByteMasker:
    """Masks a byte stream (any content, not only text) in chunks: `feed` returns what is safe to
    pass on, holding back the bytes that could start a secret; `flush` the rest. `masked` says
    whether anything was replaced. Memory: one chunk plus the longest masked form."""

    def __init__(self, masker: Masker) -> None:
        self._pattern = masker.byte_pattern()
        self._hold = max(masker.longest_bytes - 1, 0)
        self._pending = b""
        self.masked = False

    def feed(self, data: bytes) -> bytes:
        if self._pattern is None:
            return data
        buffer = self._pending + data
        return self._emit(buffer, len(buffer) - self._hold)

    def flush(self) -> bytes:
        return self._emit(self._pending, len(self._pending)) if self._pattern is not None else b""

    def _emit(self, buffer: bytes, cut: int) -> bytes:
        """Mask the matches that start before `cut` (each has all the bytes it could need), pass on
        everything up to `cut` or the last such match's end, and keep the rest."""
        assert self._pattern is not None
        pieces: list[bytes] = []
        position = 0
        for match in self._pattern.finditer(buffer):
            if match.start() >= cut:
                break
            pieces += [buffer[position : match.start()], MASK.encode()]
            position = match.end()
            self.masked = True
        end = max(cut, position, 0)
        pieces.append(buffer[position:end])
        self._pending = buffer[end:]
        return b"".join(pieces)


class LineMasker:
    """Masks a byte stream line by line, so a secret split across chunks is still caught.

    `feed` returns the complete masked lines so far; `flush` the rest. A line longer than
    `max_line` bytes is passed on early, minus a tail long enough to hold any secret.
    """

    def __init__(self, masker: Masker, max_line: int = 64 * 1024) -> None:
        self._masker = masker
        self._pending = b""
        self._max_line = max_line

    def feed(self, data: bytes) -> str:
        self._pending += data
        cut = self._pending.rfind(b"\n") + 1
        if cut == 0 and len(self._pending) > self._max_line:
            cut = self._masker.unfinished(self._pending)
        if cut <= 0:
            return ""
        ready, self._pending = self._pending[:cut], self._pending[cut:]
        return self._masker.mask(ready.decode("utf-8", errors="replace"))

    def flush(self) -> str:
        ready, self._pending = self._pending, b""
        return self._masker.mask(ready.decode("utf-8", errors="replace"))
