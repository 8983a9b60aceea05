"""Saved searches: create, edit, list and delete them; read their members and transitions.

Saving checks the search first (a DslError says what is wrong and where;
nothing is written). An edit bumps the search's revision and clears its built
membership: the reverse follower rebuilds it, silently, before it matches
any further change against the new definition.

A search the mapping no longer allows (see recompile.py) is kept with its
text but marked invalid (``invalid_reason``) and left out of matching; saving
it again, fixed, clears that and its dead letter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mlgraph.errors import NotFound, ValidationError
from mlgraph.reverse import tables as rt
from mlgraph.reverse.compiler import (
    COMPILER_VERSION,
    CompiledSearch,
    StaleCompilation,
    compile_search,
    load_compiled,
)
from mlgraph.search.filter_fields import DocumentMapping
from mlgraph.search.mapping import filter_mapping
from mlgraph.store import Store, feed
from mlgraph.store.engine import writing

MAX_NAME = 200
SAVE_ATTEMPTS = 5  # concurrent saves on PostgreSQL may race for a revision number


@dataclass(frozen=True, slots=True)
class SavedSearch:
    id: int
    owner: str
    name: str
    dsl: str
    compiler_version: int
    revision: int
    saved_tx: int
    built_tx: int | None  # None until the follower has built its membership
    created_at: datetime
    updated_at: datetime
    # Why it no longer compiles against the mapping (None: it does); an
    # invalid search matches nothing until saved again.
    invalid_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Transition:
    """An entity started (``entered``) or stopped (``left``) matching a search at ``tx``;
    or the search itself became ``invalid`` (``uri`` is empty): tell its owner."""

    id: int
    search: int
    uri: str
    tx: int
    transition: Literal["entered", "left", "invalid"]
    at: datetime
    delivered_at: datetime | None


def _saved(row: Any) -> SavedSearch:
    return SavedSearch(
        row.id,
        row.owner,
        row.name,
        row.dsl,
        row.compiler_version,
        row.revision,
        row.saved_tx,
        row.built_tx if row.built_revision == row.revision else None,
        row.created_at,
        row.updated_at,
        row.invalid_reason,
    )


def compiled_of(row: Any, mapping: DocumentMapping) -> CompiledSearch:
    """A stored search's compiled form: the stored tree, or its text compiled again."""
    if row.invalid_reason is not None:
        raise ValidationError(
            f"saved search {row.id} no longer compiles against the search mapping: "
            f"{row.invalid_reason}; save it again with a text that does"
        )
    try:
        return load_compiled(row.dsl, row.compiled)
    except StaleCompilation:
        return compile_search(row.dsl, mapping)


class SavedSearches:
    def __init__(self, store: Store, mapping: DocumentMapping | None = None) -> None:
        self.store = store
        self.mapping = mapping or filter_mapping(store.schema)

    def save(self, owner: str, name: str, dsl: str) -> SavedSearch:
        """Create the search ``owner`` calls ``name``, or change its text."""
        for what, value in (("owner", owner), ("name", name)):
            if not value.strip() or len(value) > MAX_NAME:
                raise ValidationError(f"a saved search's {what} must be 1 to {MAX_NAME} characters")
        compiled = compile_search(dsl, self.mapping)  # raises DslError: nothing written
        for attempt in range(SAVE_ATTEMPTS):
            try:
                with writing(self.store.engine) as conn:
                    return self._save(conn, owner, name, compiled)
            except sa.exc.IntegrityError:
                if attempt == SAVE_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def _save(
        self, conn: Connection, owner: str, name: str, compiled: CompiledSearch
    ) -> SavedSearch:
        s = rt.saved_search
        now = datetime.now(UTC)
        current = conn.execute(sa.select(s).where(s.c.owner == owner, s.c.name == name)).first()
        if current is not None and current.dsl == compiled.text and not current.invalid_reason:
            return _saved(current)
        revision = int(conn.execute(sa.select(sa.func.max(s.c.revision))).scalar() or 0) + 1
        values = {
            "dsl": compiled.text,
            "compiler_version": COMPILER_VERSION,
            "compiled": compiled.to_json(),
            "mapping_digest": self.mapping.digest,
            "revision": revision,
            "saved_tx": feed.last_tx(conn),
            "built_tx": None,
            "built_revision": None,
            "updated_at": now,
            "invalid_reason": None,
        }
        if current is None:
            conn.execute(s.insert().values(owner=owner, name=name, created_at=now, **values))
        else:
            conn.execute(s.update().where(s.c.id == current.id).values(**values))
            # The old definition's due times go; the rebuild writes the new ones.
            conn.execute(rt.due.delete().where(rt.due.c.search == current.id))
            dead = rt.dead_letter
            conn.execute(dead.delete().where(dead.c.search == current.id))
        row = conn.execute(sa.select(s).where(s.c.owner == owner, s.c.name == name)).one()
        return _saved(row)

    def get(self, search_id: int) -> SavedSearch | None:
        s = rt.saved_search
        with self.store.engine.connect() as conn:
            row = conn.execute(sa.select(s).where(s.c.id == search_id)).first()
        return None if row is None else _saved(row)

    def require(self, search_id: int) -> SavedSearch:
        found = self.get(search_id)
        if found is None:
            raise NotFound(f"no saved search {search_id}")
        return found

    def find(self, owner: str, name: str) -> SavedSearch | None:
        s = rt.saved_search
        with self.store.engine.connect() as conn:
            row = conn.execute(sa.select(s).where(s.c.owner == owner, s.c.name == name)).first()
        return None if row is None else _saved(row)

    def rename(self, search_id: int, name: str) -> SavedSearch:
        """Give a search another name; its definition, membership and revision stay.

        IntegrityError when its owner already has a search of that name.
        """
        if not name.strip() or len(name) > MAX_NAME:
            raise ValidationError(f"a saved search's name must be 1 to {MAX_NAME} characters")
        s = rt.saved_search
        with writing(self.store.engine) as conn:
            now = datetime.now(UTC)
            done = conn.execute(
                s.update().where(s.c.id == search_id).values(name=name, updated_at=now)
            )
            if not done.rowcount:
                raise NotFound(f"no saved search {search_id}")
            return _saved(conn.execute(sa.select(s).where(s.c.id == search_id)).one())

    def all(self, owner: str | None = None) -> list[SavedSearch]:
        s = rt.saved_search
        query = sa.select(s).order_by(s.c.id)
        if owner is not None:
            query = query.where(s.c.owner == owner)
        with self.store.engine.connect() as conn:
            return [_saved(r) for r in conn.execute(query)]

    # -- pages, for the API ---------------------------------------------------------

    def page(
        self, owner: str | None = None, *, after: int = 0, limit: int = 100
    ) -> list[SavedSearch]:
        """Searches in id order, after the one with id ``after``."""
        s = rt.saved_search
        query = sa.select(s).where(s.c.id > after).order_by(s.c.id).limit(limit)
        if owner is not None:
            query = query.where(s.c.owner == owner)
        with self.store.engine.connect() as conn:
            return [_saved(r) for r in conn.execute(query)]

    def count(self, owner: str | None = None) -> int:
        s = rt.saved_search
        query = sa.select(sa.func.count()).select_from(s)
        if owner is not None:
            query = query.where(s.c.owner == owner)
        with self.store.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def many(self, search_ids: list[int]) -> list[SavedSearch]:
        """Those of ``search_ids`` that exist, in id order."""
        s = rt.saved_search
        with self.store.engine.connect() as conn:
            rows = conn.execute(sa.select(s).where(s.c.id.in_(search_ids)).order_by(s.c.id))
            return [_saved(r) for r in rows]

    def member_page(
        self, search_id: int, *, after: str | None = None, limit: int = 100
    ) -> list[tuple[str, int]]:
        """(uri, since tx) of the search's members in URI order, after ``after``."""
        m = rt.membership
        query = sa.select(m.c.uri, m.c.since_tx).where(m.c.search == search_id)
        if after is not None:
            query = query.where(m.c.uri > after)
        with self.store.engine.connect() as conn:
            rows = conn.execute(query.order_by(m.c.uri).limit(limit))
            return [(r.uri, int(r.since_tx)) for r in rows]

    def member_count(self, search_id: int) -> int:
        m = rt.membership
        query = sa.select(sa.func.count()).select_from(m).where(m.c.search == search_id)
        with self.store.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def compiled(self, search_id: int) -> CompiledSearch:
        s = rt.saved_search
        with self.store.engine.connect() as conn:
            row = conn.execute(sa.select(s).where(s.c.id == search_id)).first()
        if row is None:
            raise NotFound(f"no saved search {search_id}")
        return compiled_of(row, self.mapping)

    def delete(self, search_id: int) -> bool:
        """Delete a search and its membership; its transitions stay as history."""
        with writing(self.store.engine) as conn:
            conn.execute(rt.membership.delete().where(rt.membership.c.search == search_id))
            conn.execute(rt.due.delete().where(rt.due.c.search == search_id))
            conn.execute(rt.dead_letter.delete().where(rt.dead_letter.c.search == search_id))
            gone = conn.execute(rt.saved_search.delete().where(rt.saved_search.c.id == search_id))
        return bool(gone.rowcount)

    def members(self, search_id: int) -> list[str]:
        """The URIs matching the search now (as of the follower's last round)."""
        m = rt.membership
        with self.store.engine.connect() as conn:
            rows = conn.execute(sa.select(m.c.uri).where(m.c.search == search_id).order_by(m.c.uri))
            return [r.uri for r in rows]

    def matching(self, uri: str) -> list[int]:
        """The searches ``uri`` is a member of now."""
        m = rt.membership
        with self.store.engine.connect() as conn:
            rows = conn.execute(sa.select(m.c.search).where(m.c.uri == uri).order_by(m.c.search))
            return [int(r.search) for r in rows]

    def transitions(
        self, search_id: int | None = None, *, after: int = 0, limit: int = 1000
    ) -> list[Transition]:
        """Transitions in the order they were recorded, after the one with id ``after``."""
        tr = rt.transition
        query = sa.select(tr).where(tr.c.id > after).order_by(tr.c.id).limit(limit)
        if search_id is not None:
            query = query.where(tr.c.search == search_id)
        with self.store.engine.connect() as conn:
            return [
                Transition(r.id, r.search, r.uri, r.tx, r.transition, r.at, r.delivered_at)
                for r in conn.execute(query)
            ]
