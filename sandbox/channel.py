"""The host's side of the control channel to one sandbox: three FIFOs in a directory the sandbox
can neither write nor replace.

The directory is created by the host (mode 0755, the host's owner) and mounted read-only into the
container at CHANNEL. It holds only FIFOs, made before the container starts:

- `go`      host -> sandbox: the payload, as a tar stream (script, late environment, files), which
            the bootstrap unpacks into the container's private tmpfs at /pipe. Nothing of it is
            ever written to the host's disk.
- `log`     sandbox -> host: the script's stdout and stderr, merged.
- `result`  sandbox -> host: the exit code on the first line, then the bytes of $PIPE_OUTPUT.

The host opens `log` and `result` once, before the container starts, with O_NOFOLLOW and a FIFO
check, and keeps those descriptors: what the sandbox later does to the paths (it cannot, the mount
is read-only) could not change what the host reads. Every read is bounded (READ_CHUNK bytes a call,
`max_result` bytes of result in all). This is docs/architecture.md, Principles 10.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import select
import shlex
import stat
import tarfile
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

CHANNEL = "/run/pipe"  # where the channel directory is mounted (read-only) in the sandbox
PRIVATE = "/pipe"  # the sandbox's private tmpfs: script, payload files, $PIPE_OUTPUT
READ_CHUNK = 64 * 1024  # bytes read from a FIFO per call
LATE_LOG = 0.05  # seconds between looks at a log whose writer has gone (a later one may come)
RESERVED = frozenset({"go", "script", "env", "log", "result", "output"})
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ChannelError(Exception):
    """The channel cannot be used (a FIFO is missing or is not a FIFO, the sandbox went away)."""


def open_fifo(path: Path, flags: int) -> int:
    """Open the FIFO `path` without following a symlink; raise ChannelError unless it is a FIFO.
    Raises OSError (ENXIO) for a non-blocking write-open while no reader has it open."""
    descriptor = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    if not stat.S_ISFIFO(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise ChannelError(f"{path} is not a FIFO")
    return descriptor


def payload_archive(script: str, env: Mapping[str, str], files: Mapping[str, bytes]) -> bytes:
    """The tar stream written into `go`: `script`, `env` (`export NAME='value'` lines, sourced and
    then deleted by the bootstrap) and each of `files` under its name. Raises ValueError for a file
    name that is reserved, hidden or not a plain name, and for an invalid variable name."""
    lines = []
    for name, value in env.items():
        if not _ENV_NAME.match(name):
            raise ValueError(f"invalid environment variable name {name!r}")
        lines.append(f"export {name}={shlex.quote(value)}\n")
    members: list[tuple[str, bytes, int]] = [
        ("script", script.encode(), 0o644),
        ("env", "".join(lines).encode(), 0o600),
    ]
    for name, data in files.items():
        if "/" in name or name in RESERVED or name.startswith(".") or not name:
            raise ValueError(f"invalid payload file name {name!r}")
        members.append((name, data, 0o644))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for name, data, mode in members:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class Channel:
    """The FIFOs of one sandbox, made in a new directory under `root` and owned by `uid`:`gid` (the
    sandbox user) with mode 0600. `directory` is what the backend mounts read-only at CHANNEL."""

    def __init__(self, root: Path, prefix: str, uid: int, gid: int) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.directory = Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir=root))
        os.chmod(self.directory, 0o755)
        for name in ("go", "log", "result"):
            os.mkfifo(self.directory / name, 0o600)
            if os.geteuid() == 0:
                os.lchown(self.directory / name, uid, gid)
        self._log: int | None = open_fifo(self.directory / "log", os.O_RDONLY)
        self._result: int | None = open_fifo(self.directory / "result", os.O_RDONLY)
        self._result_data = bytearray()
        self._result_over = False
        self._result_closed = False
        self._log_ended = False  # its writer has closed: select would report it readable at once

    def send(self, payload: bytes) -> bool:
        """Write `payload` into `go` if the sandbox has opened it for reading; returns False (and
        writes nothing) while it has not. Raises ChannelError if the sandbox stops reading."""
        try:
            descriptor = open_fifo(self.directory / "go", os.O_WRONLY)
        except OSError as error:
            if error.errno == errno.ENXIO:
                return False
            raise
        try:
            os.set_blocking(descriptor, True)
            view = memoryview(payload)
            while view:
                written = os.write(descriptor, view)
                view = view[written:]
        except BrokenPipeError:
            raise ChannelError("the sandbox stopped reading its payload") from None
        finally:
            os.close(descriptor)
        return True

    def wait(self, seconds: float) -> None:
        """Block up to `seconds` until the log or the result has something to read. Once the
        log's writer has closed it, only the result is watched (a closed FIFO always selects as
        readable), and the log is looked at again every LATE_LOG seconds."""
        log = None if self._log_ended else self._log
        if self._log_ended:
            seconds = min(seconds, LATE_LOG)
        watched = [fd for fd in (log, self._result) if fd is not None]
        if watched:
            with contextlib.suppress(InterruptedError):
                select.select(watched, [], [], seconds)

    def pump_log(self, on_output: Callable[[bytes], None], limit: int = 16 * READ_CHUNK) -> int:
        """Pass what the log holds now (at most `limit` bytes) to `on_output`; returns the count."""
        total = 0
        while self._log is not None and total < limit:
            try:
                data = os.read(self._log, READ_CHUNK)
            except BlockingIOError:
                break
            if not data:
                self._log_ended = True
                break  # no writer right now; a later one may come
            self._log_ended = False
            on_output(data)
            total += len(data)
        return total

    def pump_result(self, max_result: int) -> None:
        """Read what the result FIFO holds; keeps at most `max_result` + 1 bytes, and takes the
        result as complete (and cut) past that, so an endless writer cannot hold the host."""
        while self._result is not None:
            try:
                data = os.read(self._result, READ_CHUNK)
            except BlockingIOError:
                return
            if not data:
                if self._result_data:
                    self._result_closed = True  # its writer has been and gone
                return
            room = max_result + 1 - len(self._result_data)
            if room > 0:
                self._result_data += data[:room]
            if len(data) > room:  # more than may be read: complete as it is, and cut
                self._result_over = self._result_closed = True
                return

    def result(self) -> tuple[int, bytes, bool] | None:
        """(exit code, outputs, whether the outputs were cut) once the result is complete, else None.
        A first line that is not a number counts as exit code 1."""
        if not self._result_closed:
            return None
        first, _, rest = bytes(self._result_data).partition(b"\n")
        try:
            code = int(first.strip() or b"1")
        except ValueError:
            code = 1
        return code, rest, self._result_over

    def close(self) -> None:
        """Close the host's descriptors (the directory is removed by the backend)."""
        for name in ("_log", "_result"):
            descriptor = getattr(self, name)
            if descriptor is not None:
                os.close(descriptor)
                setattr(self, name, None)
