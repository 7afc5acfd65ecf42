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


SUPPORT = Path(__file__).resolve().parent
REAL_AGENTS = ("claude", "codex", "aider", "gemini", "opencode")
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")


def _host_ca() -> bytes:
    """The CA bundle builds trust (TLS may be intercepted): PIPE_CA_BUNDLE, else the host's own."""
    import os

    from runner.engine.cabundle import certificates

    chosen = Path(os.environ.get("PIPE_CA_BUNDLE") or HOST_CA)
    return certificates(chosen.read_bytes(), str(chosen)) if chosen.is_file() else b""


@cache
def real_agent_image() -> str:
    """The image with the real claude, codex and aider CLIs from their registries (built the way
    `pipe image build --agent ...` builds it, once per content), plus the fake model server and the
    wrappers that start it inside the sandbox and point each CLI at it (tests/support/fake_model*)."""
    import docker

    from runner.agents import image
    from sandbox.docker import DockerBackend

    backend = DockerBackend()
    try:
        base = backend.ensure_image("pipe-sandbox", lambda line: None)
    finally:
        backend.close()
    agents = image.build(REAL_AGENTS, base, _host_ca(), lambda line: None)
    files = {
        "fake_model.py": (SUPPORT / "fake_model.py").read_bytes(),
        "wrapper": (SUPPORT / "fake_model_wrapper.sh").read_bytes(),
    }
    links = " && ".join(f"rm -f /usr/local/bin/{name} && cp /tmp/wrapper /usr/local/bin/{name}" for name in REAL_AGENTS)
    text = (
        f"FROM {agents}\nUSER root\nCOPY fake_model.py /usr/local/lib/pipe-test/fake_model.py\n"
        f"COPY wrapper /tmp/wrapper\nRUN {links} && chmod 755 /usr/local/bin/* && rm /tmp/wrapper\nUSER pipe\n"
    )
    digest = hashlib.sha256((agents + text).encode())
    for data in files.values():
        digest.update(data)
    tag = f"pipe-test-real-agents:{digest.hexdigest()[:12]}"
    client = docker.from_env()
    try:
        try:
            client.images.get(tag)
        except docker.errors.ImageNotFound:
            context = image.context(text, b"")
            import io
            import tarfile

            buffer = io.BytesIO(context)
            with tarfile.open(fileobj=buffer, mode="a") as archive:
                for name, data in files.items():
                    info = tarfile.TarInfo(name)
                    info.size, info.mode = len(data), 0o755
                    archive.addfile(info, io.BytesIO(data))
            client.images.build(fileobj=io.BytesIO(buffer.getvalue()), custom_context=True, tag=tag, rm=True)
    finally:
        client.close()
    return tag
