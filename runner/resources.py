"""Where pipe's shipped files are: schemas/, pipelines/ and Dockerfile.sandbox.

In an installed wheel they live in `runner/_data/` (see pyproject.toml); in a source checkout or an
editable install they are read from the repository's top level.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

_PACKAGE = Path(__file__).resolve().parent


def data_path(name: str) -> Path:
    """The path of a shipped file or folder: `schemas`, `pipelines` or `Dockerfile.sandbox`.

    Raises FileNotFoundError when neither the wheel's copy nor the checkout's exists.
    """
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent / name):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"pipe's {name} is missing from this installation")


@cache
def load_schema(name: str = "pipeline.schema.json") -> dict[str, Any]:
    """A shipped JSON schema, parsed (cached: the files never change while pipe runs)."""
    with open(data_path("schemas") / name, encoding="utf-8") as handle:
        schema: dict[str, Any] = json.load(handle)
    return schema
