"""Reading and moving branch refs of a git repository by its files (loose refs and packed-refs),
without running git: used on repositories a sandbox could write to, whose config must never run."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

_SHA = re.compile(r"^[0-9a-f]{40}$")


_FORBIDDEN = frozenset(' ~^:?*[\\"\x7f')


def branch_problem(branch: str) -> str | None:
    """Why `branch` is not a valid branch name (git check-ref-format rules for refs/heads/<branch>,
    plus `"`, which would break a config section name), or None when it is valid."""
    if not branch:
        return "is empty"
    if ".." in branch:
        return "contains '..'"
    for character in branch:
        if character in _FORBIDDEN or ord(character) < 0x20:
            return f"contains {character!r}"
    if "@{" in branch:
        return "contains '@{'"
    if branch in ("@", "HEAD"):
        return f"is {branch!r}"
    if branch.startswith("-"):
        return "starts with '-'"
    if branch.startswith("/") or branch.endswith("/") or "//" in branch:
        return "has an empty path component"
    if branch.endswith("."):
        return "ends with '.'"
    for component in branch.split("/"):
        if component.startswith("."):
            return f"has a component starting with '.' ({component!r})"
        if component.endswith(".lock"):
            return f"has a component ending with '.lock' ({component!r})"
    return None


def _check(branch: str) -> str:
    problem = branch_problem(branch)
    if problem is not None:
        raise ValueError(f"invalid branch name {branch!r}: {problem}")
    return f"refs/heads/{branch}"


def read_branch(git_dir: Path, branch: str) -> str | None:
    """The commit id of `branch`, or None when it does not exist."""
    ref = _check(branch)
    loose = git_dir / ref
    if loose.is_file() and not loose.is_symlink():
        value = loose.read_text().strip()
        return value if _SHA.match(value) else None
    packed = git_dir / "packed-refs"
    if packed.is_file() and not packed.is_symlink():
        for line in packed.read_text().splitlines():
            sha, _, name = line.partition(" ")
            if name == ref and _SHA.match(sha):
                return sha
    return None


def write_branch(git_dir: Path, branch: str, sha: str) -> None:
    """Point `branch` at `sha` (a loose ref written atomically; it wins over packed-refs)."""
    if not _SHA.match(sha):
        raise ValueError(f"invalid commit id {sha!r}")
    path = git_dir / _check(branch)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".pipe-")
    with os.fdopen(handle, "w") as stream:
        stream.write(sha + "\n")
    os.replace(temporary, path)


def delete_branch(git_dir: Path, branch: str) -> None:
    """Remove `branch` from the loose refs and from packed-refs."""
    ref = _check(branch)
    (git_dir / ref).unlink(missing_ok=True)
    packed = git_dir / "packed-refs"
    if packed.is_file() and not packed.is_symlink():
        lines = packed.read_text().splitlines(keepends=True)
        kept, skip_peeled = [], False
        for line in lines:
            if skip_peeled and line.startswith("^"):
                continue
            skip_peeled = line.rstrip("\n").endswith(" " + ref)
            if not skip_peeled:
                kept.append(line)
        if kept != lines:
            handle, temporary = tempfile.mkstemp(dir=git_dir, prefix=".pipe-")
            with os.fdopen(handle, "w") as stream:
                stream.writelines(kept)
            os.replace(temporary, packed)


def head_branch(git_dir: Path) -> str | None:
    """The branch HEAD points at (the default branch of a bare repository)."""
    head = git_dir / "HEAD"
    if not head.is_file():
        return None
    value = head.read_text().strip()
    return value[len("ref: refs/heads/") :] if value.startswith("ref: refs/heads/") else None
