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
    # Set when the search no longer compiles against the mapping: it is left
    # out of matching, its text kept, until its owner saves a fixed one.
    sa.Column("invalid_reason", sa.Text()),
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

# When the passing of time may next flip whether an entity matches a search
# with relative bounds (``updated_at > now-7d``): the clock step re-checks the
# rows that fell due instead of every entity.
due = sa.Table(
    "search_due",
    metadata,
    sa.Column("search", Id, sa.ForeignKey("saved_search.id"), nullable=False),
    sa.Column("uri", Uri, nullable=False),
    sa.Column("due_at", UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint("search", "uri"),
    sa.Index("ix_search_due_at", "due_at"),
)

# Searches that stopped compiling when the mapping changed, and why (one row
# per search; saving it again clears it).
dead_letter = sa.Table(
    "saved_search_dead_letter",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("search", Id, nullable=False, unique=True),
    sa.Column("owner", sa.String(200), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("dsl", sa.Text(), nullable=False),
    sa.Column("reason", sa.Text(), nullable=False),
    sa.Column("position", sa.Integer()),  # where in the text, when the error says
    sa.Column("mapping_digest", sa.String(32), nullable=False),
    sa.Column("compiler_version", sa.Integer(), nullable=False),
    sa.Column("at", UTCDateTime(), nullable=False),
)

# The notification outbox: one row per (search, entity, version, transition),
# so however often the feed is handled, each is delivered once.
transition = sa.Table(
    "search_transition",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("search", Id, nullable=False),  # no foreign key: history outlives the search
    sa.Column("uri", Uri, nullable=False),
    # The entity version (transaction) it happened at; for a change time made,
    # the transaction the store stood at then.
    sa.Column("tx", Id, nullable=False),
    # entered | left; invalid (uri ''): the search no longer compiles (recompile.py)
    sa.Column("transition", sa.String(10), nullable=False),
    sa.Column("at", UTCDateTime(), nullable=False),  # the transaction's time, or the flip's
    sa.Column("delivered_at", UTCDateTime()),
    # With ``at``: time alone can make an entity enter, leave and enter again
    # while the store stays at one transaction (see clock.py).
    sa.UniqueConstraint(
        "search", "uri", "tx", "transition", "at", name="uq_search_transition_once"
    ),
    sa.Index("ix_search_transition_pending", "delivered_at", "id"),
    sa.Index("ix_search_transition_search", "search", "id"),
)

# -- notification delivery (reverse/delivery) ----------------------------------------

# A URL told about every transition of one saved search (HMAC-signed POSTs).
webhook = sa.Table(
    "webhook",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("search", Id, nullable=False),  # no foreign key: deliveries outlive the search
    sa.Column("url", sa.String(2000), nullable=False),
    sa.Column("secret", sa.String(200), nullable=False),  # signs the bodies; shown once
    sa.Column("owner", sa.String(200), nullable=False),  # who made it (a token's name)
    # The API token it was made with: it delivers only while that token may read.
    # NULL when made with authentication off.
    sa.Column("token_id", Id),
    # Transitions up to this id are fanned out to deliveries already (or predate it).
    sa.Column("cursor", Id, nullable=False),
    sa.Column("active", sa.Boolean(), nullable=False),
    sa.Column("disabled_reason", sa.Text()),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Index("ix_webhook_search", "search"),
)

# One transition for one webhook: pending until a 2xx, dead after too many failures.
webhook_delivery = sa.Table(
    "webhook_delivery",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("webhook", Id, nullable=False),
    sa.Column("transition", Id, nullable=False),  # search_transition.id
    sa.Column("status", sa.String(10), nullable=False),  # pending | delivered | dead | withheld
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
    sa.Column("last_error", sa.Text()),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("delivered_at", UTCDateTime()),
    sa.UniqueConstraint("webhook", "transition", name="uq_webhook_delivery_once"),
    sa.Index("ix_webhook_delivery_due", "status", "next_attempt_at"),
)
