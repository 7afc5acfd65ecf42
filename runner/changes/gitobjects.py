"""Keeping the git objects of a run's workspace repository where every worker reads them, so that
a run taken over by another worker (runner/workers/resume.py) gets them back.

Change recording does not walk `.git/objects` (runner/changes/snapshot.py SKIPPED): git objects
are immutable and only ever added, and a clone's pack can be large, so the manifest has the
directory but not its files. A run executed by a Celery worker keeps them anyway, after each
attempt: every loose object (`.git/objects/XX/…`) and pack file (`.git/objects/pack/pack-….pack`,
`.idx`, `.rev`, `.bitmap`) not kept yet is copied into the object store (the shared state
directory), and the list {path below .git/objects: digest} is itself an object, whose digest
the run's resume state holds (ResumeState.git_objects).

The workspace is the sandbox's: files are opened through Workspace (O_NOFOLLOW on every
component), only names git gives its objects are taken, and a symlink, a file that is not
regular or one over PIPE_MAX_RECORD_FILE bytes is left out (a rebuilt repository then lacks
that object, and the step that needs it fails with git's own message). Contents are kept as git
wrote them (zlib-compressed): masking cannot see into them, so a secret a step committed is in
the object store as it is in the commit the run pushes.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
from collections.abc import Iterator, Mapping

from runner.changes.limits import Limits
from runner.changes.objects import ObjectStore
from runner.changes.snapshot import Workspace, read_chunks

ROOT = ".git/objects"
_LOOSE_DIRECTORY = re.compile(r"[0-9a-f]{2}")
_LOOSE = re.compile(r"[0-9a-f]{38}|[0-9a-f]{62}")  # SHA-1 or SHA-256 repositories
_PACK = re.compile(r"pack-(?:[0-9a-f]{40}|[0-9a-f]{64})\.(?:pack|idx|rev|bitmap)")
_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


class GitObjects:
    """The kept git objects of one workspace: `listing` {path below .git/objects: digest}, grown
    by `keep`; `digest` names the stored listing (None until something was kept)."""

    def __init__(
        self, workspace: Workspace, objects: ObjectStore, digest: str | None = None, limits: Limits | None = None
    ) -> None:
        """Objects of `workspace` kept in `objects`; `digest`, a listing stored before (a run
        that continues), is read back so nothing is copied twice."""
        self.workspace = workspace
        self.objects = objects
        self.digest = digest
        self.per_file = (limits or Limits.from_environ()).per_file
        self.listing: dict[str, str] = read_listing(objects, digest)

    def keep(self) -> bool:
        """Copy the objects not kept yet into the object store and store the new listing. Returns
        whether anything was added (the caller then saves `digest` with the run's state)."""
        added = False
        for path in _object_paths(self.workspace):
            if path in self.listing:
                continue
            try:
                with self.workspace.open_file(f"{ROOT}/{path}") as (descriptor, entry):
                    if entry.size > self.per_file:
                        continue
                    self.listing[path] = self.objects.put_stream(read_chunks(descriptor))
                    added = True
            except OSError:  # gone (git repacked meanwhile), a symlink, not a regular file
                continue
        if added:
            self.digest = self.objects.put(json.dumps(self.listing, sort_keys=True).encode())
        return added


def read_listing(objects: ObjectStore, digest: str | None) -> dict[str, str]:
    """The listing stored under `digest` ({} for None). Raises FileNotFoundError when the object
    store lacks it, ValueError when it is not a listing."""
    if digest is None:
        return {}
    data = json.loads(objects.get(digest))
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise ValueError(f"object {digest} is not a listing of git objects")
    return {path: value for path, value in data.items() if _valid(path)}


def restore(workspace: Workspace, objects: ObjectStore, listing: Mapping[str, str]) -> int:
    """Put the objects of `listing` back into the workspace's `.git/objects` (which must exist as
    a directory: nothing is done otherwise), read-only (0444) and owned as that directory is.
    Objects already there are left as they are. Returns how many were written. Raises
    FileNotFoundError when the object store lacks one."""
    top = workspace.lstat(ROOT)
    if top is None or top.kind != "dir":
        return 0
    written = 0
    for path, digest in sorted(listing.items()):
        if not _valid(path) or workspace.lstat(f"{ROOT}/{path}") is not None:
            continue
        folder = path.split("/")[0]
        if workspace.lstat(f"{ROOT}/{folder}") is None:
            workspace.make_directory(f"{ROOT}/{folder}", 0o755, top.uid, top.gid)
        workspace.write_file(f"{ROOT}/{path}", objects.chunks(digest), 0o444, top.uid, top.gid)
        written += 1
    return written


def _valid(path: str) -> bool:
    folder, _, name = path.partition("/")
    if folder == "pack":
        return bool(_PACK.fullmatch(name))
    return bool(_LOOSE_DIRECTORY.fullmatch(folder) and _LOOSE.fullmatch(name))


def _object_paths(workspace: Workspace) -> Iterator[str]:
    """The paths below .git/objects with the names of git objects and packs (directories opened
    with O_NOFOLLOW; nothing when .git/objects is missing or not a directory)."""
    try:
        with workspace.parent(f"{ROOT}/x") as (top, _):
            for folder in _names(top, "."):
                if folder != "pack" and not _LOOSE_DIRECTORY.fullmatch(folder):
                    continue
                for name in _names(top, folder):
                    if _valid(f"{folder}/{name}"):
                        yield f"{folder}/{name}"
    except OSError:
        return


def _names(parent: int, name: str) -> list[str]:
    """The names in directory `name` of the directory open as `parent` ([] when it is not one)."""
    with contextlib.ExitStack() as stack:
        try:
            descriptor = os.open(name, _DIRECTORY, dir_fd=parent)
        except OSError:
            return []
        stack.callback(os.close, descriptor)
        with os.scandir(descriptor) as entries:
            return [item.name for item in entries if not stat.S_ISLNK(item.stat(follow_symlinks=False).st_mode)]
