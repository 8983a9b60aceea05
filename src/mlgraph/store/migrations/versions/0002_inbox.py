"""The ingest inbox (durable, deduplicated) and the dead-letter table; URIs in byte order.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from mlgraph.store.tables import Id, Json, UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("node", "uri", type_=postgresql.VARCHAR(2000, collation="C"))
    op.create_table(
        "inbox",
        sa.Column("id", Id, primary_key=True),
        sa.Column("event_id", sa.String(300), nullable=False, unique=True),
        sa.Column("subject", sa.String(2000), nullable=False),
        sa.Column("source", sa.String(100)),
        sa.Column("event_type", sa.String(200), nullable=False),
        sa.Column("payload", Json, nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("not_before", UTCDateTime(), nullable=False),
        sa.Column("last_error", sa.Text()),
    )
    op.create_index("ix_inbox_due", "inbox", ["status", "not_before"])
    op.create_index("ix_inbox_subject", "inbox", ["subject", "status"])
    op.create_table(
        "dead_letter",
        sa.Column("id", Id, primary_key=True),
        sa.Column("event_id", sa.String(300), nullable=False),
        sa.Column("subject", sa.String(2000)),
        sa.Column("source", sa.String(100)),
        sa.Column("event_type", sa.String(200)),
        sa.Column("payload", Json, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("failed_at", UTCDateTime(), nullable=False),
        sa.Column("replayed_at", UTCDateTime()),
    )
    op.create_index("ix_dead_letter_open", "dead_letter", ["replayed_at", "id"])


def downgrade() -> None:
    op.drop_table("dead_letter")
    op.drop_table("inbox")
