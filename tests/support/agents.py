"""The test agent image: the default sandbox image plus the fake agent, pytest, flake8 and mypy."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

AGENTS = Path(__file__).resolve().parent.parent / "agents"


@cache
def agent_image() -> str:
    """Build (once per content) and return the tag of the test agent image."""
    import docker

    from sandbox.docker import DockerBackend

    backend = DockerBackend()
    try:
        base = backend.ensure_image("pipe-sandbox", lambda line: None)
    finally:
        backend.close()
    digest = hashlib.sha256(base.encode())
    for name in ("Dockerfile", "fake_agent.py"):
        digest.update((AGENTS / name).read_bytes())
    tag = f"pipe-test-agent:{digest.hexdigest()[:12]}"
    client = docker.from_env()
    try:
        try:
            client.images.get(tag)
        except docker.errors.ImageNotFound:
            client.images.build(path=str(AGENTS), tag=tag, buildargs={"BASE": base}, rm=True, forcerm=True)
    finally:
        client.close()
    return tag
