"""The webhook deliveries `pipe serve` received, so that a replay of one starts nothing."""

from __future__ import annotations

import time

from runner.store.connection import Connection
from runner.store.records import DeliveryRecord, decode


class DeliveryTables(Connection):
    """Table `deliveries`: one row per X-GitHub-Delivery id seen, with its body's SHA-256 (unique)."""

    def record_delivery(self, delivery_id: str, event: str, action: str | None, body_sha256: str | None = None) -> bool:
        """Note delivery `delivery_id` (GitHub's X-GitHub-Delivery header) of `event` / `action`
        whose raw body has the hex SHA-256 `body_sha256`; False when that id or that body was
        recorded before (a replay, whatever delivery id it carries: the caller ignores it).
        Atomic: of two concurrent callers with one id or one body, exactly one gets True."""
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT INTO deliveries (id, event, action, received_at, body_sha256) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (delivery_id, event, action, time.time(), body_sha256),
            )
            return bool(cursor.rowcount)

    def link_delivery(self, delivery_id: str, run_id: str) -> None:
        """Note that delivery `delivery_id` started run `run_id` (a no-op for an unknown delivery)."""
        with self.transaction() as db:
            db.execute("UPDATE deliveries SET run_id = ? WHERE id = ?", (run_id, delivery_id))

    def delivery(self, delivery_id: str) -> DeliveryRecord | None:
        """The recorded delivery `delivery_id`, or None."""
        row = self._one("SELECT * FROM deliveries WHERE id = ?", (delivery_id,))
        return decode(DeliveryRecord, row) if row else None
