"""A started Docker sandbox waiting for its payload (`DockerPrepared`, see sandbox.base.Prepared):
handing over the payload through the control channel, following the output, timeouts, and removing
the container so that nothing in it can change the workspace after it reported.

The backend that makes these is sandbox/docker.py; the channel's FIFOs are sandbox/channel.py.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from sandbox.base import ExecResult, ExecStatus, Payload
from sandbox.channel import Channel, ChannelError, payload_archive

START_DEADLINE = 60.0  # seconds a prepared container may take to reach its FIFO
EXIT_GRACE = 0.25  # seconds a container that reported its result may take to end by itself
RELEASE_POLL = 0.005  # seconds between looks at a `go` FIFO no container reads yet
MAX_OUTPUT_FILE = 1024 * 1024  # bytes of $PIPE_OUTPUT read


class Remover(Protocol):
    """What a prepared sandbox needs of its backend: removing a container off the critical path."""

    def remove_later(self, container: Any, channel: Channel) -> None:
        """Remove `container` and then its control `channel` in the background."""
        ...


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


def remove_container(container: Any, channel: Channel | None = None) -> None:
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
            discard_channel(channel)


def discard_channel(channel: Channel) -> None:
    """Close a control channel's descriptors and delete its directory (FIFOs and all)."""
    channel.close()
    shutil.rmtree(channel.directory, ignore_errors=True)


class DockerPrepared:
    """A started container blocked on its `go` FIFO; see sandbox.base.Prepared.

    `early_env` (the spec's environment) is sent with the payload, not set on the container;
    `max_log` bytes of output at most are passed on, the rest is read and dropped with one marker.
    """

    def __init__(
        self,
        backend: Remover,
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
                remove_container(self._container, self._channel)
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
