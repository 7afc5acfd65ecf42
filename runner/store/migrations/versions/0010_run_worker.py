"""Runs name the Celery worker that executed them (runner/workers/); NULL for an in-process run.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision: str | None = "0009"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add runs.worker."""
    op.add_column("runs", sa.Column("worker", sa.Text(), nullable=True))


def downgrade() -> None:
    """Drop runs.worker."""
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("worker")
