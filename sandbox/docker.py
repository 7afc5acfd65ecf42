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

Hardening (DESIGN.md principle 4): a non-root uid, every capability dropped, no-new-privileges,
memory (no extra swap) / CPU / pids limits, docker-init as PID 1, no Docker socket, network `none`
or `bridge` or a run's egress network (sandbox/network.py), optionally a read-only root filesystem with a tmpfs /tmp.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import socket
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from runner.errors import EngineUnavailable, PipeError
from sandbox.base import ExecResult, ExecStatus, Payload, SandboxSpec
from sandbox.channel import CHANNEL, PRIVATE, Channel, ChannelError, payload_archive
from sandbox.hostpaths import (
    HOST_ROOT_HELP,
    PathMap,
    PathsUnseen,
    bind_mount,
    engine_sees,
    in_container,
    own_mounts,
    parse_host_root,
)
from sandbox.images import DEFAULT_IMAGE, build_context, build_image, default_image_tag

CA_BUNDLE_PATH = "/etc/pipe/ca-bundle.crt"
CA_VARIABLES = (
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "PIP_CERT",
    "GIT_SSL_CAINFO",
    "CURL_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
)
START_DEADLINE = 60.0  # seconds a prepared container may take to reach its FIFO
EXIT_GRACE = 0.25  # seconds a container that reported its result may take to end by itself
RELEASE_POLL = 0.005  # seconds between looks at a `go` FIFO no container reads yet
FAST_RUNTIMES = ("crun",)  # what `runtime: auto` picks first when the engine offers it
MAX_OUTPUT_FILE = 1024 * 1024  # bytes of $PIPE_OUTPUT read
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
        else the engine's default; any other name must be one the engine offers, else PipeError."""
        offered, default = self.runtimes()
        if requested == "auto":
            return next((name for name in FAST_RUNTIMES if name in offered and name not in self._broken), default)
        if requested not in offered:
            raise PipeError(
                f"sandbox.runtime: the Docker engine does not offer runtime {requested!r} "
                f"(it offers {', '.join(sorted(offered))}); install it and register it under "
                "`runtimes` in the engine's daemon.json, or use `runtime: auto`"
            )
        return requested

    def ensure_image(self, image: str, progress: Callable[[str], None]) -> str:
        """The image to run: `pipe-sandbox` means the default image, built from Dockerfile.sandbox
        and tagged by its hash when missing; another missing image is pulled.
        Raises PipeError when it can be neither found, built nor pulled."""
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
                raise PipeError(f"image {image} is not available and cannot be pulled: {error.explanation}") from None
        return image

    def _build_default(self, tag: str, progress: Callable[[str], None]) -> None:
        base = os.environ.get("PIPE_SANDBOX_BASE")
        progress(f"building the sandbox image {tag} from Dockerfile.sandbox" + (f" (base {base})" if base else ""))
        build_image(self.client, build_context(), tag, "sandbox", progress, base)

    def prepare(self, spec: SandboxSpec) -> DockerPrepared:
        """Create and start a container for `spec`, blocked until `execute` hands it a payload.
        Raises PipeError when the engine refuses to create it."""
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
            _discard_channel(channel)
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
            _discard_channel(channel)
            raise PipeError(f"cannot create a sandbox from {spec.image}: {error.explanation}") from None
        except BaseException:
            _discard_channel(channel)
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
            raise PipeError(
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
        except PipeError:
            raise unseen from None
        if not candidate.pairs or not engine_sees(self.client, image, pairs):
            raise unseen
        return candidate

    def remove_later(self, container: Any, channel: Channel) -> None:
        """Remove `container` (killing it), then its control channel, off the critical path."""
        self._removals.submit(_remove, container, channel)

    def reap(self, labels: Mapping[str, str]) -> int:
        """Remove every container (running or not) carrying all `labels` (egress proxies among
        them), then the egress networks carrying them."""
        from sandbox.network import reap_networks

        filters = {"label": [f"{key}={value}" for key, value in labels.items()]}
        found = self.client.containers.list(all=True, filters=filters)
        for container in found:
            _remove(container)
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


def _pidfd(pid: int, container_id: str) -> int | None:
    """A pidfd for process `pid` when it is visible here and belongs to the container (pipe and
    the engine share a PID namespace), else None."""
    if pid <= 0 or not hasattr(os, "pidfd_open"):
        return None
    try:
        descriptor = os.pidfd_open(pid)
    except OSError:
        return None
    try:
        with open(f"/proc/{pid}/cgroup", encoding="ascii", errors="replace") as file:
            belongs = container_id in file.read()
    except OSError:
        belongs = False
    if not belongs:
        os.close(descriptor)
        return None
    return descriptor


def _remove(container: Any, channel: Channel | None = None) -> None:
    """Force-remove a container, then its control channel (descriptors and FIFOs)."""
    import docker

    try:
        try:
            container.remove(force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as error:
            if "already in progress" not in str(error):
                raise
    finally:
        if channel is not None:
            _discard_channel(channel)


def _discard_channel(channel: Channel) -> None:
    channel.close()
    shutil.rmtree(channel.directory, ignore_errors=True)


class DockerPrepared:
    """A started container blocked on its `go` FIFO; see sandbox.base.Prepared.

    `early_env` (the spec's environment) is sent with the payload, not set on the container;
    `max_log` bytes of output at most are passed on, the rest is read and dropped with one marker.
    """

    def __init__(
        self,
        backend: DockerBackend,
        container: Any,
        channel: Channel,
        early_env: Mapping[str, str],
        max_log: int,
        runtime: str | None = None,
    ) -> None:
        self._backend = backend
        self._container = container
        self._channel = channel
        self._early_env = dict(early_env)
        self._max_log = max_log
        self._discarded = False
        self._reported = False
        self._pidfd: int | None = None
        self.runtime = runtime

    def watch_exit(self, pid: int) -> None:
        """Watch the container's init process `pid` (when visible from here), so `discard` can see
        the container end by itself instead of asking the engine to kill it."""
        self._pidfd = _pidfd(pid, self.id)

    def _ended_by_itself(self) -> bool:
        """True once the container's init has exited: the kernel then killed every process left in
        its PID namespace, so nothing in it can change the workspace any more."""
        if self._pidfd is None or not self._reported:
            return False
        readable, _, _ = select.select([self._pidfd], [], [], EXIT_GRACE)
        return bool(readable)

    @property
    def id(self) -> str:
        return str(self._container.id)

    def execute(self, payload: Payload, *, timeout: float, on_output: Callable[[bytes], None]) -> ExecResult:
        channel = self._channel
        archive = payload_archive(payload.script, {**self._early_env, **payload.env}, payload.files)
        try:
            self._release(archive)
        except (_StartFailure, ChannelError) as failure:
            return ExecResult(ExecStatus.ERROR, None, 0.0, detail=str(failure), runtime=self.runtime)
        output = _BoundedOutput(on_output, self._max_log)
        started = time.monotonic()
        next_check = started + 1.0
        try:
            while True:
                channel.pump_log(output)
                channel.pump_result(MAX_OUTPUT_FILE)
                done = channel.result()
                if done is not None:
                    channel.pump_log(output)
                    return self._finished(done, time.monotonic() - started)
                now = time.monotonic()
                if now - started > timeout:
                    self._kill()
                    channel.pump_log(output)
                    return ExecResult(ExecStatus.TIMEOUT, None, now - started, runtime=self.runtime)
                if now >= next_check:
                    next_check = now + 1.0
                    ended = self._ended_without_status()
                    if ended is not None:
                        channel.pump_log(output)
                        channel.pump_result(MAX_OUTPUT_FILE)
                        done = channel.result()
                        if done is not None:  # it finished normally just before the look
                            return self._finished(done, time.monotonic() - started)
                        return ExecResult(
                            ended[0], ended[1], now - started, detail=_exit_detail(ended[1]), runtime=self.runtime
                        )
                channel.wait(min(0.25, max(next_check - now, 0.001)))
        except BaseException:
            self.discard(wait=True)
            raise

    def _release(self, archive: bytes) -> None:
        """Wait until the container reads its `go` FIFO, then write the payload into it."""
        now = time.monotonic()
        deadline, next_check = now + START_DEADLINE, now + 0.05
        pause = 0.001
        while not self._channel.send(archive):  # a non-blocking open: a short pause costs little
            now = time.monotonic()
            if now > deadline:
                raise _StartFailure(f"the sandbox did not start within {START_DEADLINE:.0f}s")
            if now >= next_check:  # ask the engine now and then whether it ended instead
                next_check = now + 0.25
                ended = self._ended_without_status()
                if ended is not None:
                    logs = self._container.logs(tail=20).decode(errors="replace").strip()
                    raise _StartFailure(f"the sandbox exited before its script started: {logs}")
            time.sleep(pause)
            pause = min(pause * 2, RELEASE_POLL)

    def _kill(self) -> None:
        """SIGKILL the container and wait until it is gone, so nothing in it writes after this."""
        import docker

        try:
            self._container.kill()
        except docker.errors.APIError:
            return  # it had ended by itself
        with contextlib.suppress(Exception):
            self._container.wait(timeout=30)

    def _ended_without_status(self) -> tuple[ExecStatus, int | None] | None:
        self._container.reload()
        state = self._container.attrs["State"]
        if state.get("Running"):
            return None
        if state.get("OOMKilled"):
            return ExecStatus.OOM, state.get("ExitCode")
        return ExecStatus.FAILED, state.get("ExitCode")

    def _finished(self, done: tuple[int, bytes, bool], duration: float) -> ExecResult:
        self._reported = True
        result = self._result(done, duration)
        return ExecResult(result.status, result.exit_code, result.duration, result.outputs, result.detail, self.runtime)

    def _result(self, done: tuple[int, bytes, bool], duration: float) -> ExecResult:
        code, raw, cut = done
        outputs = raw.decode("utf-8", errors="replace")
        detail = f"$PIPE_OUTPUT holds more than {MAX_OUTPUT_FILE} bytes" if cut else ""
        if code == 0:
            return ExecResult(ExecStatus.SUCCEEDED, 0, duration, outputs, detail)
        if code == 137:  # SIGKILL: the kernel's OOM killer, or a kill from inside the sandbox
            try:
                self._container.wait(timeout=10)
                self._container.reload()
                if self._container.attrs["State"].get("OOMKilled"):
                    return ExecResult(ExecStatus.OOM, code, duration, outputs, detail)
            except Exception:
                pass
        return ExecResult(ExecStatus.FAILED, code, duration, outputs, detail)

    def discard(self, wait: bool = False) -> None:
        """Remove the container: in the background, or before returning with `wait`."""
        if self._discarded:
            return
        self._discarded = True
        try:
            if wait:
                _remove(self._container, self._channel)
            else:
                # Nothing it left running may change the workspace after this: either its init has
                # ended (seen through a pidfd, the usual case after a result), or it is killed now.
                # The removal itself happens off the critical path.
                if not self._ended_by_itself():
                    self._kill()
                self._backend.remove_later(self._container, self._channel)
        finally:
            if self._pidfd is not None:
                os.close(self._pidfd)
                self._pidfd = None


class _StartFailure(Exception):
    pass


class _BoundedOutput:
    """Passes output on until `limit` bytes have gone, then one marker line, then nothing."""

    def __init__(self, on_output: Callable[[bytes], None], limit: int) -> None:
        self._on_output = on_output
        self._room = limit
        self._limit = limit
        self._marked = False

    def __call__(self, data: bytes) -> None:
        if self._room > 0:
            self._on_output(data[: self._room])
        if len(data) > self._room and not self._marked:
            self._marked = True
            self._on_output(f"\n[pipe: output cut at {self._limit} bytes; the rest was discarded]\n".encode())
        self._room = max(self._room - len(data), 0)


def _exit_detail(code: int | None) -> str:
    if code == 111:
        return "the sandbox could not unpack its script (the image needs `sh` and `tar`)"
    return ""
