"""Safe YAML loading that keeps source positions.

Only the YAML core types are built (no Python or custom tags); duplicate keys are errors; mapping
keys stay strings (so `on:` is never the boolean true); only `true`/`false` are booleans (YAML 1.2);
aliases, expanded size, nesting depth, integer length and file size are capped so a billion-laughs
or deeply nested document costs nothing; control characters YAML forbids are problems with a position.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MAX_FILE_BYTES = 1024 * 1024
MAX_ALIASES = 100
MAX_NODES = 50_000
MAX_DEPTH = 64
MAX_INT_DIGITS = 100

Path = tuple[str | int, ...]

_CORE = "tag:yaml.org,2002:"
_SCALAR_TAGS = {f"{_CORE}{name}" for name in ("str", "int", "float", "bool", "null", "timestamp")}


@dataclass(frozen=True)
class Mark:
    """A 1-based position in a source file."""

    line: int
    column: int


@dataclass(frozen=True)
class Problem:
    """A problem found while loading, at `mark`, concerning key `path` (possibly empty)."""

    mark: Mark
    path: Path
    message: str


@dataclass
class Document:
    """Loaded data with the position of every value (`value_marks`) and mapping key (`key_marks`)."""

    data: Any
    value_marks: dict[Path, Mark] = field(default_factory=dict)
    key_marks: dict[Path, Mark] = field(default_factory=dict)

    def mark(self, path: Path, *, key: bool = False) -> Mark:
        """The position of `path` (its key if `key`), else of its nearest ancestor that has one."""
        probe = tuple(path)
        while True:
            table = self.key_marks if key else self.value_marks
            if probe in table:
                return table[probe]
            if probe in self.value_marks:
                return self.value_marks[probe]
            if not probe:
                return Mark(1, 1)
            probe = probe[:-1]


class LoadError(Exception):
    """The text is not loadable YAML; `problems` says where and why."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(p.message for p in problems))


class _Composer(yaml.SafeLoader):
    """A SafeLoader that refuses documents with too many aliases while composing."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.alias_count = 0
        self.depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(yaml.AliasEvent):
            self.alias_count += 1
            if self.alias_count > MAX_ALIASES:
                event = self.peek_event()  # type: ignore[no-untyped-call]
                raise LoadError([Problem(_mark(event.start_mark), (), f"more than {MAX_ALIASES} aliases")])
        if self.depth >= MAX_DEPTH:
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise LoadError([Problem(_mark(event.start_mark), (), f"nested more than {MAX_DEPTH} levels deep")])
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _mark(mark: Any) -> Mark:
    return Mark(mark.line + 1, mark.column + 1)


def _check_size(root: Node) -> None:
    """Refuse a node graph whose expansion (aliases counted at full size) exceeds MAX_NODES."""
    sizes: dict[int, int] = {}
    visiting: set[int] = set()

    def size(node: Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in visiting:
            raise LoadError([Problem(_mark(node.start_mark), (), "recursive alias")])
        visiting.add(key)
        total = 1
        if isinstance(node, SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        visiting.discard(key)
        if total > MAX_NODES:
            raise LoadError([Problem(_mark(node.start_mark), (), f"document expands to more than {MAX_NODES} nodes")])
        sizes[key] = total
        return total

    size(root)


def _display_tag(tag: str) -> str:
    return "!!" + tag[len(_CORE) :] if tag.startswith(_CORE) else tag


class _Builder:
    """Turns composed nodes into plain data, recording marks and collecting problems."""

    def __init__(self, loader: _Composer) -> None:
        self.loader = loader
        self.doc = Document(data=None)
        self.problems: list[Problem] = []

    def build(self, node: Node, path: Path) -> Any:
        self.doc.value_marks.setdefault(path, _mark(node.start_mark))
        if isinstance(node, MappingNode):
            return self._mapping(node, path)
        if isinstance(node, SequenceNode):
            if node.tag != f"{_CORE}seq":
                self._tag_problem(node, path)
            return [self.build(child, path + (i,)) for i, child in enumerate(node.value)]
        assert isinstance(node, ScalarNode)
        return self._scalar(node, path)

    def _tag_problem(self, node: Node, path: Path) -> None:
        self.problems.append(Problem(_mark(node.start_mark), path, f"tag '{_display_tag(node.tag)}' is not allowed"))

    def _mapping(self, node: MappingNode, path: Path) -> dict[str, Any]:
        if node.tag != f"{_CORE}map":
            self._tag_problem(node, path)
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == f"{_CORE}merge":
                self.problems.append(Problem(_mark(key_node.start_mark), path, "merge keys ('<<') are not supported"))
                continue
            if not isinstance(key_node, ScalarNode):
                self.problems.append(Problem(_mark(key_node.start_mark), path, "a mapping key must be a string"))
                continue
            key = key_node.value
            child = path + (key,)
            if key in result:
                first = self.doc.key_marks[child]
                self.problems.append(
                    Problem(
                        _mark(key_node.start_mark),
                        child,
                        f"duplicate key '{key}' (first defined at line {first.line})",
                    )
                )
                continue
            self.doc.key_marks[child] = _mark(key_node.start_mark)
            result[key] = self.build(value_node, child)
        return result

    def _scalar(self, node: ScalarNode, path: Path) -> Any:
        tag = node.tag
        if tag not in _SCALAR_TAGS:
            self._tag_problem(node, path)
            return node.value
        if tag == f"{_CORE}bool":
            # YAML 1.2 core schema: only true/false are booleans; yes/no/on/off stay strings.
            if node.value.lower() in ("true", "false"):
                return node.value.lower() == "true"
            return node.value
        if tag in (f"{_CORE}str", f"{_CORE}timestamp"):
            return node.value
        digits = sum(char.isdigit() for char in node.value)
        if tag == f"{_CORE}int" and digits > MAX_INT_DIGITS:
            message = f"integer has {digits} digits; the limit is {MAX_INT_DIGITS}"
            self.problems.append(Problem(_mark(node.start_mark), path, message))
            return 0
        return self.loader.construct_object(node, deep=True)


def load(text: str) -> Document:
    """Load one YAML document from `text`, returning its data with marks.

    Raises LoadError with every problem found (syntax errors stop at the first).
    An empty document loads as None.
    """
    try:
        loader = _Composer(text)
    except yaml.reader.ReaderError as error:
        raise LoadError([_reader_problem(text, error)]) from None
    try:
        try:
            root = loader.get_single_node()
        except yaml.reader.ReaderError as error:
            raise LoadError([_reader_problem(text, error)]) from None
        except yaml.MarkedYAMLError as error:
            mark = error.problem_mark or error.context_mark
            position = _mark(mark) if mark is not None else Mark(1, 1)
            message = error.problem or error.context or "invalid YAML"
            raise LoadError([Problem(position, (), f"invalid YAML: {message}")]) from None
        except yaml.YAMLError as error:
            raise LoadError([Problem(Mark(1, 1), (), f"invalid YAML: {error}")]) from None
        if root is None:
            return Document(data=None)
        _check_size(root)
        builder = _Builder(loader)
        builder.doc.data = builder.build(root, ())
        if builder.problems:
            raise LoadError(builder.problems)
        return builder.doc
    finally:
        loader.dispose()


def _reader_problem(text: str, error: yaml.reader.ReaderError) -> Problem:
    """A character YAML does not allow in a document (ESC, NUL, other controls), with its position."""
    before = text[: error.position]
    line = before.count("\n") + 1
    column = error.position - (before.rfind("\n") + 1) + 1
    character = chr(error.character) if isinstance(error.character, int) else str(error.character)
    message = f"invalid YAML: control character {character!r} is not allowed (write it as an escape in double quotes)"
    return Problem(Mark(line, column), (), message)
