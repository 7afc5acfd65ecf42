"""Input values: conversion of command-line text to the declared type, defaults and checks."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from runner.errors import UsageError
from runner.pipeline.model import Pipeline

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def convert(value: Any, kind: str) -> Any:
    """Convert `value` (text from the command line, or a YAML value) to input type `kind`.

    Raises ValueError naming the value and the type.
    """
    if kind == "string":
        if isinstance(value, (dict, list)):
            raise ValueError(f"{value!r} is not a string")
        if isinstance(value, bool):
            return "true" if value else "false"
        return value if isinstance(value, str) else str(value)
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise ValueError(f"{value!r} is not a boolean")
    if kind == "integer":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and re.fullmatch(r"[+-]?[0-9]+", value.strip()):
            return int(value)
        raise ValueError(f"{value!r} is not an integer")
    if kind == "number":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return float(value) if re.search(r"[.eE]", value) else int(value)
            except ValueError:
                pass
        raise ValueError(f"{value!r} is not a number")
    raise ValueError(f"unknown input type {kind!r}")


def parse_assignments(pairs: list[str]) -> dict[str, str]:
    """`["issue=12", "repo=a/b"]` -> `{"issue": "12", "repo": "a/b"}`; raises UsageError on `x` without `=`."""
    result: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--input {pair!r}: expected KEY=VALUE")
        result[key] = value
    return result


def resolve_inputs(pipeline: Pipeline, given: Mapping[str, Any]) -> dict[str, Any]:
    """The run's input values: `given` converted to each input's type, defaults filled in.

    Raises UsageError listing every unknown, missing, ill-typed or disallowed input.
    """
    declared = {i.name: i for i in pipeline.inputs}
    problems = [f"{pipeline.path}: unknown input '{name}'" for name in given if name not in declared]
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        if name in given:
            try:
                value = convert(given[name], spec.type)
            except ValueError as error:
                problems.append(f"{pipeline.path}: input '{name}': {error}")
                continue
        elif spec.default is not None:
            value = convert(spec.default, spec.type)
        elif spec.required:
            problems.append(f"{pipeline.path}: input '{name}' is required")
            continue
        else:
            value = None
        if spec.enum is not None and value is not None and value not in spec.enum:
            allowed = ", ".join(repr(v) for v in spec.enum)
            problems.append(f"{pipeline.path}: input '{name}': {value!r} is not one of {allowed}")
            continue
        values[name] = value
    if problems:
        raise UsageError("\n".join(problems))
    return values
