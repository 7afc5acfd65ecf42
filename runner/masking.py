"""Secret masking: every secret and credential value becomes `***` in console output, log files and
the store, including its base64 (standard and URL-safe, at any alignment, also when an encoder
wrapped it over lines), URL-encoded forms and each line of a multi-line value; mapping keys (output
names a step chose) are masked like values. Like GitHub Actions' `::add-mask::`, values shorter than
MIN_LENGTH characters are not masked (they would mask ordinary words)."""

from __future__ import annotations

import base64
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any

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


def _forms(value: str) -> tuple[set[str], set[str]]:
    """The masked forms of `value`: (plain and URL-encoded forms, base64 forms)."""
    plain: set[str] = set()
    encoded: set[str] = set()
    pieces = [value] + [line.strip() for line in value.splitlines()]
    for piece in pieces:
        if len(piece) < MIN_LENGTH:
            continue
        plain.add(piece)
        plain.add(urllib.parse.quote(piece, safe=""))
        plain.add(urllib.parse.quote_plus(piece, safe=""))
        plain.add(urllib.parse.quote(piece))
        encoded |= _base64_forms(piece.encode())
    return {v for v in plain if len(v) >= MIN_LENGTH}, {v for v in encoded if len(v) >= MIN_LENGTH}


def variants(value: str) -> set[str]:
    """Every form of `value` that is masked."""
    plain, encoded = _forms(value)
    return plain | encoded


_WRAP = "(?:\r?\n)?"  # base64 tools wrap lines (coreutils at 76 columns, PEM at 64)


def _alternatives(plain: set[str], encoded: set[str]) -> list[str]:
    """Regex alternatives, longest first; a base64 form may be broken by line ends anywhere."""
    wrapped = {v: _WRAP.join(re.escape(c) for c in v) for v in encoded}
    ordered = sorted(plain | encoded, key=len, reverse=True)
    return [wrapped.get(v) or re.escape(v) for v in ordered]


class Masker:
    """Replaces registered secret values (and their variants) with `***`."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._variants: set[str] = set()
        self._plain: set[str] = set()
        self._encoded: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str) -> None:
        """Register one more secret value."""
        plain, encoded = _forms(secret)
        if (plain | encoded) - self._variants:
            self._plain |= plain
            self._encoded |= encoded
            self._variants = self._plain | self._encoded
            self._pattern = re.compile("|".join(_alternatives(self._plain, self._encoded)))

    @property
    def wraps(self) -> bool:
        """Whether a masked form may be split over lines (base64 wrapped by its encoder)."""
        return bool(self._encoded)

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
        """Mask every string inside `value` (lists and mappings recursively), mapping keys too: a
        step chooses its output names, so a secret may be one."""
        if isinstance(value, Mapping):
            return {self.mask(k) if isinstance(k, str) else k: self.mask_value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.mask_value(item) for item in value]
        return self.mask(value) if isinstance(value, str) else value

    def byte_pattern(self) -> re.Pattern[bytes] | None:
        """The masked forms as UTF-8, longest first (None when nothing is masked)."""
        if not self._variants:
            return None
        return re.compile("|".join(_alternatives(self._plain, self._encoded)).encode())


class ByteMasker:
    """Masks a byte stream (any content, not only text) in chunks: `feed` returns what is safe to
    pass on, holding back the bytes that could start a secret; `flush` the rest. `masked` says
    whether anything was replaced. Memory: one chunk plus the longest masked form."""

    def __init__(self, masker: Masker) -> None:
        self._pattern = masker.byte_pattern()
        # A wrapped base64 form carries up to two line-end bytes per character.
        self._hold = max(3 * masker.longest_bytes - 1, 0)
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


_BASE64_LINE = re.compile(r"[A-Za-z0-9+/=_-]{4,}\r?\n")


class LineMasker:
    """Masks a byte stream line by line, so a secret split across chunks is still caught.

    `feed` returns the complete masked lines so far; `flush` the rest. A line longer than
    `max_line` bytes is passed on early, minus a tail long enough to hold any secret. A last line
    made only of base64 characters is held back until the next one comes (or `flush`), so a secret
    whose base64 an encoder wrapped over two lines is still masked.
    """

    def __init__(self, masker: Masker, max_line: int = 64 * 1024) -> None:
        self._masker = masker
        self._pending = b""
        self._held = ""  # the last complete line, already masked once, that may continue below
        self._max_line = max_line

    def feed(self, data: bytes) -> str:
        self._pending += data
        cut = self._pending.rfind(b"\n") + 1
        forced = cut == 0 and len(self._pending) > self._max_line
        if forced:
            cut = self._masker.unfinished(self._pending)
        if cut <= 0:
            return ""
        ready, self._pending = self._pending[:cut], self._pending[cut:]
        text = self._masker.mask(self._held + ready.decode("utf-8", errors="replace"))
        self._held = ""
        if not forced and self._masker.wraps:
            start = text.rfind("\n", 0, len(text) - 1) + 1
            if _BASE64_LINE.fullmatch(text, start):
                text, self._held = text[:start], text[start:]
        return text

    def flush(self) -> str:
        ready, self._pending = self._pending, b""
        text, self._held = self._held + ready.decode("utf-8", errors="replace"), ""
        return self._masker.mask(text)
