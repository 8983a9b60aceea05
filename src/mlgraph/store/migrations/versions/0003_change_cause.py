"""Per-entity causes in the change feed: which source event led to each change.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("change") as batch:
        batch.add_column(sa.Column("source", sa.String(200)))
        batch.add_column(sa.Column("event_id", sa.String(500)))


def downgrade() -> None:
    with op.batch_alter_table("change") as batch:
        batch.drop_column("event_id")
        batch.drop_column("source")
