"""The store's tables, in one SQLAlchemy Core schema for SQLite and PostgreSQL.

Facts are never updated in place: ``entity_version`` and ``edge_version`` keep
every version with the transactions that opened and closed it. ``entity`` and
``edge`` are the current projection, rewritten in the same transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect

from mlgraph.catalog.fields import to_utc

# SQLite only aliases INTEGER PRIMARY KEY (not BIGINT) to the rowid.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# None is SQL NULL, not the JSON text 'null': cheaper, and `IS NULL` means what it says.
Json = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both backends (SQLite drops the zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else to_utc(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else to_utc(value)


metadata = sa.MetaData()

tx = sa.Table(
    "tx",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=False),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Index("ix_tx_at", "at"),
    sa.Column("source", sa.String(200)),
    sa.Column("event_id", sa.String(500)),
    sa.Column("actor", sa.String(200)),
)

# Byte order for URIs on PostgreSQL whatever the database's collation, so that a
# prefix is a contiguous range of the index (Store.listing relies on it).
Uri = sa.String(2000).with_variant(postgresql.VARCHAR(2000, collation="C"), "postgresql")

node = sa.Table(
    "node",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("uri", Uri, nullable=False, unique=True),
)

label = sa.Table(
    "label",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
)


def _entity_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("name", sa.Text()),
        sa.Column("description", sa.Text()),
        sa.Column("doc", Json, nullable=False),
    ]


entity = sa.Table(
    "entity",
    metadata,
    sa.Column("node", Id, sa.ForeignKey("node.id"), primary_key=True, autoincrement=False),
    *_entity_columns(),
    sa.Column("tx", Id, nullable=False),
    sa.Index("ix_entity_type", "type"),
    sa.Index("ix_entity_state", "state"),
)

entity_version = sa.Table(
    "entity_version",
    metadata,
    sa.Column("node", Id, sa.ForeignKey("node.id"), nullable=False),
    sa.Column("tx_from", Id, nullable=False),
    sa.Column("tx_to", Id),
    *_entity_columns(),
    sa.PrimaryKeyConstraint("node", "tx_from"),
)


def _edge_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("src", Id, sa.ForeignKey("node.id"), nullable=False),
        sa.Column("label", sa.Integer(), sa.ForeignKey("label.id"), nullable=False),
        sa.Column("dst", Id, sa.ForeignKey("node.id"), nullable=False),
    ]


edge = sa.Table(
    "edge",
    metadata,
    *_edge_columns(),
    sa.Column("tx", Id, nullable=False),
    sa.Column("origin", sa.String(20), nullable=False),
    sa.Column("provenance", Json),
    sa.PrimaryKeyConstraint("src", "label", "dst"),
    sa.Index("ix_edge_dst", "dst", "label", "src"),
)

edge_version = sa.Table(
    "edge_version",
    metadata,
    *_edge_columns(),
    sa.Column("tx_from", Id, nullable=False),
    sa.Column("tx_to", Id),
    sa.Column("origin", sa.String(20), nullable=False),
    sa.Column("provenance", Json),
    sa.PrimaryKeyConstraint("src", "label", "dst", "tx_from"),
    sa.Index("ix_edge_version_dst", "dst", "label", "src"),
    sa.Index("ix_edge_version_tx_to", "tx_to"),
)

change = sa.Table(
    "change",
    metadata,
    sa.Column("tx", Id, nullable=False),
    sa.Column("seq", sa.Integer(), nullable=False),
    sa.Column("kind", sa.String(10), nullable=False),  # entity | edge
    sa.Column("op", sa.String(10), nullable=False),  # see feed.Op
    sa.Column("uri", sa.String(2000), nullable=False),
    sa.Column("label", sa.String(200)),
    sa.Column("other", sa.String(2000)),
    # What caused this change, when one transaction carries several causes
    # (a batch of hydrations); otherwise the transaction's provenance says it.
    sa.Column("source", sa.String(200)),
    sa.Column("event_id", sa.String(500)),
    sa.PrimaryKeyConstraint("tx", "seq"),
)

cursor = sa.Table(
    "cursor",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("position", Id, nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

# Bookkeeping about an entity rather than facts about it: when its source was
# last read and when the enricher last looked at it. Not versioned; it changes
# on every no-op hydration and would flood history otherwise.
entity_status = sa.Table(
    "entity_status",
    metadata,
    sa.Column("node", Id, sa.ForeignKey("node.id"), primary_key=True, autoincrement=False),
    sa.Column("hydrated_at", UTCDateTime()),
    sa.Column("enriched_at", UTCDateTime()),
    sa.Column("unresolved", sa.Text()),  # why a reference to it cannot be hydrated
    sa.Column("unresolved_at", UTCDateTime()),
    sa.Index("ix_entity_status_unresolved", "unresolved_at"),
)
