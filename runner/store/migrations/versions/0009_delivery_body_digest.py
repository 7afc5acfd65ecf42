"""Deliveries keep their body's SHA-256, unique: X-GitHub-Delivery is not signed, so a captured body
replayed under a new delivery id is a duplicate all the same (runner/serve/dispatch.py).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add deliveries.body_sha256 and its unique index (NULLs of older rows do not collide)."""
    op.add_column("deliveries", sa.Column("body_sha256", sa.Text(), nullable=True))
    op.create_index("deliveries_by_body", "deliveries", ["body_sha256"], unique=True)


def downgrade() -> None:
    """Drop the index and the column."""
    op.drop_index("deliveries_by_body", table_name="deliveries")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("body_sha256")
