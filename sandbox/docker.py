"""The Docker backend: hardened containers, started ahead of time and handed their script late.

Each container runs a small POSIX-sh bootstrap (BOOTSTRAP) that blocks on the `go` FIFO of its
control channel (sandbox/channel.py), mounted read-only at /run/pipe. `execute` writes the payload
(script, environment, files) into that FIFO as a tar stream, which the bootstrap unpacks into the
container's private tmpfs /pipe, then follows the `log` FIFO and waits for the `result` FIFO. So
neither container start nor teardown is on the step's critical path, and nothing a step can write
makes the host read anything but those FIFOs; finished containers are removed in the background.

Every value of the step's environment, early or late (credentials among them), reaches the
container's processes through the channel, never through the container's create-time
configuration (`docker inspect` shows only PIPE_WORKDIR, PIPE_OUTPUT, HOME and the CA variables).

Hardening (docs/architecture.md, Principles 4): a non-root uid, every capability dropped, no-new-privileges,
memory (no extra swap) / CPU / pids limits, docker-init as PID 1, no Docker socket, network `none`
or `bridge` or a run's egress network (sandbox/network.py), optionally a read-only root filesystem with a tmpfs /tmp.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sandbox.base import SandboxSpec
from sandbox.channel import CHANNEL, PRIVATE, Channel
from sandbox.errors import EngineUnavailable, PathsUnseen, SandboxError
from sandbox.hostpaths import (
    HOST_ROOT_HELP,
    PathMap,
    bind_mount,
    engine_sees,
    in_container,
    own_mounts,
    parse_host_root,
)
from sandbox.images import DEFAULT_IMAGE, build_context, build_image, default_image_tag
from sandbox.prepared import DockerPrepared, discard_channel, remove_container

CA_BUNDLE_PATH = "/etc/pipe/ca-bundle.crt"
CA_VARIABLES = (
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "PIP_CERT",
    "GIT_SSL_CAINFO",
    "CURL_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
)
FAST_RUNTIMES = ("crun",)  # what `runtime: auto` picks first when the engine offers it
PRIVATE_SIZE = 64 * 1024 * 1024  # bytes of the private tmpfs /pipe (script, files, $PIPE_OUTPUT)

BOOTSTRAP = r"""
tar -x -f /run/pipe/go -C /pipe 2>/dev/null || exit 111
exec > /run/pipe/log 2>&1 < /dev/null
if [ -f /pipe/env ]; then . /pipe/env; fi
rm -f /pipe/env
if ! cd "$PIPE_WORKDIR" 2>/dev/null; then
  echo "pipe: working directory $PIPE_WORKDIR does not exist"
  code=112
elif command -v bash >/dev/null 2>&1; then
  bash --noprofile --norc -eo pipefail /pipe/script; code=$?
else
  sh -e /pipe/script; code=$?
fi
exec > /dev/null 2>&1
{ echo "$code"; cat /pipe/output 2>/dev/null; } > /run/pipe/result
exit "$code"
"""

ENGINE_HELP = (
    "start one (for example `sudo dockerd &`, or `sudo systemctl start docker`) "
    "or point DOCKER_HOST at a running engine"
)


def _engine_error(error: Exception) -> EngineUnavailable:
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    return EngineUnavailable(f"the Docker engine at {host} does not answer ({type(error).__name__}); {ENGINE_HELP}")


class DockerBackend:
    """Runs sandboxes as Docker containers through the docker SDK (docker-py).

    `client` is a `docker.DockerClient`; created from the environment (DOCKER_HOST etc.) when None.
    `host_root` maps pipe's paths to the engine's (`LOCAL=HOST` pairs, default PIPE_HOST_ROOT; see
    sandbox/hostpaths.py); raises UsageError when it is malformed.
    """

    name = "docker"

    def __init__(self, client: Any | None = None, host_root: str | None = None) -> None:
        self._client = client
        self._removals = ThreadPoolExecutor(max_workers=2, thread_name_prefix="pipe-remove")
        self._runtimes: tuple[frozenset[str], str] | None = None
        self._broken: set[str] = set()  # runtimes `auto` picked that failed to start a container
        self._lock = threading.Lock()
        given = parse_host_root(os.environ.get("PIPE_HOST_ROOT", "") if host_root is None else host_root)
        self._given_paths = bool(given)
        self.paths = PathMap(given)
        self._check_paths = bool(given) or in_container()
        self._seen: set[Path] = set()
        self._own_mounts_tried = False
        self._paths_lock = threading.Lock()

    @property
    def client(self) -> Any:
        if self._client is None:
            import docker

            try:
                self._client = docker.from_env(timeout=120)
            except docker.errors.DockerException as error:
                raise _engine_error(error) from None
        return self._client

    def check(self) -> None:
        """Raise EngineUnavailable (exit 4) unless the engine answers a ping."""
        _probe_unix_socket(os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock"))
        try:
            self.client.ping()
        except EngineUnavailable:
            raise
        except Exception as error:
            raise _engine_error(error) from None

    def runtimes(self) -> tuple[frozenset[str], str]:
        """(the runtimes the engine offers, its default runtime), asked once."""
        with self._lock:
            if self._runtimes is None:
                info = self.client.info()
                default = str(info.get("DefaultRuntime") or "runc")
                self._runtimes = frozenset(info.get("Runtimes") or {}) | {default}, default
            return self._runtimes

    def resolve_runtime(self, requested: str) -> str:
        """`auto`: crun when the engine offers it (and it has not failed to start a container),
        else the engine's default; any other name must be one the engine offers, else SandboxError."""
        offered, default = self.runtimes()
        if requested == "auto":
            return next((name for name in FAST_RUNTIMES if name in offered and name not in self._broken), default)
        if requested not in offered:
            raise SandboxError(
                f"sandbox.runtime: the Docker engine does not offer runtime {requested!r} "
                f"(it offers {', '.join(sorted(offered))}); install it and register it under "
                "`runtimes` in the engine's daemon.json, or use `runtime: auto`"
            )
        return requested

    def ensure_image(self, image: str, progress: Callable[[str], None]) -> str:
        """The image to run: `pipe-sandbox` means the default image, built from Dockerfile.sandbox
        and tagged by its hash when missing; another missing image is pulled.
        Raises SandboxError when it can be neither found, built nor pulled."""
        import docker

        if image == DEFAULT_IMAGE:
            tag = default_image_tag()
            try:
                found = self.client.images.get(tag)
            except docker.errors.ImageNotFound:
                self._build_default(tag, progress)
                found = self.client.images.get(tag)
            if f"{DEFAULT_IMAGE}:latest" not in found.tags:
                found.tag(DEFAULT_IMAGE, "latest")  # so images can be built FROM pipe-sandbox
            return tag
        try:
            self.client.images.get(image)
        except docker.errors.ImageNotFound:
            progress(f"pulling {image}")
            try:
                self.client.images.pull(image)
            except docker.errors.APIError as error:
                raise SandboxError(
                    f"image {image} is not available and cannot be pulled: {error.explanation}"
                ) from None
        return image

    def _build_default(self, tag: str, progress: Callable[[str], None]) -> None:
        base = os.environ.get("PIPE_SANDBOX_BASE")
        progress(f"building the sandbox image {tag} from Dockerfile.sandbox" + (f" (base {base})" if base else ""))
        build_image(self.client, build_context(), tag, "sandbox", progress, base)

    def prepare(self, spec: SandboxSpec) -> DockerPrepared:
        """Create and start a container for `spec`, blocked until `execute` hands it a payload.
        Raises SandboxError when the engine refuses to create it."""
        import docker

        runtime = self.resolve_runtime(spec.runtime)
        spec.control_dir.parent.mkdir(parents=True, exist_ok=True)
        self.ensure_seen(spec.image, [spec.workspace, spec.control_dir.parent])
        channel = Channel(spec.control_dir.parent, spec.control_dir.name, spec.uid, spec.gid)
        env = {"PIPE_WORKDIR": spec.workdir, "HOME": "/tmp", "PIPE_OUTPUT": f"{PRIVATE}/output"}
        try:
            binds = [(spec.workspace, "/workspace", False), (channel.directory, CHANNEL, True)]
            binds += [(Path(host), container, False) for host, container in spec.mounts]
            if spec.ca_bundle is not None:
                binds.append((spec.ca_bundle, CA_BUNDLE_PATH, True))
                env.update({name: CA_BUNDLE_PATH for name in CA_VARIABLES})
            # `Mounts`, not `Binds`: the engine refuses a missing source instead of creating it.
            mounts = [
                bind_mount(self.paths.engine_path(local), target, read_only) for local, target, read_only in binds
            ]
        except BaseException:
            discard_channel(channel)
            raise
        tmpfs = {PRIVATE: f"rw,nosuid,nodev,size={PRIVATE_SIZE},mode=1777"}
        if spec.read_only:
            tmpfs["/tmp"] = "rw,nosuid,nodev,size=268435456"
        api = self.client.api
        try:
            host_config = api.create_host_config(
                mounts=mounts,
                tmpfs=tmpfs,
                network_mode=spec.network,
                dns=list(spec.dns) or None,  # on an egress network: the proxy, which answers no DNS
                cap_drop=["ALL"],
                security_opt=["no-new-privileges:true"],
                mem_limit=spec.memory,
                memswap_limit=spec.memory,
                nano_cpus=int(spec.cpus * 1e9),
                pids_limit=spec.pids,
                init=True,
                read_only=spec.read_only,
                runtime=runtime,
            )
            # The low-level call: the models' `containers.create` inspects the new container once
            # more, a round trip to the engine per step for nothing (the inspect after start is kept).
            created = api.create_container(
                spec.image,
                command=["sh", "-c", BOOTSTRAP],
                user=f"{spec.uid}:{spec.gid}",
                environment=env,
                working_dir="/",
                labels={"pipe.managed": "1", **spec.labels},
                detach=True,
                host_config=host_config,
            )
            container = self.client.containers.prepare_model({"Id": created["Id"]})
        except docker.errors.APIError as error:
            discard_channel(channel)
            raise SandboxError(f"cannot create a sandbox from {spec.image}: {error.explanation}") from None
        except BaseException:
            discard_channel(channel)
            raise
        prepared = DockerPrepared(self, container, channel, spec.env, spec.max_log, runtime)
        try:
            container.start()
            container.reload()  # its init's pid, to see it end without asking the engine
            prepared.watch_exit(int(container.attrs["State"].get("Pid") or 0))
        except docker.errors.APIError as error:
            prepared.discard(wait=True)
            if spec.runtime == "auto" and runtime in FAST_RUNTIMES and "OCI runtime" in str(error):
                self._broken.add(runtime)  # registered but unusable here: `auto` falls back
                return self.prepare(spec)
            raise SandboxError(
                f"cannot start a sandbox from {spec.image} on runtime {runtime}: {error.explanation}"
            ) from None
        except BaseException:
            prepared.discard(wait=True)
            raise
        return prepared

    def ensure_seen(self, image: str, directories: list[Path]) -> None:
        """Make sure the engine sees each of `directories` (when pipe runs in a container or a
        mapping was given): through the given mapping, else through the mounts of pipe's own
        container. Raises PathsUnseen saying what to do when neither works."""
        if not self._check_paths:
            return
        with self._paths_lock:
            todo = [directory for directory in directories if directory not in self._seen]
            if not todo:
                return
            if not engine_sees(self.client, image, [(d, self.paths.engine_path(d)) for d in todo]):
                self.paths = self._paths_from_own_mounts(image, todo)
            self._seen.update(todo)

    def _paths_from_own_mounts(self, image: str, directories: list[Path]) -> PathMap:
        unseen = PathsUnseen(
            f"the Docker engine does not see {directories[0]}"
            + (" through the --host-root mapping" if self._given_paths else " (pipe runs in a container)")
            + f"; {HOST_ROOT_HELP}"
        )
        if self._given_paths or self._own_mounts_tried:
            raise unseen
        self._own_mounts_tried = True
        candidate = PathMap(own_mounts(self.client))
        try:
            pairs = [(directory, candidate.engine_path(directory)) for directory in directories]
        except PathsUnseen:
            raise unseen from None
        if not candidate.pairs or not engine_sees(self.client, image, pairs):
            raise unseen
        return candidate

    def remove_later(self, container: Any, channel: Channel) -> None:
        """Remove `container` (killing it), then its control channel, off the critical path."""
        self._removals.submit(remove_container, container, channel)

    def reap(self, labels: Mapping[str, str]) -> int:
        """Remove every container (running or not) carrying all `labels` (egress proxies among
        them), then the egress networks carrying them."""
        from sandbox.network import reap_networks

        filters = {"label": [f"{key}={value}" for key, value in labels.items()]}
        found = self.client.containers.list(all=True, filters=filters)
        for container in found:
            remove_container(container)
        reap_networks(self.client, labels)
        return len(found)

    def close(self) -> None:
        """Wait for background removals, then close the client."""
        self._removals.shutdown(wait=True)
        if self._client is not None:
            self._client.close()


def _probe_unix_socket(host: str) -> None:
    """For a unix:// engine address, connect once ourselves: a missing or dead socket is reported
    at once (and without the socket docker-py leaks when its connect fails)."""
    if not host.startswith("unix://"):
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(5)
        probe.connect(host[len("unix://") :])
    except OSError as error:
        raise _engine_error(error) from None
    finally:
        probe.close()
