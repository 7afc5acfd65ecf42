"""Runs note the broker queue they were submitted to: a worker that enqueues a run again (its
worker died, or its task was lost) sends it back to that queue, not to its own first queue.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision: str | None = "0011"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add runs.queue; the runs workers executed or `pipe submit` created before were sent to
    the default queue, `pipe`, unless their submitter named another (which was not recorded)."""
    op.add_column("runs", sa.Column("queue", sa.Text(), nullable=True))
    op.execute("UPDATE runs SET queue = 'pipe' WHERE worker IS NOT NULL OR trigger = 'submit'")


def downgrade() -> None:
    """Drop runs.queue."""
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("queue")
