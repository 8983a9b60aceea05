"""Reading documents from the store, now or as of a past transaction, a batch at a time.

A document needs the entity and the names of the entities its edges lead to,
both ways (a pipeline's document names its runs). ``Store.get`` and
``Store.neighbors`` would cost several queries per entity and one per
neighbour's name; here a batch costs three: entities, outgoing edges with
the names at their far end, incoming edges likewise. As of a transaction,
the same queries read the version tables instead of the current projection.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mlgraph.search.filter_document import Document, Related, build_document
from mlgraph.store import Store
from mlgraph.store import tables as t
from mlgraph.store.reads import live, to_entity

CHUNK = 500  # URIs per IN (...) list: well under every backend's parameter limit


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class DocumentReader:
    """Documents of entities as the store holds them now (``as_of=None``) or at a transaction."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def documents(self, uris: Iterable[str], as_of: int | None = None) -> dict[str, Document]:
        """The documents of those ``uris`` that existed (as of ``as_of``), by URI."""
        wanted = sorted(set(uris))
        found: dict[str, Document] = {}
        with self.store.engine.connect() as conn:
            for part in _chunks(wanted):
                rows = conn.execute(self._entities(as_of).where(t.node.c.uri.in_(part))).all()
                for doc in self._build(conn, rows, as_of):
                    found[doc["uri"]] = doc
        return found

    def every_document(
        self, as_of: int | None = None, batch: int = 1000
    ) -> Iterator[list[Document]]:
        """Every entity's document, a batch at a time, in node order."""
        after = 0
        while True:
            with self.store.engine.connect() as conn:
                rows = conn.execute(
                    self._entities(as_of)
                    .where(t.node.c.id > after)
                    .order_by(t.node.c.id)
                    .limit(batch)
                ).all()
                if not rows:
                    return
                yield self._build(conn, rows, as_of)
            after = rows[-1].id

    def _entities(self, as_of: int | None) -> sa.Select[Any]:
        n = t.node
        e = t.entity if as_of is None else t.entity_version
        query = sa.select(
            n.c.id, n.c.uri, e.c.type, e.c.state, e.c.name, e.c.description, e.c.doc
        ).join(e, e.c.node == n.c.id)
        return query if as_of is None else query.where(live(e, as_of))

    def _build(self, conn: Connection, rows: Sequence[Any], as_of: int | None) -> list[Document]:
        if not rows:
            return []
        related = self._related(conn, [r.id for r in rows], as_of)
        schema = self.store.schema
        return [
            build_document(schema, to_entity(schema, r.uri, r, {}), related.get(r.id, ()))
            for r in rows
        ]

    def _related(
        self, conn: Connection, nodes: list[int], as_of: int | None
    ) -> dict[int, list[Related]]:
        schema, labels = self.store.schema, self.store.labels
        found: dict[int, list[Related]] = defaultdict(list)
        edge = t.edge if as_of is None else t.edge_version
        ent = t.entity if as_of is None else t.entity_version
        for near, far, outward in ((edge.c.src, edge.c.dst, True), (edge.c.dst, edge.c.src, False)):
            other, named = t.node.alias("other"), ent.alias("named")
            on = named.c.node == far
            if as_of is not None:
                on = sa.and_(on, _live_alias(named, as_of))
            query = (
                sa.select(near.label("near"), edge.c.label, other.c.uri, named.c.name)
                .join(other, other.c.id == far)
                .outerjoin(named, on)
                .where(near.in_(nodes))
            )
            if as_of is not None:
                query = query.where(live(edge, as_of))
            for row in conn.execute(query):
                rel = schema.edge(labels.name(row.label))
                name = rel.name if outward else rel.inverse
                if name is not None:
                    found[row.near].append(Related(name, row.uri, row.name))
        return found


def _live_alias(version: Any, tx: int) -> sa.ColumnElement[bool]:
    """``store.reads.live`` for an alias of a version table."""
    return sa.and_(version.c.tx_from <= tx, sa.or_(version.c.tx_to.is_(None), version.c.tx_to > tx))
