"""Workspace entries (runner/changes/snapshot.py) as the store keeps them: in a change's `data`
(`entry_data`, `entry_from_data`) and as a manifest row (`manifest_row`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runner.changes.snapshot import Entry


def entry_data(entry: Entry | None) -> dict[str, Any] | None:
    """`entry` as stored in a change's `before`/`after`: `Entry.describe()` plus mode, uid and gid."""
    if entry is None:
        return None
    return {**entry.describe(), "mode": entry.mode, "uid": entry.uid, "gid": entry.gid}


def entry_from_data(data: Mapping[str, Any] | None) -> Entry | None:
    """The Entry a change's stored `before`/`after` describes (the inverse of `entry_data`)."""
    if data is None:
        return None
    return Entry(
        kind=data["kind"],
        mode=int(data["mode"]),
        uid=int(data.get("uid", 0)),
        gid=int(data.get("gid", 0)),
        size=int(data.get("size", 0)),
        digest=data.get("sha256"),
        target=data.get("target"),
    )


def manifest_row(path: str, entry: Entry) -> tuple[Any, ...]:
    """The manifest columns (without run_id) for `entry` at `path`."""
    return (
        path,
        entry.kind,
        entry.mode,
        entry.uid,
        entry.gid,
        entry.size,
        entry.digest,
        entry.target,
        *entry.stamp,
        entry.links,
    )
