"""Where pipe's shipped files are: schemas/ and pipelines/ (Dockerfile.sandbox is the sandbox
package's own: sandbox/images.py).

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
    """The path of a shipped file or folder: `schemas` or `pipelines`.

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


def shipped_pipelines() -> dict[str, Path]:
    """The pipelines shipped with pipe: name (the file's stem, e.g. `issue-to-pr`) -> path, sorted."""
    folder = data_path("pipelines")
    return {path.stem: path for path in sorted(folder.glob("*.yml"))}


def locate_pipeline(given: str, cwd: Path | None = None) -> tuple[Path, str | None]:
    """Where the pipeline `given` to `pipe run` is, and a note saying which one was taken (or None
    when `given` is simply a file that no shipped pipeline shares a name with).

    A local file wins: `given` as a path, then `given.yml` / `given.yaml` when it has no suffix and
    no folder. Else the shipped pipeline of that name (`issue-to-pr` or `issue-to-pr.yml`). When
    nothing matches, `given` is returned as a path so the caller reports it unreadable.
    """
    base = cwd or Path.cwd()
    candidate = Path(given)
    name = candidate.stem if candidate.suffix in (".yml", ".yaml") else candidate.name
    bare = "/" not in given and "\\" not in given
    shipped = shipped_pipelines().get(name) if bare else None
    local = [candidate]
    if bare and not candidate.suffix:
        local += [Path(f"{given}.yml"), Path(f"{given}.yaml")]
    for path in local:
        if (base / path).is_file():
            if shipped is not None:
                return path, f"using the local file {path}, not the pipeline {name} shipped with pipe"
            return path, None
    if shipped is not None:
        return shipped, f"using the pipeline {name} shipped with pipe ({shipped})"
    return candidate, None
