"""The durable inbox and the dead-letter table, in the store's database."""

from __future__ import annotations

import sqlalchemy as sa

from mlgraph.store.tables import Id, Json, UTCDateTime, metadata

inbox = sa.Table(
    "inbox",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("event_id", sa.String(300), nullable=False, unique=True),  # dedupe
    sa.Column("subject", sa.String(2000), nullable=False),  # what to hydrate: source/resource/id
    sa.Column("source", sa.String(100)),
    sa.Column("event_type", sa.String(200), nullable=False),
    sa.Column("payload", Json, nullable=False),
    sa.Column("received_at", UTCDateTime(), nullable=False),
    sa.Column("status", sa.String(12), nullable=False),  # pending | processing | done
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("not_before", UTCDateTime(), nullable=False),
    sa.Column("last_error", sa.Text()),
    sa.Index("ix_inbox_claim", "status", "not_before", "id"),  # due rows in order
    sa.Index("ix_inbox_subject", "subject", "status"),
)

dead_letter = sa.Table(
    "dead_letter",
    metadata,
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
    sa.Index("ix_dead_letter_open", "replayed_at", "id"),
)
