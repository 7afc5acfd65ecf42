"""Recorded changes and the workspace manifest in the store (what they mean:
runner/changes/recording.py)."""

from __future__ import annotations

import json
import time
from typing import Any

from runner.store.connection import Connection
from runner.store.records import ChangeRecord, decode

# A manifest row without its run id: path, kind, mode, uid, gid, size, digest, target, ctime_ns,
# st_size, ino, st_mode, links.
ManifestRow = tuple[Any, ...]
_MANIFEST_COLUMNS = (
    "path",
    "kind",
    "mode",
    "uid",
    "gid",
    "size",
    "digest",
    "target",
    "ctime_ns",
    "st_size",
    "ino",
    "st_mode",
    "links",
)
_MANIFEST_UPSERT = (
    f"INSERT INTO manifest (run_id, {', '.join(_MANIFEST_COLUMNS)})"
    f" VALUES (?, {', '.join('?' * len(_MANIFEST_COLUMNS))})"
    " ON CONFLICT (run_id, path) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in _MANIFEST_COLUMNS[1:])
)
_MANIFEST_DELETE = "DELETE FROM manifest WHERE run_id = ? AND path = ?"


class ChangeTables(Connection):
    """Tables `changes` and `manifest` (the workspace as the run's last recorded attempt left it)."""

    def last_change_id(self, run_id: str) -> int:
        """The id of the run's newest change (0: none yet)."""
        row = self._one("SELECT MAX(id) FROM changes WHERE run_id = ?", (run_id,))
        return int(row[0] or 0) if row else 0

    def save_changes(
        self,
        run_id: str,
        changes: list[tuple[str, int, int, str, str, dict[str, Any]]],
        upserts: list[ManifestRow],
        deletes: list[str],
    ) -> None:
        """In one transaction: add `changes` (step, iteration, attempt, type, target, data) and
        bring the manifest up to date (`upserts`: manifest rows without run_id; `deletes`: paths)."""
        now = time.time()
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO changes (run_id, step_id, iteration, attempt, type, target, data, recorded_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(run_id, s, i, a, t, target, json.dumps(d), now) for s, i, a, t, target, d in changes],
            )
            db.executemany(_MANIFEST_UPSERT, [(run_id, *row) for row in upserts])
            db.executemany(_MANIFEST_DELETE, [(run_id, path) for path in deletes])

    def manifest_rows(self, run_id: str) -> list[dict[str, Any]]:
        """The run's manifest, one {column: value} per path (columns as ManifestRow lists them)."""
        rows = self._all(f"SELECT {', '.join(_MANIFEST_COLUMNS)} FROM manifest WHERE run_id = ?", (run_id,))
        return [dict(zip(_MANIFEST_COLUMNS, row, strict=True)) for row in rows]

    def has_manifest(self, run_id: str) -> bool:
        """Whether the run recorded a manifest (a baseline) yet."""
        return self._one("SELECT 1 FROM manifest WHERE run_id = ? LIMIT 1", (run_id,)) is not None

    def changes(self, run_id: str, *, after_id: int = 0, pending_only: bool = False) -> list[ChangeRecord]:
        """A run's changes with ids above `after_id`, in recorded order (`pending_only`: not undone yet)."""
        undone = " AND undone_at IS NULL" if pending_only else ""
        rows = self._all(f"SELECT * FROM changes WHERE run_id = ? AND id > ?{undone} ORDER BY id", (run_id, after_id))
        return [decode(ChangeRecord, row) for row in rows]

    def mark_undone(
        self, change_id: int, manifest_upsert: ManifestRow | None, manifest_delete: str | None, run_id: str
    ) -> None:
        """Mark a change undone and set its path's manifest entry (or delete it), in one transaction."""
        with self.transaction() as db:
            db.execute("UPDATE changes SET undone_at = ? WHERE id = ?", (time.time(), change_id))
            if manifest_upsert is not None:
                db.execute(_MANIFEST_UPSERT, (run_id, *manifest_upsert))
            if manifest_delete is not None:
                db.execute(_MANIFEST_DELETE, (run_id, manifest_delete))
