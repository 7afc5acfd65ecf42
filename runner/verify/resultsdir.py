"""A host directory a sandbox writes its results into (JUnit XML, exit codes, output tails), read
back under docs/architecture.md, Principles 10: nothing is opened by a path the sandbox could redirect.

The host makes the directory (mode 0700, handed to the sandbox user) and keeps a descriptor on it;
every file is opened relative to that descriptor with O_NOFOLLOW and O_NONBLOCK (a FIFO never
blocks the host), must be a regular file, and is read only up to a bound. Anything else raises
ResultsError, whose message says why in a few words, for a `could not read results: why` line.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO


class ResultsError(Exception):
    """A result file is missing, not a regular file, too large or unreadable (the message says which)."""


class ResultsDir:
    """A fresh private directory for one sandbox's results, owned by `uid`:`gid` when pipe runs as
    root. `path` is what to mount into the sandbox; `close()` removes it (never following links)."""

    def __init__(self, uid: int, gid: int, parent: str | None = None) -> None:
        self.path = tempfile.mkdtemp(prefix="pipe-results-", dir=parent)
        os.chmod(self.path, 0o700)
        if os.geteuid() == 0:
            os.lchown(self.path, uid, gid)
        self._dir: int | None = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)

    @contextmanager
    def open(self, name: str, limit: int) -> Iterator[tuple[BinaryIO, int]]:
        """(file, size) of the regular file `name` (a plain name) of at most `limit` bytes."""
        if self._dir is None or not name or "/" in name or name in (".", ".."):
            raise ResultsError(f"{name}: not a result file name")
        try:
            descriptor = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=self._dir)
        except FileNotFoundError:
            raise ResultsError(f"{name} was not written") from None
        except OSError as error:
            raise ResultsError(f"{name}: {error.strerror or error}") from None
        try:
            info = os.fstat(descriptor)
            if not stat.S_ISREG(info.st_mode):
                raise ResultsError(f"{name} is not a regular file")
            if info.st_size > limit:
                raise ResultsError(f"{name} holds {info.st_size} bytes, more than {limit}")
            os.set_blocking(descriptor, True)
            handle = os.fdopen(descriptor, "rb")
        except BaseException:
            os.close(descriptor)
            raise
        with handle:
            yield handle, info.st_size

    def exists(self, name: str) -> bool:
        """Whether anything named `name` is in the directory (not followed)."""
        if self._dir is None:
            return False
        try:
            os.stat(name, dir_fd=self._dir, follow_symlinks=False)
        except OSError:
            return False
        return True

    def read(self, name: str, limit: int) -> bytes:
        """The whole of `name` (at most `limit` bytes, else ResultsError)."""
        with self.open(name, limit) as (handle, _size):
            data = handle.read(limit + 1)
        if len(data) > limit:  # it grew after the check
            raise ResultsError(f"{name} holds more than {limit} bytes")
        return data

    def tail(self, name: str, size: int) -> bytes:
        """The last `size` bytes of `name`, however large it is."""
        with self.open(name, 2**62) as (handle, total):
            handle.seek(max(total - size, 0))
            return handle.read(size)

    def close(self) -> None:
        """Remove the directory and everything in it (links are removed, not followed)."""
        if self._dir is not None:
            os.close(self._dir)
            self._dir = None
        shutil.rmtree(self.path, ignore_errors=True)
