"""Helpers shared by the agent modules for reading CLI output."""

from __future__ import annotations

import json
from typing import Any

from runner.agents.result import json_objects


def json_lines(output: str) -> list[dict[str, Any]]:
    """Every line of `output` that is a JSON object, in order (other lines are skipped)."""
    found = []
    for raw in output.splitlines():
        line = raw.strip()
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict):
                found.append(value)
    return found


def last_object_with(output: str, key: str) -> dict[str, Any] | None:
    """The last top-level JSON object in `output` that has `key`."""
    found: dict[str, Any] | None = next((value for value in reversed(json_objects(output)) if key in value), None)
    return found


def number(value: Any) -> float | None:
    """`value` as a float when it is a number (not a bool), else None."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
