"""Which words of one bash simple command bash reads as a number, or runs as code.

A value quoted as one word is still evaluated where bash reads a word as arithmetic (`[[ a -gt b ]]`,
`name[subscript]`, `declare -i`, `let`, `read NAME`, `printf -v NAME`, `test -v`): an array
subscript in it runs `$(...)`. Such a slot must hold a plain integer (NUMERIC). Commands that run an
argument as code (`eval`, `bash -c`, `trap`, `ssh`, a shell reading a pipe, ...) take no value at all.
`classify` judges one command from its words; runner/pipeline/shellcontext.py finds the words.
"""

from __future__ import annotations

import re

NUMERIC = "numeric"
MARK = "\x00"  # stands for an expression inside a word
INTEGER = re.compile(r"-?[0-9]+")

_RESERVED = frozenset({"!", "if", "then", "elif", "else", "do", "while", "until", "time", "{", "}"})
_ASSIGNMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(\[[^=]*\])?\+?=")
_PREFIX_COMMANDS = frozenset(
    {"command", "builtin", "exec", "nohup", "env", "sudo", "doas", "nice", "timeout", "stdbuf", "setsid", "xargs"}
)
_PREFIX_OPERAND = re.compile(r"-.*|[A-Za-z_][A-Za-z0-9_]*=.*|[0-9.]+[smhd]?|\{\}")
_CODE_COMMANDS = frozenset({"eval", "source", ".", "trap", "alias", "ssh", "su", "mapfile", "readarray", "complete"})
_SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "busybox", "fish"})
_INTERPRETERS = frozenset({"python", "python3", "python2", "perl", "ruby", "node", "nodejs", "php", "deno"})
_SHELL_CODE_FLAG = re.compile(r"-[A-Za-z]*c[A-Za-z]*")
_INTERPRETER_CODE_FLAG = re.compile(r"-[A-Za-z]*[ceEpr][A-Za-z]*|--eval|--print|-")
_DECLARE = frozenset({"declare", "typeset", "local", "export", "readonly"})
_ARITHMETIC_OPERATORS = frozenset({"-eq", "-ne", "-lt", "-le", "-gt", "-ge"})
_NAME_TESTS = frozenset({"-v", "-R"})
_READ_TEXT_OPTIONS = frozenset({"-p", "-d", "-i", "-t", "-n", "-N", "-u"})
_CODE_VARIABLES = frozenset({"PS0", "PS1", "PS2", "PS3", "PS4", "PROMPT_COMMAND", "BASH_ENV", "ENV"})
_INTEGER_DECLARATION = re.compile(r"\b(?:declare|typeset|local|export|readonly)\b([^;&|\n]*)")


def integer_names(script: str) -> frozenset[str]:
    """Names the script declares with an integer or nameref attribute (`declare -i n`, `local -n r`):
    a value assigned to them anywhere is evaluated as arithmetic or as a name."""
    names: set[str] = set()
    for match in _INTEGER_DECLARATION.finditer(script):
        tokens = match.group(1).split()
        if any(t.startswith("-") and ("i" in t or "n" in t) for t in tokens):
            names.update(m.group(1) for t in tokens if (m := re.match(r"([A-Za-z_][A-Za-z0-9_]*)", t)))
    return frozenset(names)


def plain(word: str) -> str:
    """The word with quotes and backslashes removed (how it reads as an option or a command name)."""
    return re.sub(r"[\\'\"]", "", word)


def classify(
    words: list[str], slots: list[tuple[int, int]], integers: frozenset[str]
) -> tuple[list[str | None], str | None]:
    """Judge the expressions of one simple command.

    `words` are the command's words (expressions replaced by MARK); `slots` gives, per expression,
    (word index, offset of its MARK in that word). Returns, per slot, None (any value), NUMERIC
    (an integer only) or a refusal reason; and a reason that also refuses the expressions of the
    commands piped into this one (when it runs its input as code), else None.
    """
    runs = _runs_code(words)
    if runs is not None:
        return [runs] * len(slots), runs if _reads_stdin(words) else None
    judged = _Command(words, integers)
    return [judged.judge(index, offset) for index, offset in slots], None


def _command_names(words: list[str]) -> list[int]:
    """Indices of the words that name a command: the first after reserved words and assignments,
    the command after `env`/`sudo`/`xargs`/... (their options skipped) and after find's `-exec`."""
    names: list[int] = []
    expect = True
    for index, word in enumerate(words):
        text = plain(word)
        if expect and not names and (word in _RESERVED or _ASSIGNMENT.match(word)):
            continue
        if expect and names and _PREFIX_OPERAND.fullmatch(text):
            continue  # an option, NAME=value or duration of env/sudo/timeout/xargs
        if expect:
            names.append(index)
            expect = _basename(text) in _PREFIX_COMMANDS
        elif text in ("-exec", "-execdir", "-ok", "-okdir"):
            expect = True
    return names


def _basename(text: str) -> str:
    return text.rsplit("/", 1)[-1]


def _runs_code(words: list[str]) -> str | None:
    shells = [i for i, w in enumerate(words) if _basename(plain(w)) in _SHELLS]  # `sudo -u u bash -c`
    for index in sorted(set(_command_names(words)) | set(shells)):
        name = _basename(plain(words[index]))
        options, operands = _split(words[index + 1 :])
        if name in _CODE_COMMANDS:
            return f"in the arguments of '{name}', which runs them as code"
        shell = name in _SHELLS and any(_SHELL_CODE_FLAG.fullmatch(o) for o in options)
        interpreter = re.sub(r"[0-9.]+$", "", name) in _INTERPRETERS and any(
            _INTERPRETER_CODE_FLAG.fullmatch(o) for o in options
        )
        named = index in _command_names(words)
        reads_code = named and (name in _SHELLS or re.sub(r"[0-9.]+$", "", name) in _INTERPRETERS) and not operands
        if shell or interpreter or reads_code:
            return f"in a '{name}' command line, which runs its arguments or input as code"
    return None


def _split(rest: list[str]) -> tuple[list[str], list[str]]:
    """(options before the first operand, operands) of a command's arguments; redirections dropped."""
    options: list[str] = []
    operands: list[str] = []
    target = False
    for word in (plain(w) for w in rest):
        if target or not word:
            target = False
            continue
        if word.startswith(("<", ">", "&>")):
            target = not word.endswith("-") and word.rstrip("<>&|") == ""  # `>` then its file
        elif word.startswith("-") and not operands:
            options.append(word)
        else:
            operands.append(word)
    return options, operands


def _reads_stdin(words: list[str]) -> bool:
    return any(_basename(plain(words[i])) in _SHELLS | _INTERPRETERS | _CODE_COMMANDS for i in _command_names(words))


class _Command:
    def __init__(self, words: list[str], integers: frozenset[str]) -> None:
        self.words = words
        self.integers = integers
        names = _command_names(words)
        self.name_index = names[-1] if names else len(words)
        self.name = plain(words[self.name_index]) if names else ""

    def judge(self, index: int, offset: int) -> str | None:
        word = self.words[index]
        if index < self.name_index or (self.name in _DECLARE and index > self.name_index):
            assignment = _ASSIGNMENT.match(word)
            if assignment is not None:
                return self._assignment(word, assignment, offset)
            if self.name in _DECLARE and index > self.name_index and not plain(word).startswith(("-", "+")):
                return NUMERIC  # the value is a name: a subscript in it is arithmetic
        if index <= self.name_index:
            return None
        return self._argument(index)

    def _assignment(self, word: str, match: re.Match[str], offset: int) -> str | None:
        name = match.group(1)
        if offset < match.end():
            return NUMERIC  # in the name or its subscript
        if name in _CODE_VARIABLES:
            return f"in the value of {name}, which bash expands as code"
        if name in self.integers or self._integer_attribute():
            return NUMERIC
        value = word[match.end() : offset]
        if value.startswith("("):
            element = re.split(r"[ \t\n(]", value)[-1]
            if element.startswith("[") and "]" not in element:
                return NUMERIC  # name=([subscript]=...)
        return None

    def _integer_attribute(self) -> bool:
        if self.name not in _DECLARE:
            return False
        options = [plain(w) for w in self.words[self.name_index + 1 :] if plain(w).startswith("-")]
        return any("i" in option or "n" in option for option in options)

    def _argument(self, index: int) -> str | None:
        name, words = self.name, [plain(w) for w in self.words]
        previous = words[index - 1]
        following = words[index + 1] if index + 1 < len(words) else ""
        if name == "let":
            return NUMERIC
        if name in ("[[", "test", "["):
            if previous in _ARITHMETIC_OPERATORS or following in _ARITHMETIC_OPERATORS or previous in _NAME_TESTS:
                return NUMERIC
            return None
        if name == "read":
            return None if previous in _READ_TEXT_OPTIONS else NUMERIC
        names_a_variable = previous in ("-v", "-p") and name in ("printf", "wait")
        if name == "unset" or names_a_variable or (name == "getopts" and index > self.name_index + 1):
            return NUMERIC
        return None
