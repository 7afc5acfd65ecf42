"""Where an expression sits in a bash script, so its value can be placed as one literal word.

`locate(script, slots)` scans a rendered `run:` script in which every expression was replaced by a
unique slot marker and says, per marker, the quoting context bash reads it in: bare, inside
double quotes, single quotes or `$'...'`, in a comment, or a place where no quoting makes a value
literal (heredoc bodies, backticks, `${...}`, arithmetic, after a backslash or `$`).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

# Contexts a value can be placed in; every other context is a refusal (a reason string).
BARE, DOUBLE, SINGLE, ANSI, COMMENT = "bare", "double", "single", "ansi", "comment"
PLACEABLE = frozenset({BARE, DOUBLE, SINGLE, ANSI, COMMENT})
_UNSAFE_FRAMES = {
    "backtick": "inside backticks",
    "param": "inside ${...}",
    "arith": "in an arithmetic expression",
}
_WORD_START = set(" \t\n;&|()<>")


@dataclass(frozen=True)
class Slot:
    """One marker found in the script: `index` of the expression, span [start, end), its context."""

    index: int
    start: int
    end: int
    context: str


def place(value: str, context: str) -> str:
    """The text that makes `value` one literal word (or comment text) in `context`.

    Raises ValueError for a refused context (`context` is then the reason).
    """
    quoted = shlex.quote(value)
    if context == BARE:
        return quoted
    if context == DOUBLE:
        return f'"{quoted}"'  # close the double quotes, the single-quoted value, reopen
    if context == SINGLE:
        return f"'{quoted}'"
    if context == ANSI:
        return f"'{quoted}$'"
    if context == COMMENT:
        return re.sub(r"[\r\n]", " ", value)  # a line break would end the comment
    raise ValueError(context)


@dataclass
class _Frame:
    kind: str  # bare, double, single, ansi, backtick, param, arith
    depth: int = 0
    nested: bool = False  # a bare frame opened by `$(`


class _Scanner:
    def __init__(self, text: str, marker: re.Pattern[str]) -> None:
        self.text = text
        self.marks = {m.start(): m for m in marker.finditer(text)}
        self.stack = [_Frame("bare")]
        self.found: list[Slot] = []
        self.heredocs: list[tuple[str, bool]] = []
        self.uncertain = False

    def slot(self, i: int, context: str) -> int:
        match = self.marks[i]
        if context in (BARE, DOUBLE, ANSI) and _escaped(self.text, i):
            context = "after a backslash"
        elif context in (BARE, DOUBLE) and i > 0 and self.text[i - 1] == "$":
            context = "directly after '$'"
        elif self.uncertain and context != COMMENT:
            context = "after a 'case' inside $(...)"
        self.found.append(Slot(int(match.group(1)), i, match.end(), context))
        return match.end()

    def context(self) -> str:
        for frame in self.stack:
            if frame.kind in _UNSAFE_FRAMES:
                return _UNSAFE_FRAMES[frame.kind]
        return self.stack[-1].kind

    def run(self) -> list[Slot]:
        text, i = self.text, 0
        while i < len(text):
            if i in self.marks:
                i = self.slot(i, self.context())
                continue
            kind = self.stack[-1].kind
            step = getattr(self, f"_{kind}")
            i = step(i)
        return self.found

    def _push(self, kind: str, i: int, width: int, *, nested: bool = False) -> int:
        self.stack.append(_Frame(kind, nested=nested))
        return i + width

    def _pop(self, i: int, width: int = 1) -> int:
        if len(self.stack) > 1:
            self.stack.pop()
        return i + width

    def _expansion(self, i: int) -> int | None:
        """`$(`, `$((`, `${` and backticks, shared by bare, double-quoted and `${}` text."""
        text = self.text
        if text.startswith("$((", i):
            return self._push("arith", i, 3)
        if text.startswith("$(", i):
            return self._push("bare", i, 2, nested=True)
        if text.startswith("${", i):
            return self._push("param", i, 2)
        if text[i] == "`":
            return self._push("backtick", i, 1)
        return None

    def _bare(self, i: int) -> int:
        text, frame = self.text, self.stack[-1]
        char = text[i]
        at_word_start = i == 0 or text[i - 1] in _WORD_START
        if char == "\\":
            return self._escape(i)
        if char == "'":
            return self._push("single", i, 1)
        if char == '"':
            return self._push("double", i, 1)
        if text.startswith("$'", i):
            return self._push("ansi", i, 2)
        if text.startswith('$"', i):
            return self._push("double", i, 2)
        pushed = self._expansion(i)
        if pushed is not None:
            return pushed
        if char == "#" and at_word_start:
            return self._comment(i)
        if text.startswith("((", i) and at_word_start:
            return self._push("arith", i, 2)
        if text.startswith("<<", i):
            return self._heredoc_operator(i)
        if char == "\n" and self.heredocs:
            return self._heredoc_bodies(i + 1)
        if frame.nested and char == "(":
            frame.depth += 1
        elif frame.nested and char == ")":
            if frame.depth == 0:
                return self._pop(i)
            frame.depth -= 1
        elif frame.nested and at_word_start and re.match(r"case\b", text[i : i + 5]):
            self.uncertain = True
        return i + 1

    def _escape(self, i: int) -> int:
        """Skip a backslash and the character it escapes, but never the start of a marker."""
        return i + 1 if i + 1 in self.marks else i + 2

    def _double(self, i: int) -> int:
        char = self.text[i]
        if char == "\\":
            return self._escape(i)
        if char == '"':
            return self._pop(i)
        pushed = self._expansion(i)
        return pushed if pushed is not None else i + 1

    def _single(self, i: int) -> int:
        return self._pop(i) if self.text[i] == "'" else i + 1

    def _ansi(self, i: int) -> int:
        char = self.text[i]
        if char == "\\":
            return self._escape(i)
        return self._pop(i) if char == "'" else i + 1

    def _backtick(self, i: int) -> int:
        char = self.text[i]
        if char == "\\":
            return self._escape(i)
        return self._pop(i) if char == "`" else i + 1

    def _param(self, i: int) -> int:
        text, frame = self.text, self.stack[-1]
        char = text[i]
        if char == "\\":
            return self._escape(i)
        if char == "'":
            return self._push("single", i, 1)
        if char == '"':
            return self._push("double", i, 1)
        pushed = self._expansion(i)
        if pushed is not None:
            return pushed
        if char == "{":
            frame.depth += 1
        elif char == "}":
            if frame.depth == 0:
                return self._pop(i)
            frame.depth -= 1
        return i + 1

    def _arith(self, i: int) -> int:
        text, frame = self.text, self.stack[-1]
        char = text[i]
        pushed = self._expansion(i)
        if pushed is not None:
            return pushed
        if char == "(":
            frame.depth += 1
        elif char == ")":
            if frame.depth == 0 and text.startswith("))", i):
                return self._pop(i, 2)
            frame.depth = max(frame.depth - 1, 0)
        return i + 1

    def _comment(self, i: int) -> int:
        while i < len(self.text) and self.text[i] != "\n":
            i = self.slot(i, COMMENT) if i in self.marks else i + 1
        return i

    def _heredoc_operator(self, i: int) -> int:
        text = self.text
        if text.startswith("<<<", i):
            return i + 3
        i += 2
        strip = text.startswith("-", i)
        i += 1 if strip else 0
        while i < len(text) and text[i] in " \t":
            i += 1
        start = i
        while i < len(text) and text[i] not in _WORD_START:
            if i in self.marks:
                i = self.slot(i, "in a heredoc delimiter")
                continue
            i += 1
        word = text[start:i]
        delimiter = re.sub(r"[\\'\"]", "", word)
        self.heredocs.append((delimiter, strip))
        return i

    def _heredoc_bodies(self, i: int) -> int:
        text = self.text
        for delimiter, strip in self.heredocs:
            while i < len(text):
                end = text.find("\n", i)
                end = len(text) if end < 0 else end
                line = text[i:end]
                for position in [p for p in self.marks if i <= p < end]:
                    self.slot(position, "in a heredoc")
                i = end + 1
                if (line.lstrip("\t") if strip else line) == delimiter:
                    break
        self.heredocs = []
        return min(i, len(text))


def locate(script: str, marker: re.Pattern[str]) -> list[Slot]:
    """Every match of `marker` in `script` with the context bash reads it in.

    `marker` must have one group, the expression's index (digits). Contexts are BARE, DOUBLE,
    SINGLE, ANSI, COMMENT, or a reason (e.g. "inside backticks") where no quoting is literal.
    """
    return _Scanner(script, marker).run()


def _escaped(text: str, i: int) -> bool:
    count = 0
    while i - count - 1 >= 0 and text[i - count - 1] == "\\":
        count += 1
    return count % 2 == 1
