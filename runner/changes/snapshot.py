"""Safe views of a workspace for the host: walking, reading and restoring entries without ever
following a symbolic link (docs/architecture.md, Principles 6).

Every path is opened one component at a time from the workspace root with O_NOFOLLOW, so a
symlink anywhere in a path is an error, never a way out of the workspace. `.git/objects` is not
walked: git objects are immutable and only ever added.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

SKIPPED = frozenset({".git/objects"})
_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
MAX_FILE_BYTES = 256 * 1024 * 1024
Stamp = tuple[int, int, int, int]  # (ctime ns, size, inode, st_mode): changes whenever content or mode does


@dataclass(frozen=True)
class Entry:
    """One workspace entry. `kind` is file, dir, symlink or other; `mode` the permission bits;
    `digest` the SHA-256 of a file's bytes (None until hashed); `target` a symlink's target;
    `stamp` (ctime ns, size, inode, st_mode) tells whether it may have changed since."""

    kind: str
    mode: int
    uid: int
    gid: int
    size: int = 0
    digest: str | None = None
    target: str | None = None
    stamp: Stamp = (0, 0, 0, 0)
    links: int = 1

    def same_state(self, other: Entry | None) -> bool:
        """Whether `other` has the same kind, mode and content (stamps and owners aside)."""
        return (
            other is not None
            and self.kind == other.kind
            and self.mode == other.mode
            and self.digest == other.digest
            and self.target == other.target
        )

    def describe(self) -> dict[str, object]:
        """A JSON-able description (for change records)."""
        found: dict[str, object] = {"kind": self.kind, "mode": oct(self.mode)}
        if self.digest:
            found["sha256"] = self.digest
            found["size"] = self.size
            if self.digest.startswith("masked-"):
                found["masked"] = True  # the kept copy has its secrets replaced (runner/changes/recording.py)
        if self.target is not None:
            found["target"] = self.target
        return found


def _kind(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "other"


def entry_from_stat(st: os.stat_result) -> Entry:
    return Entry(
        kind=_kind(st.st_mode),
        mode=stat.S_IMODE(st.st_mode),
        uid=st.st_uid,
        gid=st.st_gid,
        size=st.st_size if stat.S_ISREG(st.st_mode) else 0,
        stamp=(st.st_ctime_ns, st.st_size, st.st_ino, st.st_mode),
        links=st.st_nlink,
    )


class Workspace:
    """The workspace directory at `root`, seen safely."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @contextlib.contextmanager
    def _root_fd(self) -> Iterator[int]:
        descriptor = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            yield descriptor
        finally:
            os.close(descriptor)

    @contextlib.contextmanager
    def parent(self, path: str) -> Iterator[tuple[int, str]]:
        """(descriptor of the directory holding `path`, its last component), every directory on
        the way opened with O_NOFOLLOW. Raises OSError (ELOOP, ENOTDIR, ENOENT) when a component
        is a symlink, not a directory, or missing."""
        parts = path.split("/")
        if any(part in ("", ".", "..") for part in parts):
            raise OSError(errno.EINVAL, f"invalid workspace path {path!r}")
        with self._root_fd() as root:
            current = os.dup(root)
            try:
                for part in parts[:-1]:
                    following = os.open(part, _DIRECTORY, dir_fd=current)
                    os.close(current)
                    current = following
                yield current, parts[-1]
            finally:
                os.close(current)

    def stamps(self) -> dict[str, Stamp]:
        """Every path below the root (but `.git/objects`) -> its stamp. This is the hot loop of
        change recording, so it builds nothing but tuples."""
        found: dict[str, Stamp] = {}
        is_directory = stat.S_ISDIR

        def visit(descriptor: int, prefix: str) -> None:
            subdirectories = []
            try:
                with os.scandir(descriptor) as entries:
                    for item in entries:
                        st = item.stat(follow_symlinks=False)
                        path = prefix + item.name
                        found[path] = (st.st_ctime_ns, st.st_size, st.st_ino, st.st_mode)
                        if is_directory(st.st_mode) and path not in SKIPPED:
                            subdirectories.append(item.name)
                for name in subdirectories:
                    visit(os.open(name, _DIRECTORY, dir_fd=descriptor), prefix + name + "/")
            finally:
                os.close(descriptor)

        with self._root_fd() as root:
            visit(os.dup(root), "")
        return found

    def walk(self) -> dict[str, Entry]:
        """Every entry below the root (but `.git/objects`), as path -> Entry without digests."""
        found: dict[str, Entry] = {}
        for path in self.stamps():
            entry = self.lstat(path)
            if entry is not None:
                found[path] = entry
        return found

    def lstat(self, path: str) -> Entry | None:
        """The entry at `path` (no digest), or None when nothing is there."""
        try:
            with self.parent(path) as (directory, name):
                return entry_from_stat(os.stat(name, dir_fd=directory, follow_symlinks=False))
        except FileNotFoundError:
            return None
        except NotADirectoryError:
            return None

    @contextlib.contextmanager
    def open_file(self, path: str) -> Iterator[tuple[int, Entry]]:
        """(read-only descriptor, entry with the stamp of the open file) of the regular file at
        `path`, for reading in chunks (`read_chunks`) whatever its size. Raises OSError when it is
        a symlink (ELOOP) or not a regular file (EINVAL)."""
        with self.parent(path) as (directory, name):
            descriptor = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=directory)
        try:
            st = os.fstat(descriptor)
            if not stat.S_ISREG(st.st_mode):
                raise OSError(errno.EINVAL, f"{path} is not a regular file")
            yield descriptor, entry_from_stat(st)
        finally:
            os.close(descriptor)

    def read(self, path: str) -> tuple[bytes, Entry]:
        """The bytes of the regular file at `path` and its entry (stamp taken from the open file).
        Raises OSError when it is a symlink (ELOOP) or not a regular file, or is too large."""
        with self.parent(path) as (directory, name):
            descriptor = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=directory)
            try:
                st = os.fstat(descriptor)
                if not stat.S_ISREG(st.st_mode):
                    raise OSError(errno.EINVAL, f"{path} is not a regular file")
                if st.st_size > MAX_FILE_BYTES:
                    raise OSError(errno.EFBIG, f"{path} is larger than {MAX_FILE_BYTES} bytes")
                chunks = []
                while chunk := os.read(descriptor, 1 << 20):
                    chunks.append(chunk)
                return b"".join(chunks), entry_from_stat(st)
            finally:
                os.close(descriptor)

    def readlink(self, path: str) -> str:
        with self.parent(path) as (directory, name):
            return os.readlink(name, dir_fd=directory)

    # ---- restoring -------------------------------------------------------------------------

    def remove(self, path: str, kind: str) -> None:
        """Remove the entry at `path`. A directory must be empty, except the directories that are
        not walked (SKIPPED, e.g. .git/objects): those go with their contents, removed through
        file descriptors without following symlinks. Missing is fine."""
        try:
            with self.parent(path) as (directory, name):
                if kind == "dir" and path in SKIPPED:
                    shutil.rmtree(name, dir_fd=directory)
                elif kind == "dir":
                    os.rmdir(name, dir_fd=directory)
                else:
                    os.unlink(name, dir_fd=directory)
        except FileNotFoundError:
            pass

    def write_file(self, path: str, data: bytes | Iterable[bytes], mode: int, uid: int, gid: int) -> None:
        """Replace whatever is at `path` (file or symlink, never followed) by a regular file with
        `data` (bytes, or chunks of any total size)."""

        def fill(descriptor: int) -> None:
            for chunk in [data] if isinstance(data, bytes) else data:
                view = memoryview(chunk)
                while view:
                    view = view[os.write(descriptor, view) :]

        self._replace_file(path, fill, mode, uid, gid)

    def write_blocks(
        self, path: str, size: int, blocks: Iterable[tuple[int, bytes]], mode: int, uid: int, gid: int
    ) -> None:
        """Replace whatever is at `path` (file or symlink, never followed) by a regular file of
        apparent `size` bytes holding `blocks` ((offset, bytes), any total size); the rest are
        holes, so a sparse file is put back sparse."""

        def fill(descriptor: int) -> None:
            for offset, data in blocks:
                view = memoryview(data)
                while view:
                    view = view[os.pwrite(descriptor, view, offset + len(data) - len(view)) :]
            os.ftruncate(descriptor, size)

        self._replace_file(path, fill, mode, uid, gid)

    def _replace_file(self, path: str, fill: Callable[[int], None], mode: int, uid: int, gid: int) -> None:
        with self.parent(path) as (directory, name):
            temporary = f".pipe-restore-{os.getpid()}-{name}"[:255]
            descriptor = os.open(
                temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=directory
            )
            try:
                fill(descriptor)
                _own(descriptor, uid, gid)
                os.fchmod(descriptor, mode)
                os.fsync(descriptor)
            except BaseException:
                os.close(descriptor)
                os.unlink(temporary, dir_fd=directory)
                raise
            os.close(descriptor)
            os.replace(temporary, name, src_dir_fd=directory, dst_dir_fd=directory)

    def write_symlink(self, path: str, target: str, uid: int, gid: int) -> None:
        """Replace whatever is at `path` (not a directory) by a symlink to `target`."""
        with self.parent(path) as (directory, name):
            temporary = f".pipe-restore-{os.getpid()}-{name}"[:255]
            os.symlink(target, temporary, dir_fd=directory)
            with contextlib.suppress(PermissionError):
                os.chown(temporary, uid, gid, dir_fd=directory, follow_symlinks=False)
            os.replace(temporary, name, src_dir_fd=directory, dst_dir_fd=directory)

    def make_directory(self, path: str, mode: int, uid: int, gid: int) -> None:
        """Create the directory at `path` (or fix the mode of the one there)."""
        with self.parent(path) as (directory, name):
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o700, dir_fd=directory)
            descriptor = os.open(name, _DIRECTORY, dir_fd=directory)
            try:
                _own(descriptor, uid, gid)
                os.fchmod(descriptor, mode)
            finally:
                os.close(descriptor)


def read_chunks(descriptor: int, size: int = 1 << 20) -> Iterator[bytes]:
    """The bytes of an open file from its current offset, `size` at a time."""
    while chunk := os.read(descriptor, size):
        yield chunk


def _own(descriptor: int, uid: int, gid: int) -> None:
    if os.geteuid() == 0:
        os.fchown(descriptor, uid, gid)
