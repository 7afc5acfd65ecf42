"""Fingerprints of directory trees and a reporter that takes one after every step."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def fingerprint(root: Path, *, skip_git: bool = False) -> dict[str, tuple[str, int, str]]:
    """path -> (kind, permission bits, sha256 or symlink target) for everything below `root`
    (but `.git/objects`, or all of `.git` with `skip_git`), never following symlinks."""
    found: dict[str, tuple[str, int, str]] = {}
    for directory, dirs, files in os.walk(root):
        relative_dir = os.path.relpath(directory, root)
        for name in list(dirs) + files:
            path = os.path.normpath(os.path.join(relative_dir, name))
            if path == ".git/objects" or (skip_git and (path == ".git" or path.startswith(".git/"))):
                if name in dirs:
                    dirs.remove(name)
                continue
            full = os.path.join(directory, name)
            st = os.lstat(full)
            if stat.S_ISLNK(st.st_mode):
                found[path] = ("symlink", 0, os.readlink(full))
            elif stat.S_ISDIR(st.st_mode):
                found[path] = ("dir", stat.S_IMODE(st.st_mode), "")
            else:
                found[path] = ("file", stat.S_IMODE(st.st_mode), hashlib.sha256(Path(full).read_bytes()).hexdigest())
    return found


class TreeRecorder:
    """A reporter that fingerprints the run's workspace when the run starts and after each step."""

    def __init__(self) -> None:
        self.workspace: Path | None = None
        self.trees: dict[str, dict[str, tuple[str, int, str]]] = {}

    def event(self, kind: str, data: Mapping[str, Any]) -> None:
        if kind == "run_started":
            self.workspace = Path(data["workspace"])
            self.trees["(start)"] = fingerprint(self.workspace)
        elif kind == "step_finished" and self.workspace is not None:
            self.trees[data["step"]] = fingerprint(self.workspace)

    def output(self, step: str, text: str) -> None:
        pass

    def close(self) -> None:
        pass


def git_environment() -> dict[str, str]:
    """The environment for git commands a test runs on the host: no user or system config, a fixed identity."""
    return {
        **os.environ,
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }


def bare_origin(work: Path, bare: Path) -> None:
    """Commit the tree at `work` on `main` and clone it bare to `bare` (a forge's origin)."""
    environment = git_environment()
    for argv in (
        ["git", "init", "-q", "-b", "main"],
        ["git", "add", "-A"],
        ["git", "commit", "-qm", "initial"],
        ["git", "clone", "-q", "--bare", str(work), str(bare)],
    ):
        subprocess.run(argv, cwd=work, check=True, env=environment)


def git_repository(path: Path, files: Mapping[str, str]) -> None:
    """A git repository at `path` with `files` committed on `main` (made on the host by the test,
    before any sandbox touched it)."""
    path.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    environment = git_environment()
    for argv in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"], ["git", "commit", "-qm", "initial"]):
        subprocess.run(argv, cwd=path, check=True, env=environment)
    if os.geteuid() == 0:
        for directory, dirs, files_ in os.walk(path):
            for name in [*dirs, *files_, ""]:
                os.lchown(os.path.join(directory, name), 1000, 1000)
