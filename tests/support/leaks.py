"""Finding a secret on disk: every file below a directory that holds any form of it."""

from __future__ import annotations

import base64
import os
from pathlib import Path

from runner.masking import variants


def forms(secret: str) -> set[bytes]:
    """The bytes a leak of `secret` would show: raw, every masked variant, and plain base64."""
    found = {v.encode() for v in variants(secret)}
    found.add(base64.b64encode(secret.encode()))
    found.add(base64.b64encode((secret + "\n").encode()))
    return found


def leaks(root: Path, *secrets: str) -> list[str]:
    """Every regular file below `root` (symlinks not followed) holding any form of any of
    `secrets`, as 'path: form'."""
    wanted = set().union(*(forms(secret) for secret in secrets))
    found = []
    for directory, _, files in os.walk(root):
        for name in files:
            path = Path(directory, name)
            if path.is_symlink() or not path.is_file():
                continue
            data = path.read_bytes()
            found += [f"{path.relative_to(root)}: {form!r}" for form in wanted if form in data]
    return found
