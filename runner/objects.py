"""A content-addressed object store under the state directory: `objects/ab/cdef...` by SHA-256.

Objects are written to a temporary file and moved into place, so a killed process never leaves a
partial object under its final name; writing an object that exists is a no-op. Objects are not
fsynced: like the store (SQLite WAL, synchronous=NORMAL) they survive `kill -9` of pipe, which is
the promise (DESIGN.md principle 9), not a power cut.

Contents are streamed in CHUNK-byte pieces (`put_stream`, `chunks`), so a file of any size is
kept with bounded memory; runs of zero bytes are written as holes (a sparse file stays sparse).
A digest written `masked-<sha256>` names an object whose bytes are a masked copy of what was
recorded (a secret replaced by `***`, see runner/changes.py): the object is still stored under its
own SHA-256, the prefix only tells readers it cannot be restored as it was.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

CHUNK = 1 << 20
MASKED = "masked-"
_ZEROS = bytes(CHUNK)


def is_masked(digest: str | None) -> bool:
    """Whether `digest` names a masked copy (see the module's docstring)."""
    return digest is not None and digest.startswith(MASKED)


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
        digest = digest.removeprefix(MASKED)
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

    def put_stream(self, chunks: Iterable[bytes]) -> str:
        """Store the concatenated `chunks` (any size, one chunk in memory at a time); returns the
        digest. Zero-filled CHUNK-sized pieces become holes."""
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
            target = self.path(digest.hexdigest())
            if target.exists():
                os.unlink(temporary)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(temporary, target)
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
