"""`pipe image build --agent NAME...`: an image FROM the default sandbox image with the named
coding-agent CLIs installed at the versions pipe pins (runner/agents/image.py)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from runner.errors import PipeError, UsageError


def build_agent_image(names: Sequence[str], ca_bundle: Path | None, out: TextIO, extra_tag: str | None = None) -> int:
    """Build (or find) the agent image for `names` (also tagged `extra_tag` when given), print its
    tag and how to use it; returns 0.
    Raises UsageError for an unknown or uninstallable agent or a bad CA bundle, PipeError when the
    build fails, EngineUnavailable without a Docker engine."""
    from runner.agents import image
    from runner.backend import open_backend
    from runner.engine.cabundle import certificates
    from runner.terminal import printable
    from sandbox.images import DEFAULT_IMAGE

    if not names:
        raise UsageError("pipe image build: name at least one agent with --agent NAME")
    ca_pem = b""
    if ca_bundle is not None:
        try:
            ca_pem = certificates(ca_bundle.read_bytes(), str(ca_bundle))
        except OSError as error:
            raise UsageError(f"CA bundle {ca_bundle}: {error.strerror or error}") from None

    def show(line: str) -> None:
        out.write(printable(line) + "\n")

    backend = open_backend("docker")
    try:
        backend.check()
        base = backend.ensure_image(DEFAULT_IMAGE, show)
    finally:
        backend.close()
    try:
        tag = image.build(names, base, ca_pem, show)
    except (KeyError, ValueError) as problem:
        raise UsageError(str(problem).strip("'\"")) from None
    except RuntimeError as problem:
        raise PipeError(f"pipe image build failed:\n{problem}") from None
    if extra_tag:
        import docker

        repository, _, label = extra_tag.partition(":")
        client = docker.from_env()
        try:
            client.images.get(tag).tag(repository, label or "latest")
        except docker.errors.APIError as error:
            raise UsageError(f"--tag {extra_tag}: {error.explanation or error}") from None
        finally:
            client.close()
        tag = extra_tag
    out.write(f"{tag}\nRun the agents with: pipe run PIPELINE --sandbox-image {tag} -i agent={names[0]}\n")
    return 0
