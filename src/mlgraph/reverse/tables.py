"""Saved searches, who matches them now, and the transitions to notify, in the store's database."""

from __future__ import annotations

import sqlalchemy as sa

from mlgraph.store.tables import Id, Json, Uri, UTCDateTime, metadata

saved_search = sa.Table(
    "saved_search",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("owner", sa.String(200), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("dsl", sa.Text(), nullable=False),  # as written: always kept, compiled again at will
    sa.Column("compiler_version", sa.Integer(), nullable=False),
    sa.Column("compiled", Json, nullable=False),  # the normalized tree (see compiler.py)
    sa.Column("mapping_digest", sa.String(32), nullable=False),
    # Bumped on every save, across all searches: a reader that remembers the
    # highest it has seen asks only for what changed since.
    sa.Column("revision", Id, nullable=False, unique=True),
    sa.Column("saved_tx", Id, nullable=False),  # the store's last transaction when saved
    # The transaction its membership was built as of; transitions start after
    # it. NULL until the reverse follower has built it (after every edit).
    sa.Column("built_tx", Id),
    sa.Column("built_revision", Id),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("owner", "name", name="uq_saved_search_owner_name"),
)

# The entities each search matches now (as of the follower's cursor).
membership = sa.Table(
    "search_membership",
    metadata,
    sa.Column("search", Id, sa.ForeignKey("saved_search.id"), nullable=False),
    sa.Column("uri", Uri, nullable=False),
    sa.Column("since_tx", Id, nullable=False),
    sa.PrimaryKeyConstraint("search", "uri"),
    sa.Index("ix_search_membership_uri", "uri"),
)

# The notification outbox: one row per (search, entity, version, transition),
# so however often the feed is handled, each is delivered once.
transition = sa.Table(
    "search_transition",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("search", Id, nullable=False),  # no foreign key: history outlives the search
    sa.Column("uri", Uri, nullable=False),
    sa.Column("tx", Id, nullable=False),  # the entity version (transaction) it happened at
    sa.Column("transition", sa.String(10), nullable=False),  # entered | left
    sa.Column("at", UTCDateTime(), nullable=False),  # the transaction's time
    sa.Column("delivered_at", UTCDateTime()),
    sa.UniqueConstraint("search", "uri", "tx", "transition", name="uq_search_transition_once"),
    sa.Index("ix_search_transition_pending", "delivered_at", "id"),
    sa.Index("ix_search_transition_search", "search", "id"),
)
