"""Writing small pipelines for tests."""

from __future__ import annotations

import textwrap
from pathlib import Path


def write_pipeline(directory: Path, text: str, name: str = "pipeline.yml") -> Path:
    """Write dedented `text` to `directory/name` and return its path."""
    path = directory / name
    directory.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def containers_left(label: str, value: str) -> list[str]:
    """Ids of containers (running or not) labelled `label=value`."""
    import docker

    client = docker.from_env()
    try:
        listed = client.containers.list(all=True, filters={"label": f"{label}={value}"})
        return [c.id for c in listed if c.id is not None]
    finally:
        client.close()
