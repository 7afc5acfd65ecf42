"""Change recording: what each step attempt did to the workspace, kept so it can be undone.

The store holds a manifest of the workspace per run: the state after the last recorded attempt.
After every attempt the workspace is walked (never following symlinks), compared with the manifest
by stat stamps, and every real difference becomes a change: file_create, file_modify or file_delete
(files, directories and symlinks, mode included), or for git refs in the workspace repository
branch_create, branch_delete, ref_update or commit. Prior and new file contents are kept
content-addressed (runner/changes/objects.py). Changes of the outside world (push, pr_create, ...)
are recorded by the actions that make them, through `record_external`.

Change `data`: {"path", "before": entry | null, "after": entry | null} with entries as
`snapshot.Entry.describe()` plus uid/gid; ref changes add "ref", "from" and "to" (commit ids).

Contents are streamed (any file size, bounded memory) through the run's Masker on their way to
the object store. A file holding a secret value in any masked form (raw, base64, URL-encoded, a
line of a multi-line value) is kept only as its masked copy: its digest is `masked-<sha256 of the
masked bytes>` and its entry says `"masked": true`, so nothing unmasked reaches the state
directory and diffs show `***`. What that costs:
- A masked "after" is still checked before it is undone: rollback compares kind, mode, size and the
  masked copy with the secrets as wildcards (runner/changes/rollback.py), then removes the file or
  puts the "before" back, so undoing the step that wrote the secret works as usual.
- A masked "before" (the file already held a secret before the change, e.g. a step rewrote a file
  an earlier step had put a secret in) cannot be put back: rollback and resume stop there with
  RollbackConflict saying so, and change nothing more.
- Digests of masked files depend on the secrets given to the run: a resumed run given other secret
  values sees such files as changed.

Only a file's data is read, never its holes (runner/changes/objects.py), and what one attempt
records is capped (`Limits`, from the environment; runner/changes/limits.py): PIPE_MAX_RECORD bytes
of file data per attempt (2 GiB), PIPE_MAX_RECORD_FILE per file (1 GiB, at most PIPE_MAX_RECORD)
and PIPE_MAX_RECORD_SECONDS of recording (300). A file over a cap is still recorded, by its
metadata only (an `unkept-` digest of size, mtime and inode), and the attempt fails with
`Recorder.refused` saying which file and why: rollback removes such a new file once its metadata
still matches, and refuses to put back content it never kept. The baseline of the workspace a run
starts with is not capped (it is the person's own), only read without its holes.
"""

from __future__ import annotations

import hashlib
import os
import re
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from runner.changes.entries import entry_data, manifest_row
from runner.changes.limits import Budget, Limits, OutOfTime, human
from runner.changes.objects import (
    MASKED,
    Block,
    ContentHash,
    ObjectStore,
    data_size,
    hash_blocks,
    hash_stream,
    is_sparse,
    nonzero_blocks,
    unkept_digest,
)
from runner.changes.snapshot import Entry, Stamp, Workspace
from runner.changes.watch import Dirty
from runner.masking import ByteMasker, Masker
from runner.store import Store

FILE_TYPES = ("file_create", "file_modify", "file_delete")
REF_TYPES = ("branch_create", "branch_delete", "ref_update", "commit")
# Effects outside the workspace the actions record; each is undone by the function an action registers in
# its `effects` (runner/actions/registry.py EXTERNAL_UNDO; tests/test_action_registry.py keeps the two equal).
EXTERNAL_TYPES = (
    "push",
    "pr_create",
    "pr_update",
    "comment_create",
    "release_create",
    "label_add",
    "thread_reply",
    "thread_resolve",
)
WORKSPACE_TYPES = FILE_TYPES + REF_TYPES
_REF_PATH = re.compile(r"^\.git/(HEAD|refs/.+)$")


@dataclass(frozen=True)
class PendingChange:
    """A difference found by a walk, before it is stored."""

    type: str
    path: str
    before: Entry | None
    after: Entry | None
    extra: Mapping[str, Any]

    def data(self) -> dict[str, Any]:
        return {"path": self.path, "before": entry_data(self.before), "after": entry_data(self.after), **self.extra}


class Recorder:
    """Records the workspace changes of one run (`run_id`) in `store`, contents in `objects`,
    masked with `masker` (the run's secrets; None masks nothing)."""

    def __init__(
        self, store: Store, objects: ObjectStore, workspace: Workspace, run_id: str, masker: Masker | None = None
    ) -> None:
        self.store = store
        self.objects = objects
        self.workspace = workspace
        self.run_id = run_id
        self.masker = masker
        self.limits = Limits.from_environ()
        self.refused: str | None = None  # why the last `record` failed its attempt (a cap), or None
        self._budget: Budget | None = None
        self._baseline = False
        self.manifest: dict[str, Entry] = {}
        self._stamps: dict[str, Stamp] = {}
        self._load()

    def _load(self) -> None:
        for row in self.store.manifest_rows(self.run_id):
            entry = Entry(
                kind=row["kind"],
                mode=row["mode"],
                uid=row["uid"],
                gid=row["gid"],
                size=row["size"],
                digest=row["digest"],
                target=row["target"],
                stamp=(row["ctime_ns"], row["st_size"], row["ino"], row["st_mode"]),
                links=row["links"],
            )
            self.manifest[row["path"]] = entry
            self._stamps[row["path"]] = entry.stamp

    def baseline(self) -> int:
        """When the run has no manifest yet, take one of the workspace as it is now (its file
        contents kept, so they can be restored); returns how many entries it holds."""
        if self.store.has_manifest(self.run_id) or self.manifest:
            return len(self.manifest)
        found = self.workspace.walk()
        rows = []
        self._baseline = True
        try:
            for path in sorted(found):
                entry = self._complete(path, found[path], keep=True)
                if entry is None:
                    continue
                self.manifest[path] = entry
                self._stamps[path] = entry.stamp
                rows.append(manifest_row(path, entry))
        finally:
            self._baseline = False
        self.store.save_changes(self.run_id, [], rows, [])
        return len(rows)

    def _complete(self, path: str, entry: Entry, keep: bool) -> Entry | None:
        """`entry` with its content: digest for files (the content stored when `keep`, and
        always for git's ref files), target for symlinks. None when it vanished meanwhile."""
        try:
            if entry.kind == "file":
                with self.workspace.open_file(path) as (descriptor, fresh):
                    digest = self._content(path, descriptor, keep or _REF_PATH.match(path) is not None)
                return replace(fresh, digest=digest)
            if entry.kind == "symlink":
                return replace(entry, target=self.workspace.readlink(path))
        except FileNotFoundError:
            return None
        except OSError:
            # Changed kind between the walk and now (e.g. became a symlink): look again.
            current = self.workspace.lstat(path)
            if current is None or current.kind == entry.kind:
                return None
            return self._complete(path, current, keep)
        return entry

    def _content(self, path: str, descriptor: int, keep: bool) -> str:
        """The digest of an open file's content, masked (see the module's docstring); the content
        is streamed into the object store when `keep`. Only its data is read, never its holes; a
        file over the caps (`limits`; not for the baseline) gets an `unkept-` digest, and while
        recording an attempt the reason goes to `refused`."""
        st = os.fstat(descriptor)
        size = st.st_size
        budget = self._budget
        if not self._baseline:
            if budget is not None and budget.expired():
                return self._refuse(path, st, f"{path}: not read, recording went past PIPE_MAX_RECORD_SECONDS")
            limits = self.limits
            held = data_size(descriptor, size, limits.per_file)
            fix = "remove it in the same step or raise PIPE_MAX_RECORD"
            if held > limits.per_file:
                cap = human(limits.per_file)
                return self._refuse(
                    path, st, f"{path} holds {human(held)} of data, more than pipe records for rollback ({cap}); {fix}"
                )
            if budget is not None:
                if held > budget.left:
                    cap = human(limits.total)
                    return self._refuse(
                        path,
                        st,
                        f"{path} holds {human(held)} of data, past what pipe records per attempt ({cap}); {fix}",
                    )
                budget.left -= held
        blocks: Iterator[Block] = nonzero_blocks(descriptor, size)
        if budget is not None:
            blocks = budget.watch(blocks)
        try:
            if self.masker is None:
                return self.objects.put_blocks(blocks, size) if keep else hash_blocks(blocks, size)
            return self._masked_content(descriptor, size, blocks, keep)
        except OutOfTime:
            limit = f"{self.limits.seconds:g}s"
            return self._refuse(path, st, f"{path}: recording went past {limit} (PIPE_MAX_RECORD_SECONDS)")

    def _masked_content(self, descriptor: int, size: int, blocks: Iterator[Block], keep: bool) -> str:
        """`_content` with the run's secrets: the masked bytes of the non-zero blocks are what is
        kept when a secret is found; otherwise the plain content (see ContentHash)."""
        assert self.masker is not None
        masker = ByteMasker(self.masker)
        content = ContentHash(size)

        def pieces() -> Iterator[bytes]:
            for offset, data in blocks:
                content.add(offset, data)
                yield data

        chunks = _masked(pieces(), masker)
        if not keep:
            digest = hash_stream(chunks)
            return MASKED + digest if masker.masked else content.hexdigest()
        # Without a secret and without zero blocks, the masked bytes are the file's: that object is the one kept.
        digest = self.objects.put_stream(chunks, keep=lambda: masker.masked or not is_sparse(content.hexdigest()))
        if masker.masked:
            return MASKED + digest
        found = content.hexdigest()
        if is_sparse(found):  # keep it with its holes (read again, once)
            return self.objects.put_blocks(nonzero_blocks(descriptor, size), size)
        return found

    def _refuse(self, path: str, st: os.stat_result, reason: str) -> str:
        """Record `path` by metadata only; when recording an attempt, fail it with `reason`."""
        if self._budget is not None:
            self._budget.refused.append(reason)
        return unkept_digest(st)

    def _candidates(self, dirty: Dirty | None) -> tuple[list[str], list[str]]:
        """(paths that exist and may have changed, manifest paths that no longer exist): from a
        full walk, or from the paths the kernel reported (`dirty`)."""
        known = self._stamps
        if dirty is None:
            current = self.workspace.stamps()
            candidates = [path for path, stamp in current.items() if known.get(path) != stamp]
            return candidates, [path for path in self.manifest if path not in current]
        paths = set(dirty.paths)
        if dirty.trees:
            prefixes = tuple(f"{tree}/" for tree in dirty.trees)
            paths.update(path for path in self.manifest if path.startswith(prefixes))
        existing: list[str] = []
        missing: list[str] = []
        by_inode: dict[int, list[str]] | None = None
        followed: set[int] = set()
        checked: set[str] = set()

        def siblings(inode: int) -> None:
            """A write through one name of a hard-linked file notifies only that name's directory:
            look at every name the manifest has for the inode."""
            nonlocal by_inode
            if inode in followed:
                return
            followed.add(inode)
            if by_inode is None:
                by_inode = {}
                for known_path, stamp in known.items():
                    by_inode.setdefault(stamp[2], []).append(known_path)
            paths.update(p for p in by_inode.get(inode, ()) if p not in checked)

        while paths:
            path = paths.pop()
            checked.add(path)
            previous = self.manifest.get(path)
            if previous is not None and previous.kind == "file" and previous.links > 1:
                siblings(known[path][2])  # whatever is there now, the old inode's other names
            entry = self.workspace.lstat(path)
            if entry is None:
                if previous is not None:
                    missing.append(path)
                continue
            if entry.kind == "file" and entry.links > 1:
                siblings(entry.stamp[2])
            if known.get(path) != entry.stamp:
                existing.append(path)
        return existing, missing

    def scan(self, dirty: Dirty | None = None, keep: bool = False) -> list[PendingChange]:
        """The differences between the workspace and the manifest, in an order whose reverse
        undoes them safely: deletions (deepest first), modifications, creations (parents first).
        `dirty` (from runner.changes.watch) limits the look to what the kernel reported; None walks all.
        `keep` stores the new contents (only `record` needs them)."""
        candidates, missing = self._candidates(dirty)
        deletions: list[PendingChange] = []
        modifications: list[PendingChange] = []
        creations: list[PendingChange] = []
        self._unchanged: dict[str, Entry] = {}
        for path in sorted(missing, reverse=True):
            deletions.append(self._change(path, self.manifest[path], None))
        for path in sorted(candidates):
            seen = self.workspace.lstat(path)
            after = self._complete(path, seen, keep) if seen is not None else None
            before = self.manifest.get(path)
            if after is None:
                if before is not None:
                    deletions.append(self._change(path, before, None))
                continue
            if before is None:
                creations.append(self._change(path, None, after))
            elif before.same_state(after):
                self._unchanged[path] = after
            elif before.kind != after.kind:
                deletions.append(self._change(path, before, None))
                creations.append(self._change(path, None, after))
            else:
                modifications.append(self._change(path, before, after))
        deletions.sort(key=lambda change: change.path, reverse=True)
        return deletions + modifications + creations

    def _change(self, path: str, before: Entry | None, after: Entry | None) -> PendingChange:
        match = _REF_PATH.match(path)
        if match and (before is None or before.kind == "file") and (after is None or after.kind == "file"):
            return self._ref_change(path, match.group(1), before, after)
        kind = "file_create" if before is None else "file_delete" if after is None else "file_modify"
        return PendingChange(kind, path, before, after, {})

    def _ref_change(self, path: str, ref: str, before: Entry | None, after: Entry | None) -> PendingChange:
        old = self._ref_value(before)
        new = self._ref_value(after)
        if before is None:
            kind = "branch_create" if ref.startswith("refs/heads/") else "ref_update"
        elif after is None:
            kind = "branch_delete" if ref.startswith("refs/heads/") else "ref_update"
        elif old and new and old in commit_parents(self.workspace.root, new):
            kind = "commit"
        else:
            kind = "ref_update"
        return PendingChange(kind, path, before, after, {"ref": ref, "from": old, "to": new})

    def _ref_value(self, entry: Entry | None) -> str | None:
        if entry is None or entry.digest is None:
            return None
        try:
            return self.objects.get(entry.digest).decode("utf-8", errors="replace").strip()
        except FileNotFoundError:
            return None

    def record(self, step_id: str, iteration: int, attempt: int, dirty: Dirty | None = None) -> list[PendingChange]:
        """Find and store the changes made since the manifest, as `step_id`'s; returns them.
        `dirty`: the paths the kernel reported changed (see `scan`). Files over the caps
        (`limits`) are recorded by metadata only and `refused` says why (else it is None)."""
        self._budget = Budget(self.limits)
        try:
            changes = self.scan(dirty, keep=True)
        finally:
            refused, self._budget = self._budget.refused, None
        self.refused = _summary(refused)
        upserts = []
        deletes = []
        for change in changes:
            if change.after is None:
                deletes.append(change.path)
                self.manifest.pop(change.path, None)
                self._stamps.pop(change.path, None)
        for change in changes:
            if change.after is not None:
                upserts.append(manifest_row(change.path, change.after))
                self.manifest[change.path] = change.after
                self._stamps[change.path] = change.after.stamp
        for path, entry in self._unchanged.items():
            upserts.append(manifest_row(path, entry))
            self.manifest[path] = entry
            self._stamps[path] = entry.stamp
        rows = [(step_id, iteration, attempt, c.type, c.path, c.data()) for c in changes]
        self.store.save_changes(self.run_id, rows, upserts, deletes)
        return changes

    def record_external(
        self, step_id: str, iteration: int, attempt: int, kind: str, target: str, data: Mapping[str, Any]
    ) -> None:
        """Record an effect outside the workspace (push, PR, comment, ...) with what undoes it."""
        if kind not in EXTERNAL_TYPES:
            raise ValueError(f"unknown external change type {kind!r}")
        self.store.save_changes(self.run_id, [(step_id, iteration, attempt, kind, target, dict(data))], [], [])

    def forget(self, paths: Iterable[str]) -> None:
        """Drop manifest stamps so the next scan looks at `paths` again (after a restore)."""
        for path in paths:
            self._stamps.pop(path, None)


def _summary(refused: list[str]) -> str | None:
    """One line for the reasons an attempt's recording failed (the first, and how many more)."""
    if not refused:
        return None
    more = f" (and {len(refused) - 1} more file(s) recorded by metadata only)" if len(refused) > 1 else ""
    return refused[0] + more


def _masked(chunks: Iterator[bytes], masker: ByteMasker) -> Iterator[bytes]:
    for chunk in chunks:
        yield masker.feed(chunk)
    yield masker.flush()


def commit_parents(workspace: Path, commit: str) -> list[str]:
    """The parents of a loose commit object in the workspace repository, read directly (no git
    process, so nothing in the workspace can run). Empty when the object is packed or unreadable."""
    if not re.fullmatch(r"[0-9a-f]{40}", commit):
        return []
    path = workspace / ".git" / "objects" / commit[:2] / commit[2:]
    try:
        if path.is_symlink():
            return []
        raw = zlib.decompress(path.read_bytes())
    except (OSError, zlib.error):
        return []
    header, _, body = raw.partition(b"\0")
    if not header.startswith(b"commit ") or hashlib.sha1(raw).hexdigest() != commit:
        return []
    parents = []
    for line in body.split(b"\n"):
        if not line:
            break
        if line.startswith(b"parent "):
            parents.append(line[7:].decode())
    return parents
