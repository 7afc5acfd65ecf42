"""The webhook deliveries `pipe serve` received, so that a replay of one starts nothing."""

from __future__ import annotations

import time

from sqlalchemy import select, update

from runner.store.connection import Connection
from runner.store.records import DeliveryRecord, decode
from runner.store.tables import deliveries


class DeliveryTables(Connection):
    """Table `deliveries`: one row per X-GitHub-Delivery id seen, with its body's SHA-256 (unique)."""

    def record_delivery(self, delivery_id: str, event: str, action: str | None, body_sha256: str | None = None) -> bool:
        """Note delivery `delivery_id` (GitHub's X-GitHub-Delivery header) of `event` / `action`
        whose raw body has the hex SHA-256 `body_sha256`; False when that id or that body was
        recorded before (a replay, whatever delivery id it carries: the caller ignores it).
        Atomic: of two concurrent callers with one id or one body, exactly one gets True."""
        with self.transaction() as db:
            result = db.execute(
                self._upsert(deliveries)
                .values(id=delivery_id, event=event, action=action, received_at=time.time(), body_sha256=body_sha256)
                .on_conflict_do_nothing()  # no target: a clash on the id or on the body's digest
                .returning(deliveries.c.id)  # a row back only when inserted (rowcount is not portable here)
            )
            return result.first() is not None

    def link_delivery(self, delivery_id: str, run_id: str) -> None:
        """Note that delivery `delivery_id` started run `run_id` (a no-op for an unknown delivery)."""
        with self.transaction() as db:
            db.execute(update(deliveries).where(deliveries.c.id == delivery_id).values(run_id=run_id))

    def delivery(self, delivery_id: str) -> DeliveryRecord | None:
        """The recorded delivery `delivery_id`, or None."""
        row = self._one(select(deliveries).where(deliveries.c.id == delivery_id))
        return decode(DeliveryRecord, row) if row else None
