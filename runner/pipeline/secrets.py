"""Secret values: declared in a pipeline's `secrets:`, read from the environment or a secret file,
or handed down by a parent run through its child channel."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.errors import UsageError
from runner.pipeline.model import Pipeline

CHANNEL_VARIABLE = "PIPE_CHILD_CHANNEL"
MAX_CHANNEL_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class ChildChannel:
    """What a parent run hands a child run (runner/actions/children.py): secret values by name
    and input values (as text) by name; both empty for a run that is not a child."""

    secrets: dict[str, str] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)


def read_child_channel(environ: Mapping[str, str]) -> ChildChannel:
    """Read (once: the pipe is closed after) the channel whose descriptor is in
    PIPE_CHILD_CHANNEL, a JSON object {"secrets": {...}, "inputs": {...}} of strings. An empty
    ChildChannel when the variable is not set. Raises UsageError when it is unreadable."""
    number = environ.get(CHANNEL_VARIABLE)
    if not number:
        return ChildChannel()
    try:
        with os.fdopen(int(number), "rb") as stream:
            raw = stream.read(MAX_CHANNEL_BYTES + 1)
        data: Any = json.loads(raw) if len(raw) <= MAX_CHANNEL_BYTES else None
    except (OSError, ValueError) as error:
        raise UsageError(f"{CHANNEL_VARIABLE}: cannot read the parent run's channel: {error}") from None
    parts = [data.get(key) if isinstance(data, dict) else None for key in ("secrets", "inputs")]
    if not all(isinstance(part, dict) and all(isinstance(v, str) for v in part.values()) for part in parts):
        raise UsageError(f"{CHANNEL_VARIABLE}: the parent run's channel is not a JSON object of strings")
    return ChildChannel(dict(parts[0] or {}), dict(parts[1] or {}))


def read_secret_file(path: Path) -> dict[str, str]:
    """Parse a `NAME=value` file (blank lines and `#` comments ignored; no quoting rules).

    Raises UsageError naming the file and line of a malformed entry.
    """
    values: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise UsageError(f"{path}: cannot read: {error.strerror}") from None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"{path}:{number}: expected NAME=value")
        values[name.strip()] = value
    return values


def resolve_secrets(
    pipeline: Pipeline, environ: Mapping[str, str], files: list[Path], passed: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The values of the pipeline's declared secrets: secrets `passed` by a parent run, then
    secret files (later ones win), then the environment. Every passed secret is kept, declared
    or not, so the run masks it. Raises UsageError listing the required secrets that have no value."""
    from_files: dict[str, str] = {}
    for path in files:
        from_files.update(read_secret_file(path))
    from_files.update({name: value for name, value in (passed or {}).items() if value})
    values: dict[str, str] = {name: value for name, value in (passed or {}).items() if value}
    missing = []
    for secret in pipeline.secrets:
        value = from_files.get(secret.name, environ.get(secret.name))
        if value:
            values[secret.name] = value
        elif secret.required:
            missing.append(secret.name)
    if missing:
        names = ", ".join(missing)
        raise UsageError(f"{pipeline.path}: missing secret(s) {names}: set them in the environment or a --secret-file")
    return values
