"""An action's `with:` arguments as a frozen dataclass, parsed from the rendered `with:` mapping by
one generic parser.

Each field is one key: `max_turns` is `with: {max-turns: ...}` (underscores become dashes). Its
type hint says how the value is read, whether it came from YAML or from a rendered template (text):

- `str`: text (numbers as written);
- `int`: a whole number, or its text (`"12"`, `"#12"` for an issue);
- `float`: a number, or its text;
- `bool`: a boolean, or `true`/`false` (any case);
- `Duration`: `30s`, `20m`, `1h30m`, or seconds (runner/units.py);
- `list[str]` or `tuple[str, ...]`: a list (items as text), or comma-separated text;
- `Literal["a", "b"]`: one of these words;
- `dict[str, Any]`: a mapping, as it is;
- `Any`: the value as it is (JSON-like data the action reads itself);
- `X | None`: X, or absent.

A field without a default is required. An absent key (or null) takes the default; so does empty
text for a field that is not `str` or `Any` (a template that rendered to nothing). Anything else
raises ArgumentError with a one-line message naming the step and the key.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, Union

from runner.errors import ExitCode, PipeError
from runner.units import parse_duration

A = TypeVar("A")


class ArgumentError(PipeError):
    """A `with:` value that does not fit its key (the step fails, exit 1)."""

    exit_code = ExitCode.STEP_FAILED


@dataclass(frozen=True)
class Duration:
    """A duration argument: `seconds`, and `text` as written in the pipeline (for messages)."""

    seconds: float
    text: str

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class NoArgs:
    """The arguments of an action that takes none."""


class _Unfit(ValueError):
    """A value that does not fit a type; the message says what was expected."""


def key_of(name: str) -> str:
    """The `with:` key of a field name: `max_turns` -> `max-turns`."""
    return name.replace("_", "-")


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise _Unfit("is not text")


def _int(value: Any) -> int:
    if isinstance(value, bool):
        raise _Unfit("is not a whole number")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    try:
        return int(str(value).strip().removeprefix("#"))
    except ValueError:
        raise _Unfit("is not a whole number") from None


def _float(value: Any) -> float:
    if isinstance(value, bool):
        raise _Unfit("is not a number")
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        raise _Unfit("is not a number") from None


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in ("true", "false"):
        raise _Unfit("is not true or false")
    return text == "true"


def _duration(value: Any) -> Duration:
    try:
        return Duration(parse_duration(value), str(value).strip())
    except (TypeError, ValueError):
        raise _Unfit("is not a duration (use e.g. 30s, 20m, 2h)") from None


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, (list, tuple)):
        return [_text(item) for item in value]
    raise _Unfit("is not a list of text")


def _word(words: tuple[str, ...], value: Any) -> str:
    if not isinstance(value, str) or value not in words:
        raise _Unfit("is not one of " + ", ".join(repr(word) for word in words))
    return value


def _mapping(value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return {str(key): item for key, item in value.items()}
    raise _Unfit("is not a mapping")


_READERS: dict[Any, Callable[[Any], Any]] = {
    str: _text,
    int: _int,
    float: _float,
    bool: _bool,
    Duration: _duration,
    list[str]: _strings,
    tuple[str, ...]: lambda value: tuple(_strings(value)),
    dict[str, Any]: _mapping,
}


@dataclass(frozen=True)
class _Field:
    name: str
    key: str
    read: Callable[[Any], Any]
    required: bool
    keeps_empty_text: bool  # "" is a value (str, Any), not "absent"


def _reader(hint: Any) -> tuple[Callable[[Any], Any], bool]:
    """(how to read a value of type `hint`, whether empty text is a value). Raises TypeError
    for a type the parser does not know (a programming error in an Args class)."""
    if hint is Any:
        return (lambda value: value), True
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        inner = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if len(inner) == 1:
            return _reader(inner[0])
    if origin is Literal:
        words = typing.get_args(hint)
        return functools.partial(_word, words), False
    if hint in _READERS:
        return _READERS[hint], hint is str
    raise TypeError(f"no argument reader for {hint!r}")


_KNOWN: dict[type[Any], tuple[_Field, ...]] = {}


def _fields(cls: type[Any]) -> tuple[_Field, ...]:
    """The fields of an Args class with their readers (worked out once per class)."""
    if cls in _KNOWN:
        return _KNOWN[cls]
    hints = typing.get_type_hints(cls)
    found = []
    for spec in dataclasses.fields(cls):
        read, keeps_empty = _reader(hints[spec.name])
        required = spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING
        found.append(_Field(spec.name, key_of(spec.name), read, required, keeps_empty))
    _KNOWN[cls] = tuple(found)
    return _KNOWN[cls]


def keys(cls: type[Any]) -> tuple[str, ...]:
    """The `with:` keys an Args class takes, in field order."""
    return tuple(field.key for field in _fields(cls))


def required_keys(cls: type[Any]) -> tuple[str, ...]:
    """The `with:` keys an Args class requires."""
    return tuple(field.key for field in _fields(cls) if field.required)


def parse_args(cls: type[A], raw: Any, step_id: str, where: str = "with") -> A:
    """`raw` (a step's rendered `with:`, or a mapping inside it at `where`, e.g. `with.checks[0]`)
    as an instance of the frozen dataclass `cls` (see the module docstring). Raises
    ArgumentError, e.g. "step fix: with.max-turns: 'many' is not a whole number", for a value
    that is not a mapping, an unknown key, a missing required one, or a value that does not fit."""
    if not isinstance(raw, Mapping):
        raise ArgumentError(f"step {step_id}: {where}: {_shown(raw)} is not a mapping")
    fields = _fields(cls)
    known = {field.key for field in fields}
    unknown = sorted(str(key) for key in raw if key not in known)
    if unknown:
        listed = ", ".join(sorted(known)) or "none"
        raise ArgumentError(f"step {step_id}: {where}: unknown key {unknown[0]!r} (known: {listed})")
    values: dict[str, Any] = {}
    for field in fields:
        value = raw.get(field.key)
        if value is None or (value == "" and not field.keeps_empty_text and isinstance(value, str)):
            if field.required:
                raise ArgumentError(f"step {step_id}: {where}.{field.key} is required")
            continue
        try:
            values[field.name] = field.read(value)
        except _Unfit as unfit:
            raise ArgumentError(f"step {step_id}: {where}.{field.key}: {_shown(value)} {unfit}") from None
    return cls(**values)


def _shown(value: Any) -> str:
    """A value for a one-line message (its repr, cut at 60 characters)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
