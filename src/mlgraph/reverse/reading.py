"""Reading documents from the store, now or as of a past transaction, a batch at a time.

A document needs the entity and the names of the entities its edges lead to,
both ways (a pipeline's document names its runs). ``Store.get`` and
``Store.neighbors`` would cost several queries per entity and one per
neighbour's name; here a batch costs three: entities, outgoing edges with
the names at their far end, incoming edges likewise. As of a transaction,
the same queries read the version tables instead of the current projection.

The reverse follower reads a few documents per transaction, thousands of
times a second during ingest: its statements are built once per backend
(``store.prebuilt``), as SQLAlchemy spends three times as long building a
statement as running one built before.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mlgraph.search.filter_document import Document, Related, build_document, uri_id
from mlgraph.store import Store
from mlgraph.store import tables as t
from mlgraph.store.prebuilt import ByDialect, among
from mlgraph.store.reads import to_entity

CHUNK = 500  # URIs per IN (...) list: well under every backend's parameter limit


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _live(version: Any) -> sa.ColumnElement[bool]:
    """Versions in force at the transaction bound as ``:tx`` (``store.reads.live``)."""
    tx = sa.bindparam("tx", type_=sa.Integer())
    return sa.and_(version.c.tx_from <= tx, sa.or_(version.c.tx_to.is_(None), version.c.tx_to > tx))


def _entities(as_of: bool) -> sa.Select[Any]:
    n = t.node
    e = t.entity_version if as_of else t.entity
    query = sa.select(
        n.c.id, n.c.uri, e.c.type, e.c.state, e.c.name, e.c.description, e.c.doc
    ).join(e, e.c.node == n.c.id)
    return query.where(_live(e)) if as_of else query


def _by_uri(as_of: bool) -> ByDialect[sa.Select[Any]]:
    return ByDialect(
        lambda postgres: _entities(as_of).where(among(t.node.c.uri, "uris", sa.String(), postgres))
    )


def _after_id(as_of: bool) -> sa.Select[Any]:
    return (
        _entities(as_of)
        .where(t.node.c.id > sa.bindparam("after", type_=sa.Integer()))
        .order_by(t.node.c.id)
        .limit(sa.bindparam("limit", type_=sa.Integer()))
    )


def _edges(as_of: bool, some: bool) -> ByDialect[sa.CompoundSelect[Any]]:
    """Edges from the ``:nodes``, outward and inward in one statement, with the URI and
    name at their far end (``some``: only those with one of the ``:out`` or ``:in`` labels)."""

    def build(postgres: bool) -> sa.CompoundSelect[Any]:
        edge = t.edge_version if as_of else t.edge
        ent = t.entity_version if as_of else t.entity
        parts = []
        for outward in (True, False):
            near, far = (edge.c.src, edge.c.dst) if outward else (edge.c.dst, edge.c.src)
            other, named = t.node.alias("other"), ent.alias("named")
            on = named.c.node == far
            if as_of:
                on = sa.and_(on, _live(named))
            query = (
                sa.select(
                    near.label("near"),
                    edge.c.label,
                    other.c.uri,
                    named.c.name,
                    sa.literal(outward).label("outward"),
                )
                .join(other, other.c.id == far)
                .outerjoin(named, on)
                .where(among(near, "nodes", sa.Integer(), postgres))
            )
            if some:
                labels = "out" if outward else "in"
                query = query.where(among(edge.c.label, labels, sa.Integer(), postgres))
            parts.append(query.where(_live(edge)) if as_of else query)
        return sa.union_all(*parts)

    return ByDialect(build)


_BY_URI = {as_of: _by_uri(as_of) for as_of in (False, True)}
_AFTER_ID = {as_of: _after_id(as_of) for as_of in (False, True)}
_EDGES = {(as_of, some): _edges(as_of, some) for as_of in (False, True) for some in (False, True)}

Relations = frozenset[str] | None  # relationships a document is read with (None: all)


class DocumentReader:
    """Documents of entities as the store holds them now (``as_of=None``) or at a transaction."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._labels: dict[frozenset[str], tuple[list[int], list[int]]] = {}
        self._conn: Connection | None = None  # inside ``reading()``

    def documents(
        self, uris: Iterable[str], as_of: int | None = None, relations: Relations = None
    ) -> dict[str, Document]:
        """The documents of those ``uris`` that existed (as of ``as_of``), by URI.

        With ``relations``, a document lists only the related entities of those
        relationships (by the name a document has them under, inverse names
        included): what the searches read of a team with thousands of members
        may be none of them.
        """
        wanted = sorted(set(uris))
        found: dict[str, Document] = {}
        if not wanted:
            return found
        with self._connection() as conn:
            query = _BY_URI[as_of is not None].of(conn)
            for part in _chunks(wanted):
                rows = conn.execute(query, {"uris": list(part), "tx": as_of}).all()
                for doc in self._build(conn, rows, as_of, relations):
                    found[doc["uri"]] = doc
        return found

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """One connection for every read until the block ends (a change's few small reads
        would otherwise each check one out of the pool)."""
        if self._conn is not None:
            yield self._conn
            return
        with self.store.engine.connect() as conn:
            self._conn = conn
            try:
                yield conn
            finally:
                self._conn = None

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        if self._conn is not None:
            yield self._conn
        else:
            with self.store.engine.connect() as conn:
                yield conn

    def every_document(
        self, as_of: int | None = None, batch: int = 1000
    ) -> Iterator[list[Document]]:
        """Every entity's document, a batch at a time, in node order."""
        after = 0
        query = _AFTER_ID[as_of is not None]
        while True:
            with self.store.engine.connect() as conn:
                rows = conn.execute(query, {"after": after, "limit": batch, "tx": as_of}).all()
                if not rows:
                    return
                yield self._build(conn, rows, as_of)
            after = rows[-1].id

    def _build(
        self,
        conn: Connection,
        rows: Sequence[Any],
        as_of: int | None,
        relations: Relations = None,
    ) -> list[Document]:
        if not rows:
            return []
        related = self._related(conn, [r.id for r in rows], as_of, relations)
        schema = self.store.schema
        return [
            build_document(schema, to_entity(schema, r.uri, r, {}), related.get(r.id, ()))
            for r in rows
        ]

    def _label_ids(self, relations: frozenset[str]) -> tuple[list[int], list[int]]:
        """The labels of the edges that give a document ``relations``: outward, inward."""
        found = self._labels.get(relations)
        if found is None:
            schema, labels = self.store.schema, self.store.labels
            edges = [(label, schema.edge(label)) for label in schema.labels]
            found = self._labels[relations] = (
                labels.ids(label for label, rel in edges if rel.name in relations),
                labels.ids(label for label, rel in edges if rel.inverse in relations),
            )
        return found

    def _related(
        self, conn: Connection, nodes: list[int], as_of: int | None, relations: Relations = None
    ) -> dict[int, list[Related]]:
        schema, labels = self.store.schema, self.store.labels
        found: dict[int, list[Related]] = defaultdict(list)
        params: dict[str, Any] = {"nodes": nodes, "tx": as_of}
        if relations is not None:
            params["out"], params["in"] = self._label_ids(relations)
        query = _EDGES[(as_of is not None, relations is not None)].of(conn)
        for near, label, uri, name, outward in conn.execute(query, params):
            rel = schema.edge(labels.name(label))
            relation = rel.name if outward else rel.inverse
            if relation is not None:
                found[near].append(Related(relation, uri, name))
        return found


def _names(postgres: bool) -> sa.Select[Any]:
    n, e = t.node, t.entity_version
    return (
        sa.select(n.c.uri, e.c.name)
        .join(e, e.c.node == n.c.id)
        .where(_live(e), among(n.c.uri, "uris", sa.String(), postgres))
    )


_NAMES = ByDialect(_names)


def names(conn: Connection, uris: Iterable[str], as_of: int) -> dict[str, str]:
    """The names of those ``uris`` that existed as of ``as_of``: what a renaming compares,
    without reading whole documents."""
    wanted = sorted(set(uris))
    found: dict[str, str] = {}
    query = _NAMES.of(conn)
    for part in _chunks(wanted):
        for uri, name in conn.execute(query, {"uris": list(part), "tx": as_of}):
            found[uri] = name or uri_id(uri)  # as the document has it
    return found
