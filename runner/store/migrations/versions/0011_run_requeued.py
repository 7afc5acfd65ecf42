"""Runs note when a worker last enqueued them again (runner/workers/orphans.py): the runs of dead
workers and pending runs whose task was lost are enqueued again once per period across all
workers, not once per worker.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision: str | None = "0010"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add runs.requeued_at."""
    op.add_column("runs", sa.Column("requeued_at", sa.Double(), nullable=True))


def downgrade() -> None:
    """Drop runs.requeued_at."""
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("requeued_at")
