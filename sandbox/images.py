"""The default sandbox image: built from Dockerfile.sandbox with sandbox/agents/ as its context,
tagged by a hash of both (and of PIPE_SANDBOX_BASE)."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sandbox.errors import SandboxError

DEFAULT_IMAGE = "pipe-sandbox"
_PACKAGE = Path(__file__).resolve().parent
AGENTS = _PACKAGE / "agents"


def dockerfile_path() -> Path:
    """Where Dockerfile.sandbox is: `sandbox/_data/` in an installed wheel (pyproject.toml copies it
    there), else the top level of the source checkout. Raises FileNotFoundError when neither has it."""
    for candidate in (_PACKAGE / "_data" / "Dockerfile.sandbox", _PACKAGE.parent / "Dockerfile.sandbox"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("pipe's Dockerfile.sandbox is missing from this installation")


def dockerfile_bytes() -> bytes:
    """The shipped Dockerfile.sandbox."""
    return dockerfile_path().read_bytes()


def _context_files() -> list[tuple[str, bytes, int]]:
    files = [("Dockerfile", dockerfile_bytes(), 0o644)]
    for path in sorted(AGENTS.iterdir()):
        if path.is_file() and not path.name.startswith((".", "_")):
            files.append((path.name, path.read_bytes(), 0o755))
    return files


def build_context() -> bytes:
    """The build context as an uncompressed tar: Dockerfile and the shipped agents."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data, mode in _context_files():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def default_image_tag() -> str:
    """`pipe-sandbox:<12 hex>`: changes whenever the Dockerfile, an agent or PIPE_SANDBOX_BASE does."""
    digest = hashlib.sha256()
    for name, data, _ in _context_files():
        digest.update(name.encode() + b"\0" + data)
    digest.update(os.environ.get("PIPE_SANDBOX_BASE", "").encode())
    return f"{DEFAULT_IMAGE}:{digest.hexdigest()[:12]}"


def build_image(
    client: Any, context: bytes, tag: str, kind: str, progress: Callable[[str], None], base: str | None = None
) -> None:
    """Build `tag` from the uncompressed tar build `context` with the engine's builder, labelled
    `pipe.image=KIND`, the build argument BASE set when `base` is; each line of the build's output
    goes to `progress`. Raises SandboxError with the builder's error when it fails."""
    stream = client.api.build(
        fileobj=io.BytesIO(context),
        custom_context=True,
        tag=tag,
        rm=True,
        forcerm=True,
        decode=True,
        buildargs={"BASE": base} if base else None,
        labels={"pipe.image": kind},
    )
    for chunk in stream:
        if "error" in chunk:
            raise SandboxError(f"building {tag} failed: {chunk['error'].strip()}")
        line = chunk.get("stream", "").rstrip()
        if line:
            progress(line)
