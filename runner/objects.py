"""A content-addressed object store under the state directory: `objects/ab/cdef...` by SHA-256.

Objects are written to a temporary file and moved into place, so a killed process never leaves a
partial object under its final name; writing an object that exists is a no-op. Objects are not
fsynced: like the store (SQLite WAL, synchronous=NORMAL) they survive `kill -9` of pipe, which is
the promise (DESIGN.md principle 9), not a power cut.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


class ObjectStore:
    """Blobs by SHA-256 hex digest in `root` (created when needed)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, digest: str) -> Path:
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

    def get(self, digest: str) -> bytes:
        """The bytes of an object; raises FileNotFoundError when it is missing."""
        return self.path(digest).read_bytes()
