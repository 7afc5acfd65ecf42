"""The Docker backend: hardened containers, started ahead of time and handed their script late.

Each container runs a small POSIX-sh bootstrap (BOOTSTRAP) that blocks on a FIFO in the control
directory (mounted at /pipe). `execute` writes the script and the late environment there, opens the
FIFO, and then follows the output file and waits for the status file, so neither container start
nor teardown is on the step's critical path; finished containers are removed in the background.

Hardening (DESIGN.md principle 4): a non-root uid, every capability dropped, no-new-privileges,
memory (no extra swap) / CPU / pids limits, docker-init as PID 1, no Docker socket, network `none`
or `bridge`, optionally a read-only root filesystem with a tmpfs /tmp.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import shlex
import shutil
import socket
import stat
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from runner.errors import EngineUnavailable, PipeError
from sandbox.base import ExecResult, ExecStatus, Payload, SandboxSpec
from sandbox.images import DEFAULT_IMAGE, build_context, default_image_tag

CONTROL = "/pipe"
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
MAX_OUTPUT_FILE = 1024 * 1024  # bytes of $PIPE_OUTPUT read

BOOTSTRAP = r"""
read -r _ < /pipe/go || exit 111
if [ -f /pipe/env ]; then . /pipe/env; rm -f /pipe/env; fi
if ! cd "$PIPE_WORKDIR" 2>/dev/null; then
  echo "pipe: working directory $PIPE_WORKDIR does not exist" >> /pipe/log
  code=112
elif command -v bash >/dev/null 2>&1; then
  bash --noprofile --norc -eo pipefail /pipe/script >> /pipe/log 2>&1 < /dev/null; code=$?
else
  sh -e /pipe/script >> /pipe/log 2>&1 < /dev/null; code=$?
fi
echo "$code" > /pipe/status.tmp && mv /pipe/status.tmp /pipe/status
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
    """

    name = "docker"

    def __init__(self, client: Any | None = None) -> None:
        self._client = client
        self._removals = ThreadPoolExecutor(max_workers=2, thread_name_prefix="pipe-remove")

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
        stream = self.client.api.build(
            fileobj=io.BytesIO(build_context()),
            custom_context=True,
            tag=tag,
            rm=True,
            forcerm=True,
            decode=True,
            buildargs={"BASE": base} if base else None,
            labels={"pipe.image": "sandbox"},
        )
        for chunk in stream:
            if "error" in chunk:
                raise PipeError(f"building {tag} failed: {chunk['error'].strip()}")
            line = chunk.get("stream", "").rstrip()
            if line:
                progress(line)

    def prepare(self, spec: SandboxSpec) -> DockerPrepared:
        """Create and start a container for `spec`, blocked until `execute` hands it a payload."""
        import docker

        control = spec.control_dir
        control.mkdir(parents=True, exist_ok=True)
        os.mkfifo(control / "go", 0o600)
        _give(control, spec.uid, spec.gid, 0o700)
        _give(control / "go", spec.uid, spec.gid, 0o600)
        env = dict(spec.env)
        env.update({"PIPE_WORKDIR": spec.workdir, "HOME": "/tmp", "PIPE_OUTPUT": f"{CONTROL}/output"})
        volumes = {
            str(spec.workspace): {"bind": "/workspace", "mode": "rw"},
            str(control): {"bind": CONTROL, "mode": "rw"},
        }
        for host, container in spec.mounts:
            volumes[host] = {"bind": container, "mode": "rw"}
        if spec.ca_bundle is not None:
            volumes[str(spec.ca_bundle)] = {"bind": CA_BUNDLE_PATH, "mode": "ro"}
            env.update({name: CA_BUNDLE_PATH for name in CA_VARIABLES})
        options: dict[str, Any] = {
            "command": ["sh", "-c", BOOTSTRAP],
            "user": f"{spec.uid}:{spec.gid}",
            "environment": env,
            "working_dir": "/",
            "volumes": volumes,
            "labels": {"pipe.managed": "1", **spec.labels},
            "network_mode": spec.network,
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges:true"],
            "mem_limit": spec.memory,
            "memswap_limit": spec.memory,
            "nano_cpus": int(spec.cpus * 1e9),
            "pids_limit": spec.pids,
            "init": True,
            "read_only": spec.read_only,
            "detach": True,
        }
        if spec.read_only:
            options["tmpfs"] = {"/tmp": "rw,nosuid,nodev,size=268435456"}
        try:
            container = self.client.containers.create(spec.image, **options)
        except docker.errors.APIError as error:
            raise PipeError(f"cannot create a sandbox from {spec.image}: {error.explanation}") from None
        prepared = DockerPrepared(self, container, control)
        try:
            container.start()
        except BaseException:
            prepared.discard(wait=True)
            raise
        return prepared

    def remove_later(self, container: Any, control: Path) -> None:
        """Remove `container` (killing it), then its control directory, off the critical path."""
        self._removals.submit(_remove, container, control)

    def reap(self, labels: Mapping[str, str]) -> int:
        """Remove every container (running or not) carrying all `labels`."""
        filters = {"label": [f"{key}={value}" for key, value in labels.items()]}
        found = self.client.containers.list(all=True, filters=filters)
        for container in found:
            _remove(container)
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


def _remove(container: Any, control: Path | None = None) -> None:
    """Force-remove a container, then delete its control directory (script, late env, raw log)."""
    import docker

    try:
        container.remove(force=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as error:
        if "already in progress" not in str(error):
            raise
    if control is not None:
        shutil.rmtree(control, ignore_errors=True)


def _give(path: Path, uid: int, gid: int, mode: int) -> None:
    """Let the sandbox user own `path` (when we may chown) and set its mode."""
    if os.geteuid() == 0:
        os.chown(path, uid, gid)
    os.chmod(path, mode)


class DockerPrepared:
    """A started container blocked on its FIFO; see sandbox.base.Prepared."""

    def __init__(self, backend: DockerBackend, container: Any, control: Path) -> None:
        self._backend = backend
        self._container = container
        self._control = control
        self._discarded = False

    @property
    def id(self) -> str:
        return str(self._container.id)

    def execute(self, payload: Payload, *, timeout: float, on_output: Callable[[bytes], None]) -> ExecResult:
        control = self._control
        owner = os.stat(control)
        _write_private(control / "script", payload.script, owner)
        if payload.env:
            lines = "".join(f"export {key}={shlex.quote(value)}\n" for key, value in payload.env.items())
            _write_private(control / "env", lines, owner)
        for name, data in payload.files.items():
            if "/" in name or name in ("go", "script", "env", "log", "status", "output") or name.startswith("."):
                raise ValueError(f"invalid payload file name {name!r}")
            _write_private(control / name, data, owner)
        try:
            self._release()
        except _StartFailure as failure:
            return ExecResult(ExecStatus.ERROR, None, 0.0, detail=str(failure))
        started = time.monotonic()
        log_offset = 0
        next_check = started + 1.0
        pause = 0.002
        status_file = control / "status"
        try:
            while True:
                log_offset = _pump(control / "log", log_offset, on_output)
                if status_file.exists():
                    code = int(status_file.read_text().strip() or "1")
                    _pump(control / "log", log_offset, on_output)
                    return self._finished(code, time.monotonic() - started, self._read_outputs())
                now = time.monotonic()
                if now - started > timeout:
                    self._kill()
                    _pump(control / "log", log_offset, on_output)
                    return ExecResult(ExecStatus.TIMEOUT, None, now - started)
                if now >= next_check:
                    next_check = now + 1.0
                    ended = self._ended_without_status()
                    if ended is not None and status_file.exists():
                        continue  # it finished normally after the look above: the next turn reads the status
                    if ended is not None:
                        _pump(control / "log", log_offset, on_output)
                        return ExecResult(ended[0], ended[1], now - started)
                time.sleep(pause)
                pause = min(pause * 1.5, 0.05)
        except BaseException:
            self.discard(wait=True)
            raise

    def _release(self) -> None:
        """Open the FIFO (the container is waiting on it) and let the script start."""
        deadline = time.monotonic() + START_DEADLINE
        pause = 0.001
        while True:
            try:
                descriptor = os.open(self._control / "go", os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError as error:
                if error.errno != errno.ENXIO:
                    raise
            if time.monotonic() > deadline:
                raise _StartFailure(f"the sandbox did not start within {START_DEADLINE:.0f}s")
            if pause >= 0.05:
                ended = self._ended_without_status()
                if ended is not None:
                    logs = self._container.logs(tail=20).decode(errors="replace").strip()
                    raise _StartFailure(f"the sandbox exited before its script started: {logs}")
            time.sleep(pause)
            pause = min(pause * 2, 0.1)
        try:
            os.write(descriptor, b"go\n")
        finally:
            os.close(descriptor)

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

    def _read_outputs(self) -> str:
        path = self._control / "output"
        try:
            descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return ""
        with os.fdopen(descriptor, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                return ""
            return handle.read(MAX_OUTPUT_FILE + 1).decode("utf-8", errors="replace")

    def _finished(self, code: int, duration: float, outputs: str) -> ExecResult:
        if code == 0:
            return ExecResult(ExecStatus.SUCCEEDED, 0, duration, outputs)
        if code == 137:  # SIGKILL: the kernel's OOM killer, or a kill from inside the sandbox
            try:
                self._container.wait(timeout=10)
                self._container.reload()
                if self._container.attrs["State"].get("OOMKilled"):
                    return ExecResult(ExecStatus.OOM, code, duration, outputs)
            except Exception:
                pass
        return ExecResult(ExecStatus.FAILED, code, duration, outputs)

    def discard(self, wait: bool = False) -> None:
        """Remove the container: in the background, or before returning with `wait`."""
        if self._discarded:
            return
        self._discarded = True
        if wait:
            _remove(self._container, self._control)
        else:
            # Stop it now, so nothing it left running can change the workspace after this; the
            # removal itself happens off the critical path.
            self._kill()
            self._backend.remove_later(self._container, self._control)


class _StartFailure(Exception):
    pass


def _write_private(path: Path, text: str | bytes, owner: os.stat_result) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.write(descriptor, text.encode() if isinstance(text, str) else text)
    finally:
        os.close(descriptor)
    if os.geteuid() == 0:
        os.chown(path, owner.st_uid, owner.st_gid)


def _pump(path: Path, offset: int, on_output: Callable[[bytes], None]) -> int:
    """Send the bytes of `path` past `offset` to `on_output`; returns the new offset."""
    try:
        with open(path, "rb") as handle:
            if stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                handle.seek(offset)
                data = handle.read()
            else:
                data = b""
    except FileNotFoundError:
        return offset
    if data:
        on_output(data)
    return offset + len(data)
