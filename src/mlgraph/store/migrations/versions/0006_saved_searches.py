"""Saved searches, their membership and the transition outbox (reverse search).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mlgraph.store.tables import Id, Json, Uri, UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "saved_search",
        sa.Column("id", Id, primary_key=True),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("dsl", sa.Text(), nullable=False),
        sa.Column("compiler_version", sa.Integer(), nullable=False),
        sa.Column("compiled", Json, nullable=False),
        sa.Column("mapping_digest", sa.String(32), nullable=False),
        sa.Column("revision", Id, nullable=False, unique=True),
        sa.Column("saved_tx", Id, nullable=False),
        sa.Column("built_tx", Id),
        sa.Column("built_revision", Id),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("owner", "name", name="uq_saved_search_owner_name"),
    )
    op.create_table(
        "search_membership",
        sa.Column("search", Id, sa.ForeignKey("saved_search.id"), nullable=False),
        sa.Column("uri", Uri, nullable=False),
        sa.Column("since_tx", Id, nullable=False),
        sa.PrimaryKeyConstraint("search", "uri"),
    )
    op.create_index("ix_search_membership_uri", "search_membership", ["uri"])
    op.create_table(
        "search_transition",
        sa.Column("id", Id, primary_key=True),
        sa.Column("search", Id, nullable=False),
        sa.Column("uri", Uri, nullable=False),
        sa.Column("tx", Id, nullable=False),
        sa.Column("transition", sa.String(10), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("delivered_at", UTCDateTime()),
        sa.UniqueConstraint("search", "uri", "tx", "transition", name="uq_search_transition_once"),
    )
    op.create_index("ix_search_transition_pending", "search_transition", ["delivered_at", "id"])
    op.create_index("ix_search_transition_search", "search_transition", ["search", "id"])


def downgrade() -> None:
    op.drop_table("search_transition")
    op.drop_table("search_membership")
    op.drop_table("saved_search")
