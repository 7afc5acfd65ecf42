"""Kernel change notifications (Linux inotify) for a workspace, so recording a step's changes costs
in proportion to what the step touched rather than to the size of the workspace.

A `Watcher` puts a watch on every directory (never following symlinks: each directory is opened
with O_NOFOLLOW and watched through /proc/self/fd) and, on `take()`, says which paths may have
changed since the previous `take()`. When it cannot say for sure (queue overflow, a directory moved,
a watch that could not be added) `take()` returns None and the caller walks the whole workspace.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

from runner.changes.snapshot import SKIPPED, Workspace

IN_MODIFY = 0x00000002
IN_ATTRIB = 0x00000004
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_EXCL_UNLINK = 0x04000000
IN_ISDIR = 0x40000000
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000

MASK = (
    IN_MODIFY
    | IN_ATTRIB
    | IN_CLOSE_WRITE
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_CREATE
    | IN_DELETE
    | IN_DELETE_SELF
    | IN_MOVE_SELF
    | IN_ONLYDIR
    | IN_EXCL_UNLINK
)
_EVENT = struct.Struct("iIII")


@dataclass
class Dirty:
    """What may have changed: `paths` (files or directories, relative), and `trees` whose every
    path below may have changed (a directory created or deleted)."""

    paths: set[str] = field(default_factory=set)
    trees: set[str] = field(default_factory=set)


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        libc.inotify_init1  # noqa: B018 - probe: missing on non-Linux systems
    except (OSError, AttributeError):
        return None
    return libc


class Watcher:
    """inotify watches on every directory of the workspace at `root`."""

    def __init__(self, root: Path) -> None:
        self.workspace = Workspace(root)
        self._libc = _libc()
        self._fd = -1
        self._directories: dict[int, str] = {}
        self._broken = False

    def start(self) -> bool:
        """Watch every directory now there; False (and no watching) where inotify is unavailable."""
        if self._libc is None:
            return False
        self._fd = self._libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if self._fd < 0:
            return False
        try:
            self._watch_tree("")
        except OSError:
            self.close()
            return False
        return True

    @property
    def active(self) -> bool:
        return self._fd >= 0

    def _watch(self, path: str) -> None:
        assert self._libc is not None
        if path:
            with self.workspace.parent(path) as (directory, name):
                descriptor = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=directory)
        else:
            descriptor = os.open(self.workspace.root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            target = f"/proc/self/fd/{descriptor}".encode()
            watch = self._libc.inotify_add_watch(self._fd, target, MASK)
        finally:
            os.close(descriptor)
        if watch < 0:
            code = ctypes.get_errno()
            raise OSError(code, f"inotify_add_watch {path or '.'}: {os.strerror(code)}")
        self._directories[watch] = path

    def _watch_tree(self, top: str) -> list[str]:
        """Watch `top` and every directory below it; returns every path found below `top`."""
        self._watch(top)
        found: list[str] = []
        pending = [top]
        while pending:
            current = pending.pop()
            for name in self._list(current):
                path = f"{current}/{name}" if current else name
                found.append(path)
                entry = self.workspace.lstat(path)
                if entry is not None and entry.kind == "dir" and path not in SKIPPED:
                    self._watch(path)
                    pending.append(path)
        return found

    def _list(self, path: str) -> list[str]:
        try:
            if not path:
                return os.listdir(self.workspace.root)
            with self.workspace.parent(path) as (directory, name):
                descriptor = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=directory)
                try:
                    return os.listdir(descriptor)
                finally:
                    os.close(descriptor)
        except (FileNotFoundError, NotADirectoryError):
            return []

    def take(self) -> Dirty | None:
        """The paths that may have changed since the last call, or None: walk everything."""
        if not self.active or self._broken:
            return None
        dirty = Dirty()
        new_directories: list[str] = []
        while True:
            try:
                data = os.read(self._fd, 1 << 20)
            except BlockingIOError:
                break
            offset = 0
            while offset < len(data):
                watch, mask, _cookie, length = _EVENT.unpack_from(data, offset)
                raw = data[offset + _EVENT.size : offset + _EVENT.size + length].split(b"\0", 1)[0]
                offset += _EVENT.size + length
                if mask & IN_Q_OVERFLOW:
                    self._broken = True
                    continue
                if mask & IN_IGNORED:
                    self._directories.pop(watch, None)
                    continue
                directory = self._directories.get(watch)
                if directory is None:
                    continue
                if mask & (IN_MOVE_SELF | IN_DELETE_SELF):
                    if mask & IN_MOVE_SELF:
                        self._broken = True  # its watch now names the wrong path
                    continue
                name = os.fsdecode(raw)
                if not name:
                    dirty.paths.add(directory)
                    continue
                path = f"{directory}/{name}" if directory else name
                dirty.paths.add(path)
                if mask & IN_ISDIR:
                    if mask & (IN_MOVED_FROM | IN_MOVED_TO):
                        self._broken = True
                    elif mask & IN_CREATE:
                        new_directories.append(path)
                    elif mask & IN_DELETE:
                        dirty.trees.add(path)
        for path in new_directories:
            try:
                dirty.paths.update(self._watch_tree(path))
            except OSError as error:
                if error.errno not in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                    self._broken = True
            dirty.trees.add(path)
        if self._broken:
            self.restart()
            return None
        return dirty

    def restart(self) -> None:
        """Drop every watch and watch the tree afresh (after the caller's full walk)."""
        self.close()
        self._broken = False
        self.start()

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = -1
        self._directories.clear()
