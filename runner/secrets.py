"""Secret values: declared in a pipeline's `secrets:`, read from the environment or a secret file."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from runner.errors import UsageError
from runner.model import Pipeline


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


def resolve_secrets(pipeline: Pipeline, environ: Mapping[str, str], files: list[Path]) -> dict[str, str]:
    """The values of the pipeline's declared secrets: secret files (later ones win) over the
    environment. Raises UsageError listing the required secrets that have no value."""
    from_files: dict[str, str] = {}
    for path in files:
        from_files.update(read_secret_file(path))
    values: dict[str, str] = {}
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
