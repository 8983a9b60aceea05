"""The API's tables, in the store's database: API tokens (only their hashes)."""

from __future__ import annotations

import sqlalchemy as sa

from mlgraph.store.tables import Id, UTCDateTime, metadata

api_token = sa.Table(
    "api_token",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    # SHA-256 of the token, hex. The token is 256 random bits, so a fast hash is
    # enough: there is nothing to guess that a slow one would protect.
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("prefix", sa.String(16), nullable=False),  # shown in listings to tell tokens apart
    sa.Column("scopes", sa.String(100), nullable=False),  # space-separated: read write admin
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("revoked_at", UTCDateTime()),
)
