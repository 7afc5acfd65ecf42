"""Reading a coding agent's final JSON out of what its CLI printed, and checking it against a schema.

CLIs wrap the model's answer: `claude -p --output-format json` prints {"type": "result", "result":
TEXT}; `codex exec --json` prints JSON lines whose last `agent_message` item holds TEXT. The answer
is the last JSON object in TEXT (or in the raw output when there is no envelope).
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema


def json_objects(text: str) -> list[dict[str, Any]]:
    """Every top-level JSON object in `text`, in order (text between them is skipped)."""
    decoder = json.JSONDecoder()
    found: list[dict[str, Any]] = []
    index = text.find("{")
    while index != -1:
        try:
            value, end = decoder.raw_decode(text, index)
        except json.JSONDecodeError:
            index = text.find("{", index + 1)
            continue
        if isinstance(value, dict):
            found.append(value)
        index = text.find("{", end)
    return found


def _unwrap(envelope: dict[str, Any]) -> str | None:
    if envelope.get("type") == "result" and isinstance(envelope.get("result"), str):
        return str(envelope["result"])  # Claude Code
    item = envelope.get("item")
    if isinstance(item, dict) and item.get("type") == "agent_message" and isinstance(item.get("text"), str):
        return str(item["text"])  # Codex
    return None


def final_result(output: str) -> dict[str, Any] | None:
    """The agent's final JSON object, unwrapped from a known CLI envelope; None when there is none."""
    objects = json_objects(output)
    for candidate in reversed(objects):
        inner = _unwrap(candidate)
        if inner is not None:
            found = json_objects(inner)
            return found[-1] if found else None
    return objects[-1] if objects else None


def _where(path: Any) -> str:
    text = "$"
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def schema_errors(schema: dict[str, Any], result: Any) -> list[str]:
    """Every way `result` breaks `schema`, as `$.path: message (schema: keyword.path)`."""
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(result), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    return [
        f"{_where(error.absolute_path)}: {error.message} (schema: {'.'.join(map(str, error.schema_path))})"
        for error in errors
    ]
