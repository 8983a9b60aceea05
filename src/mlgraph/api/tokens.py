"""API tokens: created once, kept only as a hash, checked by hash, revoked by id.

A token is ``mlg_`` and 32 random bytes (URL-safe base64). The store keeps its
SHA-256 and its first characters (to tell tokens apart in a listing), never
the token: it is shown once, when created.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from mlgraph.api.tables import api_token
from mlgraph.errors import NotFound, ValidationError
from mlgraph.store.engine import writing

TOKEN_PREFIX = "mlg_"
_SHOWN = 12  # characters kept in clear: the "mlg_" marker and 8 random ones


class Scope(StrEnum):
    READ = "read"  # the graph: GraphQL, entities, lineage, impact, history, search, summary
    WRITE = "write"  # event intake
    ADMIN = "admin"  # the dead-letter table and replay; implies read and write


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: int
    name: str
    prefix: str
    scopes: frozenset[Scope]
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True, slots=True)
class Created:
    """A new token: ``secret`` is the token itself, shown this once."""

    info: TokenInfo
    secret: str


def parse_scopes(names: Iterable[str]) -> frozenset[Scope]:
    """Scopes from their names; ``admin`` brings ``read`` and ``write`` with it."""
    scopes: set[Scope] = set()
    for name in names:
        try:
            scopes.add(Scope(name.strip().lower()))
        except ValueError:
            allowed = ", ".join(s.value for s in Scope)
            raise ValidationError(f"unknown scope {name!r} (one of: {allowed})") from None
    if not scopes:
        raise ValidationError("a token needs at least one scope (read, write or admin)")
    if Scope.ADMIN in scopes:
        scopes |= {Scope.READ, Scope.WRITE}
    return frozenset(scopes)


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _info(row: sa.Row[tuple[object, ...]]) -> TokenInfo:
    m = row._mapping
    return TokenInfo(
        int(m["id"]),
        str(m["name"]),
        str(m["prefix"]),
        frozenset(Scope(s) for s in str(m["scopes"]).split()),
        m["created_at"],
        m["revoked_at"],
    )


def _order(scopes: Iterable[Scope]) -> str:
    return " ".join(s.value for s in Scope if s in set(scopes))


class Tokens:
    """The token table of one store."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, name: str, scopes: Iterable[str]) -> Created:
        granted = parse_scopes(scopes)
        name = name.strip()
        if not name or len(name) > 200:
            raise ValidationError("a token's name must be 1 to 200 characters")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        with writing(self.engine) as conn:
            token_id = conn.execute(
                api_token.insert().values(
                    name=name,
                    token_hash=hash_token(secret),
                    prefix=secret[:_SHOWN],
                    scopes=_order(granted),
                    created_at=now,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
        info = TokenInfo(int(token_id), name, secret[:_SHOWN], granted, now, None)
        return Created(info, secret)

    def listing(self, *, include_revoked: bool = False) -> list[TokenInfo]:
        query = sa.select(api_token).order_by(api_token.c.id)
        if not include_revoked:
            query = query.where(api_token.c.revoked_at.is_(None))
        with self.engine.connect() as conn:
            return [_info(row) for row in conn.execute(query)]

    def revoke(self, token_id: int) -> TokenInfo:
        """Revoke a token for good; revoking it again changes nothing."""
        with writing(self.engine) as conn:
            row = conn.execute(sa.select(api_token).where(api_token.c.id == token_id)).first()
            if row is None:
                raise NotFound(f"no token {token_id}")
            if row.revoked_at is None:
                conn.execute(
                    api_token.update()
                    .where(api_token.c.id == token_id)
                    .values(revoked_at=datetime.now(UTC))
                )
            row = conn.execute(sa.select(api_token).where(api_token.c.id == token_id)).one()
        return _info(row)

    def verify(self, secret: str) -> TokenInfo | None:
        """The active token ``secret`` is, or None."""
        if not secret.startswith(TOKEN_PREFIX):
            return None
        query = sa.select(api_token).where(
            api_token.c.token_hash == hash_token(secret), api_token.c.revoked_at.is_(None)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else _info(row)

    def any_active(self) -> bool:
        query = sa.select(api_token.c.id).where(api_token.c.revoked_at.is_(None)).limit(1)
        with self.engine.connect() as conn:
            return conn.execute(query).first() is not None
