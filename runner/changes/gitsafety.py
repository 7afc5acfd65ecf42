"""Git hygiene for the workspace repository, which any sandbox step could have written: refusing one
that sends git elsewhere, rewriting its config to a known-good one, and running git on the host with
no configuration but that one (no system or global config, no hooks, no fsmonitor, no replace refs).

A repository is refused when `.git` is not a plain directory (a `gitdir:` file, a symlink), when it
redirects (`commondir`, `objects/info/alternates`, `worktrees/`...) or when anything below it is a
symlink or a special file. After the check and the config rewrite, git reads nothing a step chose
but the index, the refs and the objects, so neither git on the host nor git in a sandbox runs a
program the workspace named.
"""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

from runner.changes.snapshot import Workspace
from runner.errors import PipeError

# Files that make git read config, objects or refs from somewhere else.
REDIRECTS = (
    "commondir",
    "gitdir",
    "config.worktree",
    "worktrees",
    "objects/info/alternates",
    "objects/info/http-alternates",
    "info/grafts",
)
# Settings given on git's command line (protected configuration: the repository cannot override them).
PINNED_CONFIG = (
    "core.hooksPath=/dev/null",
    "core.fsmonitor=false",
    "core.askPass=",
    "credential.helper=",
    "diff.external=",
    "safe.directory=*",
    "protocol.file.allow=always",
    "advice.detachedHead=false",
    "init.defaultBranch=main",
)


class UnsafeRepository(PipeError):
    """The workspace's `.git` is not a plain repository pipe can let git run in (a failed step)."""


def check_repository(workspace: Path) -> bool:
    """True when `workspace/.git` is a plain repository, False when there is none; raises
    UnsafeRepository (message: what is wrong, e.g. "`.git` is a symlink") otherwise."""
    git_dir = workspace / ".git"
    try:
        info = os.lstat(git_dir)
    except FileNotFoundError:
        return False
    if stat.S_ISLNK(info.st_mode):
        raise UnsafeRepository("`.git` is a symlink")
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafeRepository("`.git` is not a directory (a gitdir file sends git elsewhere)")
    for name in REDIRECTS:
        if os.path.lexists(git_dir / name):
            raise UnsafeRepository(f"`.git/{name}` sends git outside the repository")
    _check_tree(git_dir, ".git")
    return True


def _check_tree(directory: Path, shown: str) -> None:
    with os.scandir(directory) as entries:
        for entry in entries:
            name = f"{shown}/{entry.name}"
            if entry.is_symlink():
                raise UnsafeRepository(f"`{name}` is a symlink")
            if entry.is_dir(follow_symlinks=False):
                _check_tree(Path(entry.path), name)
            elif not entry.is_file(follow_symlinks=False):
                raise UnsafeRepository(f"`{name}` is not a regular file")


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def sanitize_repository(workspace: Path, origin: str | None, branch: str | None) -> None:
    """Replace `.git/config` by a minimal one (origin and branch tracking only). Call after
    check_repository; `origin` and `branch` must be single lines."""
    lines = [
        "[core]",
        "\trepositoryformatversion = 0",
        "\tfilemode = true",
        "\tbare = false",
        "\tlogallrefupdates = true",
    ]
    if origin:
        lines += ['[remote "origin"]', f"\turl = {_quoted(origin)}", "\tfetch = +refs/heads/*:refs/remotes/origin/*"]
    if branch:
        lines += [f"[branch {_quoted(branch)}]", "\tremote = origin", f"\tmerge = {_quoted('refs/heads/' + branch)}"]
    owner = os.stat(workspace)
    Workspace(workspace).write_file(
        ".git/config", ("\n".join(lines) + "\n").encode(), 0o644, owner.st_uid, owner.st_gid
    )


def environment(workspace: Path) -> dict[str, str]:
    """The environment of git on the host for `workspace`'s repository: its git dir and work tree
    pinned, no system or global config, no replace refs, no prompts, no optional locks."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": "/nonexistent",
        "LC_ALL": "C",
        "GIT_DIR": str(workspace / ".git"),
        "GIT_WORK_TREE": str(workspace),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_ATTR_NOSYSTEM": "1",
        "GIT_NO_REPLACE_OBJECTS": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_OPTIONAL_LOCKS": "0",
    }


def host_git(workspace: Path, *args: str) -> str:
    """Run `git ARGS` on the host for `workspace`'s repository (already checked and sanitized) and
    return its standard output; raises UnsafeRepository with git's last line when git fails."""
    command = ["git"]
    for setting in PINNED_CONFIG:
        command += ["-c", setting]
    result = subprocess.run(
        [*command, *args], capture_output=True, text=True, env=environment(workspace), check=False, cwd=workspace
    )
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines() or [f"exit code {result.returncode}"]
        raise UnsafeRepository(f"git {args[0]} failed: {lines[-1]}")
    return result.stdout


def give_back(workspace: Path, uid: int, gid: int) -> None:
    """When pipe runs as root, hand what git on the host wrote in `.git` to the sandbox user."""
    if os.geteuid() != 0:
        return
    for directory, names, files in os.walk(workspace / ".git"):
        for name in [*names, *files, ""]:
            path = os.path.join(directory, name)
            if os.lstat(path).st_uid != uid:
                os.lchown(path, uid, gid)


def refs(workspace: Path) -> dict[str, str]:
    """Every ref of the repository and HEAD (when it resolves) -> commit id."""
    found: dict[str, str] = {}
    listing = host_git(workspace, "for-each-ref", "--format=%(objectname) %(refname)")
    for line in listing.splitlines():
        sha, _, name = line.partition(" ")
        found[name] = sha
    head = _try(workspace, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    if head:
        found["HEAD"] = head.strip()
    return found


def _try(workspace: Path, *args: str) -> str | None:
    try:
        return host_git(workspace, *args)
    except UnsafeRepository:
        return None


def _names(output: str) -> set[str]:
    return {name.strip("\n") for name in output.split("\0") if name.strip("\n")}


def committable_paths(workspace: Path, before: dict[str, str]) -> set[str]:
    """Paths that what is staged or committed would change, compared with the refs `before`: the
    index against the commit HEAD was at, and every new or moved ref against it, commit by commit."""
    base = before.get("HEAD")
    found: set[str] = set()
    if base:
        found |= _names(host_git(workspace, "diff", "--cached", "--no-renames", "--name-only", "-z", base))
    else:
        found |= _names(host_git(workspace, "ls-files", "-z"))
    for name, sha in refs(workspace).items():
        if before.get(name) == sha:
            continue
        walked = [sha, f"^{base}"] if base else [sha]
        log = host_git(workspace, "log", "--no-renames", "--format=", "--name-only", "-z", *walked, "--")
        found |= _names(log)
        if base:
            found |= _names(host_git(workspace, "diff", "--no-renames", "--name-only", "-z", base, sha, "--"))
    return found


def fetch(workspace: Path, source: str, refspecs: Iterable[str], tags: bool) -> None:
    """Fetch `refspecs` from the repository at host path `source` into the workspace's repository
    (created when missing)."""
    if not (workspace / ".git").exists():
        host_git(workspace, "init", "--quiet")
    host_git(workspace, "fetch", "--quiet", "--tags" if tags else "--no-tags", source, *refspecs)


def changed_since(workspace: Path, base: str | None, pathspecs: Sequence[str] = ()) -> set[str]:
    """Paths that `git add -A -- PATHSPECS`, a commit and a push of HEAD would change beyond
    commit `base` (None: the commit HEAD is at; every tracked and untracked path when HEAD is
    unborn): the work tree and untracked files not ignored (within `pathspecs`, when given), the
    index, and every commit from `base` to HEAD one by one (a change made and reverted still
    travels). Read-only; raises UnsafeRepository when git fails."""
    head = _try(workspace, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    head = head.strip() if head else None
    start = base or head
    found = _names(host_git(workspace, "ls-files", "--others", "--exclude-standard", "-z", "--", *pathspecs))
    if not start:
        return found | _names(host_git(workspace, "ls-files", "-z"))
    found |= _names(host_git(workspace, "diff", "--no-renames", "--name-only", "-z", start, "--", *pathspecs))
    found |= _names(host_git(workspace, "diff", "--cached", "--no-renames", "--name-only", "-z", start, "--"))
    if head:
        walked = [head, f"^{start}"]
        found |= _names(host_git(workspace, "log", "--no-renames", "--format=", "--name-only", "-z", *walked, "--"))
    return found
