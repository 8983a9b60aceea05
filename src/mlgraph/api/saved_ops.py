"""Saved searches as the API serves them, over REST and GraphQL alike: who may do what.

- Reading saved searches, their members and transitions, and reverse search
  needs the ``read`` scope.
- Managing one's **own** searches needs ``read`` too, from a token: a search
  belongs to the token's name. ``write`` is not asked for because it is the
  scope of a source's webhook (event intake, and nothing else); the people
  who follow searches hold ``read`` tokens, and their searches concern no one
  else. An anonymous reader (``MLGRAPH_ANONYMOUS_READ``) owns nothing and
  may not save.
- Saving a search for another owner, and editing or deleting someone else's,
  needs ``admin``. With auth off (or before any token exists) every caller is
  an administrator named ``anonymous``.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from mlgraph.api.auth import AuthError, Principal
from mlgraph.api.tokens import Scope
from mlgraph.errors import NotFound, ValidationError
from mlgraph.reverse import SavedSearch, SavedSearches
from mlgraph.reverse.compiler import compile_search
from mlgraph.reverse.saved import MAX_NAME

MAX_FILTER = 10_000  # characters of DSL text
MAX_ID = 2**63 - 1  # ids are 64-bit in the database


@dataclass(frozen=True, slots=True)
class Upserted:
    search: SavedSearch
    created: bool


def is_admin(principal: Principal) -> bool:
    return Scope.ADMIN in principal.scopes


def _need_identity(principal: Principal) -> None:
    if principal.token is None and not is_admin(principal):
        raise AuthError(
            401,
            "saving, editing or deleting a saved search needs an API token: a search "
            "belongs to the token's name (`mlgraph token create --scope read`)",
        )


def owner_for(principal: Principal, asked: str | None) -> str:
    """Who owns a search ``principal`` creates: itself, or (admin only) ``asked``."""
    _need_identity(principal)
    if asked is None or asked == principal.name:
        return principal.name
    if is_admin(principal):
        return asked
    raise AuthError(
        403,
        f"the token {principal.name!r} saves searches as itself; saving one for "
        f"{asked!r} needs the 'admin' scope",
        'Bearer error="insufficient_scope", scope="admin"',
    )


def check_may_manage(principal: Principal, search: SavedSearch) -> None:
    _need_identity(principal)
    if search.owner != principal.name and not is_admin(principal):
        raise AuthError(
            403,
            f"saved search {search.id} belongs to {search.owner!r}: only its owner or an "
            f"'admin' token may change or delete it",
            'Bearer error="insufficient_scope", scope="admin"',
        )


def check_text(what: str, value: str, most: int) -> None:
    """Text the database can hold: no NUL (PostgreSQL refuses it), not too long."""
    if "\x00" in value:
        raise ValidationError(f"{what} must not contain NUL characters")
    if len(value) > most:
        raise ValidationError(f"{what} must be at most {most:,} characters, got {len(value):,}")


def search_id(value: int | str, where: str = "id") -> int:
    """A saved search's id from a path or a GraphQL ID; NotFound beyond 64 bits."""
    if isinstance(value, str):
        text = value.strip()
        if not (text.isascii() and text.isdigit()) or len(text) > 19:
            raise ValidationError(f"{where} must be a saved search's id (a number), got {value!r}")
        value = int(text)
    if not 1 <= value <= MAX_ID:
        raise NotFound(f"no saved search {value}")
    return value


def require(searches: SavedSearches, ident: int) -> SavedSearch:
    return searches.require(search_id(ident))


def upsert(
    searches: SavedSearches,
    principal: Principal,
    *,
    ident: int | None,
    owner: str | None,
    name: str | None,
    text: str,
) -> Upserted:
    """Create a search, or edit one named by id or by (owner, name).

    DslError (nothing written) when the text is not a valid search.
    """
    check_text("filter", text, MAX_FILTER)
    for what, value in (("owner", owner), ("name", name)):
        if value is not None:
            check_text(what, value, MAX_NAME)
    if ident is not None:
        current = require(searches, ident)
        check_may_manage(principal, current)
        if owner is not None and owner != current.owner:
            raise ValidationError(
                f"saved search {current.id} belongs to {current.owner!r}; an owner cannot "
                "change (save a new search for the new owner and delete this one)"
            )
        compile_search(text, searches.mapping)  # a DslError before the rename is written
        if name is not None and name != current.name:
            try:
                searches.rename(current.id, name)
            except sa.exc.IntegrityError:
                raise ValidationError(
                    f"{current.owner!r} already has a saved search named {name!r}"
                ) from None
        return Upserted(searches.save(current.owner, name or current.name, text), False)
    if name is None:
        raise ValidationError("name is required to create a saved search (or give id to edit one)")
    owner = owner_for(principal, owner)
    existing = searches.find(owner, name)
    return Upserted(searches.save(owner, name, text), existing is None)


def delete(searches: SavedSearches, principal: Principal, ident: int) -> SavedSearch:
    found = require(searches, ident)
    check_may_manage(principal, found)
    if not searches.delete(found.id):
        raise NotFound(f"no saved search {found.id}")
    return found
