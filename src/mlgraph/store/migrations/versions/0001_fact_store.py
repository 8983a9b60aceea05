"""The fact store: transactions, nodes, entity and edge versions, projections, feed.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mlgraph.store.tables import Id, Json, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _entity_columns() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("name", sa.Text()),
        sa.Column("description", sa.Text()),
        sa.Column("doc", Json, nullable=False),
    ]


def _edge_columns() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("src", Id, sa.ForeignKey("node.id"), nullable=False),
        sa.Column("label", sa.Integer(), sa.ForeignKey("label.id"), nullable=False),
        sa.Column("dst", Id, sa.ForeignKey("node.id"), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "tx",
        sa.Column("id", Id, primary_key=True, autoincrement=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("source", sa.String(200)),
        sa.Column("event_id", sa.String(500)),
        sa.Column("actor", sa.String(200)),
    )
    op.create_index("ix_tx_at", "tx", ["at"])
    op.create_table(
        "node",
        sa.Column("id", Id, primary_key=True),
        sa.Column("uri", sa.String(2000), nullable=False, unique=True),
    )
    op.create_table(
        "label",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
    )
    op.create_table(
        "entity",
        sa.Column("node", Id, sa.ForeignKey("node.id"), primary_key=True, autoincrement=False),
        *_entity_columns(),
        sa.Column("tx", Id, nullable=False),
    )
    op.create_index("ix_entity_type", "entity", ["type"])
    op.create_index("ix_entity_state", "entity", ["state"])
    op.create_table(
        "entity_version",
        sa.Column("node", Id, sa.ForeignKey("node.id"), nullable=False),
        sa.Column("tx_from", Id, nullable=False),
        sa.Column("tx_to", Id),
        *_entity_columns(),
        sa.PrimaryKeyConstraint("node", "tx_from"),
    )
    op.create_table(
        "edge",
        *_edge_columns(),
        sa.Column("tx", Id, nullable=False),
        sa.Column("origin", sa.String(20), nullable=False),
        sa.Column("provenance", Json),
        sa.PrimaryKeyConstraint("src", "label", "dst"),
    )
    op.create_index("ix_edge_dst", "edge", ["dst", "label", "src"])
    op.create_table(
        "edge_version",
        *_edge_columns(),
        sa.Column("tx_from", Id, nullable=False),
        sa.Column("tx_to", Id),
        sa.Column("origin", sa.String(20), nullable=False),
        sa.Column("provenance", Json),
        sa.PrimaryKeyConstraint("src", "label", "dst", "tx_from"),
    )
    op.create_index("ix_edge_version_dst", "edge_version", ["dst", "label", "src"])
    op.create_index("ix_edge_version_tx_to", "edge_version", ["tx_to"])
    op.create_table(
        "change",
        sa.Column("tx", Id, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("op", sa.String(10), nullable=False),
        sa.Column("uri", sa.String(2000), nullable=False),
        sa.Column("label", sa.String(200)),
        sa.Column("other", sa.String(2000)),
        sa.PrimaryKeyConstraint("tx", "seq"),
    )
    op.create_table(
        "cursor",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("position", Id, nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "cursor",
        "change",
        "edge_version",
        "edge",
        "entity_version",
        "entity",
        "label",
        "node",
        "tx",
    ):
        op.drop_table(table)
