"""Helpers for the plain JSON-like values pipe passes around (inputs, outputs, `with:` arguments)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


def map_strings(value: Any, change: Callable[[str], Any]) -> Any:
    """`value` with `change` applied to every string inside it (lists, tuples and mappings walked
    recursively; mappings come back as dicts, tuples as lists); other values as they are."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, (list, tuple)):
        return [map_strings(item, change) for item in value]
    if isinstance(value, Mapping):
        return {key: map_strings(item, change) for key, item in value.items()}
    return value
