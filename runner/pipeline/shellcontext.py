"""Where an expression sits in a bash script, so its value can be placed as one literal word.

`locate(script, slots)` scans a rendered `run:` script in which every expression was replaced by a
unique slot marker and says, per marker, the quoting context bash reads it in: bare, inside
double quotes, single quotes or `$'...'`, in a comment, in arithmetic, or a place where no quoting
makes a value literal (heredoc bodies, backticks, `${...}`, after a backslash or `$`, the arguments of
a command that runs them as code). It also splits each simple command into words, and marks a slot
`numeric` where bash reads its word as a number (arithmetic evaluates `$(...)` in an array subscript,
quoted or not): see runner/shellcommands.py. A numeric slot takes only a plain integer.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from runner.pipeline import shellcommands
from runner.pipeline.shellcommands import MARK, NUMERIC

# Contexts a value can be placed in; every other context is a refusal (a reason string).
BARE, DOUBLE, SINGLE, ANSI, COMMENT, ARITH = "bare", "double", "single", "ansi", "comment", "arith"
PLACEABLE = frozenset({BARE, DOUBLE, SINGLE, ANSI, COMMENT, ARITH})
_UNSAFE_FRAMES = {
    "backtick": "inside backticks",
    "param": "inside ${...}",
}
_BLANKS = " \t"
_BEFORE_DBRACKET = frozenset({"!", "if", "elif", "while", "until", "then", "else", "do", "[["})
_WORD_END = set(" \t\n;&|()<>")


@dataclass(frozen=True)
class Slot:
    """One marker found in the script: `index` of the expression, span [start, end), its context;
    `numeric` when bash reads it as a number (the value must then be a plain integer)."""

    index: int
    start: int
    end: int
    context: str
    numeric: bool = False


def refusal(name: str, reason: str) -> str:
    """The one-line message for expression `name` (e.g. `{{ inputs.x }}`) refused for `reason`."""
    if reason.endswith(" as code"):
        return f"{name} cannot be placed {reason}; pass it through the step's env: and read the variable"
    return f"{name} cannot be shell-quoted {reason}; make it a plain word or pass it through the step's env:"


def not_an_integer(name: str) -> str:
    """The one-line message for a numeric slot whose value is not a plain integer."""
    return f"{name}: value used as a number by bash must be an integer (pass text through the step's env:)"


def is_integer(value: str) -> bool:
    """Whether `value` is a plain decimal integer (`-?[0-9]+`), the only value a numeric slot takes."""
    return shellcommands.INTEGER.fullmatch(value) is not None


def place(value: str, context: str) -> str:
    """The text that makes `value` one literal word in `context` (in a comment: one quoted word
    without line breaks, so it stays inert even where bash would not read a comment).

    Raises ValueError for a refused context (`context` is then the reason), or for a value that is
    not an integer in ARITH.
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
        return shlex.quote(re.sub(r"[\r\n]", " ", value))  # a line break would end the comment
    if context == ARITH and is_integer(value):
        return value
    raise ValueError(context)


@dataclass
class _Frame:
    kind: str  # bare, double, single, ansi, backtick, param, arith
    depth: int = 0
    nested: bool = False  # a bare frame opened by `$(` or `<(`
    close: str = "))"  # what ends an arith frame: `))` or `]` for `$[`
    # the simple command being read (bare frames): its finished words, where the current one began,
    # the slots in it as (found index, word index, offset in the word), slots piped into it
    words: list[str] = field(default_factory=list)
    word_start: int | None = None
    pending: list[tuple[int, int, int]] = field(default_factory=list)
    piped: list[int] = field(default_factory=list)
    dbracket: bool = False  # inside [[ ... ]]
    compound: int = 0  # parenthesis depth inside name=( ... )


@dataclass
class _Found:
    index: int
    start: int
    end: int
    context: str
    numeric: bool = False
    refusal: str | None = None


class _Scanner:
    def __init__(self, text: str, marker: re.Pattern[str]) -> None:
        self.text = text
        self.marker = marker
        self.marks = {m.start(): m for m in marker.finditer(text)}
        self.stack = [_Frame("bare")]
        self.found: list[_Found] = []
        self.heredocs: list[tuple[str, bool]] = []
        self.uncertain = False
        self.integers = shellcommands.integer_names(marker.sub("x", text))

    def slot(self, i: int, context: str) -> int:
        match = self.marks[i]
        if context in (BARE, DOUBLE, ANSI, ARITH) and _escaped(self.text, i):
            context = "after a backslash"
        elif context in (BARE, DOUBLE, ARITH) and i > 0 and self.text[i - 1] == "$":
            context = "directly after '$'"
        elif self.uncertain and context != COMMENT:
            context = "after a 'case' inside $(...)"
        found = _Found(int(match.group(1)), i, match.end(), context, numeric=context == ARITH)
        self.found.append(found)
        if context in PLACEABLE and context != COMMENT:
            number = len(self.found) - 1
            for frame in self.stack:
                if frame.kind == "bare":
                    self._start_word(frame, i)
                    start = i if frame.word_start is None else frame.word_start
                    offset = len(self._masked(start, i))
                    frame.pending.append((number, len(frame.words), offset))
        return match.end()

    def context(self) -> str:
        for frame in self.stack:
            if frame.kind in _UNSAFE_FRAMES:
                return _UNSAFE_FRAMES[frame.kind]
        if any(frame.kind == "arith" for frame in self.stack):
            return ARITH
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
        for frame in reversed(self.stack):
            if frame.kind == "bare":
                self._end_command(frame, len(text))
        return [
            Slot(f.index, f.start, f.end, f.refusal or f.context, f.numeric and f.refusal is None) for f in self.found
        ]

    # ---- words and commands of bare frames -------------------------------------------------

    def _masked(self, start: int, end: int) -> str:
        return self.marker.sub(MARK, self.text[start:end])

    def _start_word(self, frame: _Frame, i: int) -> None:
        if frame.word_start is None:
            frame.word_start = i

    def _end_word(self, frame: _Frame, i: int) -> None:
        if frame.word_start is None:
            return
        word = self._masked(frame.word_start, i)
        frame.word_start = None
        frame.words.append(word)
        if word == "[[" and all(w in _BEFORE_DBRACKET for w in frame.words):
            frame.dbracket = True
        elif word == "]]":
            frame.dbracket = False

    def _end_command(self, frame: _Frame, i: int, *, pipe: bool = False) -> None:
        self._end_word(frame, i)
        slots = [(word, offset) for _, word, offset in frame.pending if word < len(frame.words)]
        numbers = [number for number, word, _ in frame.pending if word < len(frame.words)]
        verdicts, piped_reason = shellcommands.classify(frame.words, slots, self.integers)
        for number, verdict in zip(numbers, verdicts, strict=True):
            self._judge(number, verdict)
        for number in frame.piped if piped_reason else []:
            self._judge(number, piped_reason)
        frame.piped = frame.piped + numbers if pipe else []
        frame.words, frame.pending, frame.dbracket, frame.compound = [], [], False, 0

    def _judge(self, number: int, verdict: str | None) -> None:
        found = self.found[number]
        if verdict == NUMERIC:
            found.numeric = True
        elif verdict is not None and found.refusal is None and found.context in PLACEABLE:
            found.refusal = verdict

    def _push(self, kind: str, i: int, width: int, *, nested: bool = False, close: str = "))") -> int:
        self.stack.append(_Frame(kind, nested=nested, close=close))
        return i + width

    def _pop(self, i: int, width: int = 1) -> int:
        if len(self.stack) > 1:
            self.stack.pop()
        return i + width

    def _expansion(self, i: int) -> int | None:
        """`$(`, `$((`, `$[`, `${` and backticks, shared by bare, double-quoted and `${}` text."""
        text = self.text
        if text.startswith("$((", i):
            return self._push("arith", i, 3)
        if text.startswith("$[", i):
            return self._push("arith", i, 2, close="]")
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
        if char == "\\":
            if text.startswith("\\\n", i):
                return i + 2  # a line continuation joins the words around it
            self._start_word(frame, i)
            return self._escape(i)
        if char in _BLANKS or (char == "\n" and (frame.dbracket or frame.compound)):
            if not frame.compound:
                self._end_word(frame, i)
            return i + 1
        if char == "#" and frame.word_start is None:
            return self._comment(i)
        if text.startswith("<<", i) and not text.startswith("<<<", i):
            self._end_word(frame, i)
            return self._heredoc_operator(i)
        if char in "<>" and text.startswith("(", i + 1):
            self._start_word(frame, i)
            return self._push("bare", i, 2, nested=True)  # process substitution
        if char in "<>" or text.startswith("&>", i):
            return self._redirection(frame, i)
        if char == "\n":
            self._end_command(frame, i)
            return self._heredoc_bodies(i + 1) if self.heredocs else i + 1
        if text.startswith("((", i) and frame.word_start is None and not frame.dbracket:
            self._start_word(frame, i)
            return self._push("arith", i, 2)
        if char in ";&|":
            return self._operator(frame, i)
        if char in "()":
            return self._parenthesis(frame, i)
        if frame.nested and frame.word_start is None and re.match(r"case\b", text[i : i + 5]):
            self.uncertain = True
        self._start_word(frame, i)
        if char == "'":
            return self._push("single", i, 1)
        if char == '"':
            return self._push("double", i, 1)
        if text.startswith("$'", i):
            return self._push("ansi", i, 2)
        if text.startswith('$"', i):
            return self._push("double", i, 2)
        pushed = self._expansion(i)
        return pushed if pushed is not None else i + 1

    def _redirection(self, frame: _Frame, i: int) -> int:
        """`>`, `2>&`, `&>>`, `<`, `<<<`...: one word, the fd number before it dropped."""
        text = self.text
        fd = frame.word_start is not None and text[frame.word_start : i].isdigit()
        self._end_word(frame, i)
        if fd:
            frame.words.pop()
        end = i + 1 if text[i] == "&" else i  # &> and &>>
        while end < len(text) and text[end] in "<>":
            end += 1
        end += 1 if end < len(text) and text[end] in "&|" else 0  # >& <& >|
        frame.words.append(text[i:end])
        return end

    def _operator(self, frame: _Frame, i: int) -> int:
        text = self.text
        double = text.startswith(("&&", "||"), i)
        if frame.dbracket and double:
            self._end_word(frame, i)
            frame.words.append(text[i : i + 2])
            return i + 2
        if frame.compound:
            return i + 1
        pipe = text[i] == "|" and not double
        self._end_command(frame, i, pipe=pipe)
        return i + (2 if double or text.startswith(("|&", ";;", ";&"), i) else 1)

    def _parenthesis(self, frame: _Frame, i: int) -> int:
        char = self.text[i]
        if frame.compound:
            frame.compound += 1 if char == "(" else -1
            return i + 1
        if char == "(" and frame.word_start is not None and self.text[i - 1] == "=":
            frame.compound = 1  # name=( elements ): one word
            return i + 1
        if frame.dbracket:
            self._end_word(frame, i)
            frame.words.append(char)
            return i + 1
        if char == "(":
            self._end_command(frame, i)
            if frame.nested:
                frame.depth += 1
            return i + 1
        self._end_command(frame, i)
        if frame.nested and frame.depth == 0:
            return self._pop(i)
        frame.depth = max(frame.depth - 1, 0)
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
        opening, closing = ("[", "]") if frame.close == "]" else ("(", ")")
        if char == opening:
            frame.depth += 1
        elif char == closing:
            if frame.depth == 0 and text.startswith(frame.close, i):
                return self._pop(i, len(frame.close))
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
        while i < len(text) and text[i] not in _WORD_END:
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
    SINGLE, ANSI, COMMENT, ARITH, or a reason (e.g. "inside backticks") where no quoting is
    literal; `Slot.numeric` marks where only a plain integer is allowed.
    """
    return _Scanner(script, marker).run()


def _escaped(text: str, i: int) -> bool:
    count = 0
    while i - count - 1 >= 0 and text[i - count - 1] == "\\":
        count += 1
    return count % 2 == 1
