"""Reverse search: relative-date due times, invalid searches and their dead letters.

``search_due`` holds, per (search, entity), the next time the passing of time
may flip whether the entity matches a search with ``now-...`` bounds.
``saved_search.invalid_reason`` marks a search that no longer compiles
against the mapping; ``saved_search_dead_letter`` keeps why, for its owner.
A transition's time joins the outbox's unique key: time alone can make an
entity enter, leave and enter again while the store stays at one transaction.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mlgraph.store.tables import Id, Uri, UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("saved_search") as batch:
        batch.add_column(sa.Column("invalid_reason", sa.Text()))
    op.create_table(
        "search_due",
        sa.Column("search", Id, sa.ForeignKey("saved_search.id"), nullable=False),
        sa.Column("uri", Uri, nullable=False),
        sa.Column("due_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("search", "uri"),
    )
    op.create_index("ix_search_due_at", "search_due", ["due_at"])
    op.create_table(
        "saved_search_dead_letter",
        sa.Column("id", Id, primary_key=True),
        sa.Column("search", Id, nullable=False, unique=True),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("dsl", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("position", sa.Integer()),
        sa.Column("mapping_digest", sa.String(32), nullable=False),
        sa.Column("compiler_version", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
    )
    with op.batch_alter_table("search_transition") as batch:
        batch.drop_constraint("uq_search_transition_once", type_="unique")
        batch.create_unique_constraint(
            "uq_search_transition_once", ["search", "uri", "tx", "transition", "at"]
        )


def downgrade() -> None:
    with op.batch_alter_table("search_transition") as batch:
        batch.drop_constraint("uq_search_transition_once", type_="unique")
        batch.create_unique_constraint(
            "uq_search_transition_once", ["search", "uri", "tx", "transition"]
        )
    op.drop_table("saved_search_dead_letter")
    op.drop_index("ix_search_due_at", table_name="search_due")
    op.drop_table("search_due")
    with op.batch_alter_table("saved_search") as batch:
        batch.drop_column("invalid_reason")
