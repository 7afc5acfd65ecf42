"""Where the Docker engine finds pipe's directories when pipe itself runs in a container that talks
to the engine through its socket (act, GitLab's docker executor, a devcontainer, a pod).

The engine resolves bind-mount sources on its own host, so pipe's paths mean something else there.
pipe checks, once per directory, that the engine sees the directory: it writes a marker file with a
random token and reads it back through a throwaway container that is created (never started) with
the directory bind-mounted. When the engine does not see it, pipe maps its paths to the engine's
with, in order: the mapping the person gives (`--host-root` / PIPE_HOST_ROOT, `LOCAL=HOST` pairs
separated by commas), or the mounts of pipe's own container (bind mounts and volumes, read from the
engine); else it stops with an error saying what to do. Bind mounts go through the `Mounts` API,
which refuses a missing source, so no directory is ever created on the engine's host.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import secrets
import tarfile
from pathlib import Path, PurePosixPath
from typing import Any

from sandbox.errors import PathsUnseen, SandboxError, UsageError

PROBE = "/pipe-probe"  # where a probed directory is mounted in the throwaway container
_CONTAINER_ID = re.compile(r"/(?:docker/)?containers/([0-9a-f]{64})/")
HOST_ROOT_HELP = (
    "mount a host directory into pipe's container and give the mapping with --host-root LOCAL=HOST "
    "(or PIPE_HOST_ROOT), or mount it at the same path on both sides"
)


class PathMap:
    """Where the engine finds pipe's paths: identity unless pipe runs where the engine sees its
    files elsewhere. `pairs` are (local prefix, engine prefix); the longest prefix wins."""

    def __init__(self, pairs: tuple[tuple[Path, str], ...] = ()) -> None:
        self.pairs = tuple(sorted(pairs, key=lambda pair: len(pair[0].parts), reverse=True))

    def engine_path(self, local: Path) -> str:
        """`local` as the engine sees it; raises PathsUnseen for a path no pair covers when pairs are set."""
        if not self.pairs:
            return str(local)
        for prefix, engine in self.pairs:
            if local == prefix or prefix in local.parents:
                return str(Path(engine) / local.relative_to(prefix))
        raise PathsUnseen(f"{local} is not under any directory of the host-path mapping; {HOST_ROOT_HELP}")


def bind_mount(source: str, target: str, read_only: bool) -> Any:
    """A bind mount through the engine's `Mounts` API, which refuses a missing `source` rather
    than creating it (as `Binds` does, leaving root-owned directories on the engine's host)."""
    from docker.types import Mount

    return Mount(target, source, type="bind", read_only=read_only)


def parse_host_root(text: str) -> tuple[tuple[Path, str], ...]:
    """`LOCAL=HOST[,LOCAL=HOST...]` as (local prefix, engine prefix) pairs; both absolute.
    Raises UsageError naming the bad part."""
    pairs = []
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        local, equals, host = part.partition("=")
        if not equals or not local.startswith("/") or not host.startswith("/"):
            raise UsageError(f"--host-root / PIPE_HOST_ROOT: {part!r} is not LOCAL=HOST with two absolute paths")
        pairs.append((Path(os.path.normpath(local)), os.path.normpath(host)))
    return tuple(pairs)


def in_container() -> bool:
    """Whether pipe seems to run in a container (then the engine may not see its paths): one the
    engine made (its hostname file is mounted from the engine's container directory), a pod, or a
    podman container. /.dockerenv alone is not trusted: machine images built from containers keep it."""
    if (
        own_container_id() is not None
        or os.environ.get("KUBERNETES_SERVICE_HOST")
        or Path("/run/.containerenv").exists()
    ):
        return True
    with contextlib.suppress(OSError):
        text = Path("/proc/1/cgroup").read_text(errors="replace")
        return any(word in text for word in ("docker", "kubepods", "containerd", "libpod"))
    return False


def own_container_id() -> str | None:
    """The id of the container pipe runs in, read from the mounts the engine gave it (hostname,
    resolv.conf), or None."""
    with contextlib.suppress(OSError):
        found = _CONTAINER_ID.search(Path("/proc/self/mountinfo").read_text(errors="replace"))
        if found:
            return found.group(1)
    return None


def own_mounts(client: Any) -> tuple[tuple[Path, str], ...]:
    """(destination in pipe's container, source on the engine's host) of every bind mount and
    volume of pipe's own container, as the engine reports them; empty when it cannot be found."""
    import docker

    identifier = own_container_id()
    if identifier is None:
        return ()
    try:
        mounts = client.api.inspect_container(identifier).get("Mounts") or []
    except docker.errors.APIError:
        return ()
    return tuple(
        (Path(m["Destination"]), str(m["Source"]))
        for m in mounts
        if m.get("Type") in ("bind", "volume") and m.get("Source") and m.get("Destination")
    )


def engine_sees(client: Any, image: str, directories: list[tuple[Path, str]]) -> bool:
    """Whether the engine finds each local directory at its engine path: a marker written locally
    is read back through a created (never started) container with the engine path mounted
    read-only. A missing engine path is refused by the engine, never created."""
    import docker

    token = secrets.token_hex(16)
    name = f".pipe-probe-{token[:12]}"
    written: list[Path] = []
    container = None
    try:
        for local, _ in directories:
            (local / name).write_text(token)
            written.append(local / name)
        mounts = [bind_mount(engine, f"{PROBE}{index}", True) for index, (_, engine) in enumerate(directories)]
        try:
            container = client.containers.create(
                image, command=["true"], mounts=mounts, network_disabled=True, labels={"pipe.managed": "1"}
            )
        except docker.errors.APIError as error:
            if "does not exist" in str(error):
                return False
            message = f"cannot check what the Docker engine sees of pipe's paths: {error.explanation}"
            raise SandboxError(message) from None
        for index in range(len(directories)):
            if _read(container, str(PurePosixPath(f"{PROBE}{index}") / name)) != token.encode():
                return False
        return True
    finally:
        for path in written:
            with contextlib.suppress(OSError):
                path.unlink()
        if container is not None:
            with contextlib.suppress(Exception):
                container.remove(force=True)


def _read(container: Any, path: str, limit: int = 4096) -> bytes | None:
    """The bytes of the small file `path` in `container` (through the engine's archive API), or None."""
    import docker

    try:
        stream, _ = container.get_archive(path)
        data = b""
        for chunk in stream:
            data += chunk
            if len(data) > 64 * 1024:
                return None
    except docker.errors.APIError:
        return None
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        member = archive.next()
        if member is None or not member.isfile() or member.size > limit:
            return None
        extracted = archive.extractfile(member)
        return extracted.read(limit) if extracted is not None else None
