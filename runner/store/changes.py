"""Recorded changes and the workspace manifest in the store (what they mean:
runner/changes/recording.py)."""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.sql import Executable

from runner.store.connection import Connection, Database
from runner.store.records import ChangeRecord, decode
from runner.store.tables import changes as changes_table
from runner.store.tables import manifest

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


def _manifest_upsert(connection: Connection) -> Executable:
    statement = connection._upsert(manifest)
    return statement.on_conflict_do_update(
        index_elements=["run_id", "path"], set_={name: statement.excluded[name] for name in _MANIFEST_COLUMNS[1:]}
    )


class ChangeTables(Connection):
    """Tables `changes` and `manifest` (the workspace as the run's last recorded attempt left it)."""

    def last_change_id(self, run_id: str) -> int:
        """The id of the run's newest change (0: none yet)."""
        row = self._one(select(func.max(changes_table.c.id).label("last")).where(changes_table.c.run_id == run_id))
        return int(row["last"] or 0) if row else 0

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
            if changes:
                db.execute(
                    insert(changes_table),
                    [
                        {
                            "run_id": run_id,
                            "step_id": step,
                            "iteration": iteration,
                            "attempt": attempt,
                            "type": kind,
                            "target": target,
                            "data": json.dumps(data),
                            "recorded_at": now,
                        }
                        for step, iteration, attempt, kind, target, data in changes
                    ],
                )
            self._manifest_upsert(db, run_id, upserts)
            self._manifest_delete(db, run_id, deletes)

    def _manifest_upsert(self, db: Database, run_id: str, rows: list[ManifestRow]) -> None:
        """Insert or replace manifest rows (without run_id) inside the caller's transaction."""
        if not rows:
            return
        db.execute(
            self._statement("manifest_upsert", _manifest_upsert),
            [{"run_id": run_id, **dict(zip(_MANIFEST_COLUMNS, row, strict=True))} for row in rows],
        )

    @staticmethod
    def _manifest_delete(db: Database, run_id: str, paths: list[str]) -> None:
        """Delete the manifest rows of `paths` inside the caller's transaction."""
        if paths:
            db.execute(delete(manifest).where(manifest.c.run_id == run_id, manifest.c.path.in_(paths)))

    def manifest_rows(self, run_id: str) -> list[dict[str, Any]]:
        """The run's manifest, one {column: value} per path (columns as ManifestRow lists them)."""
        rows = self._all(select(*(manifest.c[name] for name in _MANIFEST_COLUMNS)).where(manifest.c.run_id == run_id))
        return [{name: row[name] for name in _MANIFEST_COLUMNS} for row in rows]

    def has_manifest(self, run_id: str) -> bool:
        """Whether the run recorded a manifest (a baseline) yet."""
        return self._one(select(manifest.c.path).where(manifest.c.run_id == run_id).limit(1)) is not None

    def changes(self, run_id: str, *, after_id: int = 0, pending_only: bool = False) -> list[ChangeRecord]:
        """A run's changes with ids above `after_id`, in recorded order (`pending_only`: not undone yet)."""
        query = select(changes_table).where(changes_table.c.run_id == run_id, changes_table.c.id > after_id)
        if pending_only:
            query = query.where(changes_table.c.undone_at.is_(None))
        rows = self._all(query.order_by(changes_table.c.id))
        return [decode(ChangeRecord, row) for row in rows]

    def mark_undone(
        self, change_id: int, manifest_upsert: ManifestRow | None, manifest_delete: str | None, run_id: str
    ) -> None:
        """Mark a change undone and set its path's manifest entry (or delete it), in one transaction."""
        with self.transaction() as db:
            db.execute(update(changes_table).where(changes_table.c.id == change_id).values(undone_at=time.time()))
            if manifest_upsert is not None:
                self._manifest_upsert(db, run_id, [manifest_upsert])
            if manifest_delete is not None:
                self._manifest_delete(db, run_id, [manifest_delete])
