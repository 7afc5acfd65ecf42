"""A content-addressed object store under the state directory: `objects/ab/cdef...` by SHA-256.

Objects are written to a temporary file and moved into place, so a killed process never leaves a
partial object under its final name; writing an object that exists is a no-op. Objects are not
fsynced: like the store (SQLite WAL, synchronous=NORMAL) they survive `kill -9` of pipe, which is
the promise (docs/architecture.md, Principles 9), not a power cut.

Contents are streamed in CHUNK-byte pieces (`put_stream`, `chunks`), so a file of any size is
kept with bounded memory; runs of zero bytes are written as holes (a sparse file stays sparse).

Files are read as BLOCK-aligned pieces that are not all zeros (`nonzero_blocks`), skipping holes
with SEEK_DATA/SEEK_HOLE, so a sparse file costs what it holds, not the size it claims. Its
digest (`ContentHash`) depends on its bytes only, never on where its holes happen to be: the
plain SHA-256 of the bytes when no aligned block is all zeros (most files, git's included), else
`sparse-<sha256 over the apparent size and each non-zero block's offset and bytes>`; such an
object is kept with its zero blocks as holes (`put_blocks`) and put back the same way.
A digest written `unkept-<size>-<mtime ns>-<inode>` names no object: the file held more data than
pipe records (runner/changes/recording.py), so only its metadata was recorded.
A digest written `masked-<sha256>` names an object whose bytes are a masked copy of what was
recorded (a secret replaced by `***`, see runner/changes/recording.py): the object is still stored under its
own SHA-256, the prefix only tells readers it cannot be restored as it was.
"""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

CHUNK = 1 << 20
BLOCK = 1 << 16
MASKED = "masked-"
SPARSE = "sparse-"
UNKEPT = "unkept-"
_ZEROS = bytes(CHUNK)
_BLOCK_ZEROS = bytes(BLOCK)
Block = tuple[int, bytes]  # (offset in the file, bytes)


def is_masked(digest: str | None) -> bool:
    """Whether `digest` names a masked copy (see the module's docstring)."""
    return digest is not None and digest.startswith(MASKED)


def is_sparse(digest: str | None) -> bool:
    """Whether `digest` names a file with zero blocks (see ContentHash)."""
    return digest is not None and digest.startswith(SPARSE)


def is_unkept(digest: str | None) -> bool:
    """Whether `digest` stands for metadata only (see the module's docstring)."""
    return digest is not None and digest.startswith(UNKEPT)


def unkept_digest(st: os.stat_result) -> str:
    """The metadata-only digest of a file too large to record: size, mtime (ns) and inode."""
    return f"{UNKEPT}{st.st_size}-{st.st_mtime_ns}-{st.st_ino}"


def data_regions(descriptor: int, size: int) -> Iterator[tuple[int, int]]:
    """(offset, length) of each data region of the open file `descriptor` below `size` bytes,
    holes skipped (SEEK_DATA/SEEK_HOLE); the whole file as one region where the file system
    cannot tell. Raises OSError for other errors."""
    offset = 0
    while offset < size:
        try:
            start = os.lseek(descriptor, offset, os.SEEK_DATA)
            end = min(os.lseek(descriptor, start, os.SEEK_HOLE), size)
        except OSError as error:
            if error.errno == errno.ENXIO:
                return  # only a hole is left
            if offset == 0 and error.errno in (errno.EINVAL, errno.EOPNOTSUPP):
                yield 0, size
                return
            raise
        if start >= size:
            return
        yield start, end - start
        offset = end


def data_size(descriptor: int, size: int, limit: int) -> int:
    """The bytes of data (holes not counted) of an open file of apparent `size`, counted until
    they pass `limit` (then at least the allocated size, so a message can say how much)."""
    total = 0
    for _, length in data_regions(descriptor, size):
        total += length
        if total > limit:
            return max(total, os.fstat(descriptor).st_blocks * 512)
    return total


def nonzero_blocks(descriptor: int, size: int) -> Iterator[Block]:
    """The BLOCK-aligned pieces of an open file of apparent `size` that are not all zeros, in
    order (the last one may be shorter); holes are never read."""
    done = 0
    for start, length in data_regions(descriptor, size):
        offset = max(start - start % BLOCK, done)
        end = start + length
        while offset < end:
            data = os.pread(descriptor, min(BLOCK, size - offset), offset)
            if not data:
                return  # the file shrank meanwhile
            if data != (_BLOCK_ZEROS if len(data) == BLOCK else bytes(len(data))):
                yield offset, data
            offset += len(data)
        done = offset


class ContentHash:
    """The digest of a file of apparent `size` fed its non-zero blocks in order (`add`)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._plain: hashlib._Hash | None = hashlib.sha256()
        self._sparse = hashlib.sha256(b"pipe-sparse-1\0" + size.to_bytes(8, "big"))
        self._next = 0

    def add(self, offset: int, data: bytes) -> None:
        if offset != self._next:
            self._plain = None  # a zero block before this one
        if self._plain is not None:
            self._plain.update(data)
        self._sparse.update(offset.to_bytes(8, "big") + len(data).to_bytes(4, "big"))
        self._sparse.update(data)
        self._next = offset + len(data)

    def hexdigest(self) -> str:
        if self._plain is not None and self._next == self.size:
            return self._plain.hexdigest()
        return SPARSE + self._sparse.hexdigest()


def hash_blocks(blocks: Iterable[Block], size: int) -> str:
    """The digest (see ContentHash) of a file of apparent `size` with these non-zero `blocks`."""
    digest = ContentHash(size)
    for offset, data in blocks:
        digest.add(offset, data)
    return digest.hexdigest()


def hash_stream(chunks: Iterable[bytes]) -> str:
    """The SHA-256 hex digest of the concatenated `chunks`."""
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


class ObjectStore:
    """Blobs by SHA-256 hex digest in `root` (created when needed)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, digest: str) -> Path:
        digest = digest.removeprefix(MASKED).removeprefix(SPARSE)
        return self.root / digest[:2] / digest[2:]

    def has(self, digest: str) -> bool:
        return self.path(digest).exists()

    def put(self, data: bytes) -> str:
        """Store `data`; returns its digest."""
        digest = hashlib.sha256(data).hexdigest()
        target = self.path(digest)
        if target.exists():
            return digest
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(data)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return digest

    def put_blocks(self, blocks: Iterable[Block], size: int) -> str:
        """Store a file of apparent `size` from its non-zero `blocks` (zero blocks become holes);
        returns its digest (see ContentHash)."""
        self.root.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.root, prefix=".tmp-")
        digest = ContentHash(size)
        try:
            try:
                for offset, data in blocks:
                    digest.add(offset, data)
                    view = memoryview(data)
                    while view:
                        view = view[os.pwrite(handle, view, offset + len(data) - len(view)) :]
                os.ftruncate(handle, size)
            finally:
                os.close(handle)
            self._place(temporary, digest.hexdigest())
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return digest.hexdigest()

    def _place(self, temporary: str, digest: str) -> None:
        target = self.path(digest)
        if target.exists():
            os.unlink(temporary)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(temporary, target)

    def blocks(self, digest: str) -> tuple[int, Iterator[Block]]:
        """(apparent size, non-zero blocks) of an object; raises FileNotFoundError when it is
        missing."""
        descriptor = os.open(self.path(digest), os.O_RDONLY)
        size = os.fstat(descriptor).st_size

        def read() -> Iterator[Block]:
            try:
                yield from nonzero_blocks(descriptor, size)
            finally:
                os.close(descriptor)

        return size, read()

    def put_stream(self, chunks: Iterable[bytes], keep: Callable[[], bool] | None = None) -> str:
        """Store the concatenated `chunks` (any size, one chunk in memory at a time); returns the
        digest. Zero-filled CHUNK-sized pieces become holes. `keep`, asked once all is read,
        can say not to store it after all (only its digest is wanted)."""
        self.root.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.root, prefix=".tmp-")
        digest = hashlib.sha256()
        try:
            with os.fdopen(handle, "wb") as stream:
                for chunk in chunks:
                    digest.update(chunk)
                    if chunk == _ZEROS:
                        stream.seek(len(chunk), os.SEEK_CUR)
                    else:
                        stream.write(chunk)
                stream.truncate()
            if keep is not None and not keep():
                os.unlink(temporary)
            else:
                self._place(temporary, digest.hexdigest())
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return digest.hexdigest()

    def get(self, digest: str) -> bytes:
        """The bytes of an object; raises FileNotFoundError when it is missing."""
        return self.path(digest).read_bytes()

    def chunks(self, digest: str) -> Iterator[bytes]:
        """The bytes of an object in CHUNK-sized pieces; raises FileNotFoundError when it is
        missing (at the first `next`)."""
        with open(self.path(digest), "rb") as stream:
            while chunk := stream.read(CHUNK):
                yield chunk
