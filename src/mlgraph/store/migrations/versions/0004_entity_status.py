"""Entity status: when each entity was last hydrated and enriched, and unresolved references.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mlgraph.store.tables import Id, UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "entity_status",
        sa.Column("node", Id, sa.ForeignKey("node.id"), primary_key=True, autoincrement=False),
        sa.Column("hydrated_at", UTCDateTime()),
        sa.Column("enriched_at", UTCDateTime()),
        sa.Column("unresolved", sa.Text()),
        sa.Column("unresolved_at", UTCDateTime()),
    )
    op.create_index("ix_entity_status_unresolved", "entity_status", ["unresolved_at"])


def downgrade() -> None:
    op.drop_table("entity_status")
