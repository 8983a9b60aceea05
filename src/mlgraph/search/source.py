"""Reading what documents are made of from the store, a batch at a time.

A document needs the entity and the names of the entities its edges lead to
(owners included), and, for its filter document, the names of the entities
whose edges lead to it, under the relationships' inverse names (a pipeline's
filter document lists its runs, as the reverse-search document does).
``Store.get`` and ``Store.neighbors`` would take three queries per entity and
one more per neighbour name; here a batch of entities costs three queries,
which is what makes a reindex of a large store bearable.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa

from mlgraph.search.documents import OWNER_TYPES, Related, Subject
from mlgraph.store import Store
from mlgraph.store import tables as t
from mlgraph.store.reads import to_entity

CHUNK = 500  # URIs per IN (...) list: well under every backend's parameter limit


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _subjects(store: Store, conn: sa.Connection, rows: Sequence[Any]) -> list[Subject]:
    if not rows:
        return []
    ed, dn, de = t.edge, t.node.alias("dst"), t.entity.alias("dst_entity")
    related: dict[int, list[Related]] = defaultdict(list)
    asserted: dict[int, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    query = (
        sa.select(ed.c.src, ed.c.label, ed.c.origin, dn.c.uri, de.c.type, de.c.name)
        .join(dn, dn.c.id == ed.c.dst)
        .outerjoin(de, de.c.node == ed.c.dst)
        .where(ed.c.src.in_([r.id for r in rows]))
    )
    for src, label, origin, uri, type_, name in conn.execute(query):
        relationship = store.schema.edge(store.labels.name(label)).name
        related[src].append(Related(relationship, uri, type_, name))
        if origin == "asserted":
            asserted[src][relationship].append(uri)
    incoming = _incoming(store, conn, [r.id for r in rows])
    return [
        Subject(
            to_entity(store.schema, r.uri, r, asserted.get(r.id, {})),
            tuple(related[r.id]),
            tuple(incoming[r.id]),
        )
        for r in rows
    ]


def _incoming(store: Store, conn: sa.Connection, nodes: list[int]) -> dict[int, list[Related]]:
    """The starts of the edges ending at ``nodes``, named by the relationships' inverses
    (edges whose relationship has no inverse name are left out: no search can name them)."""
    ed, sn, se = t.edge, t.node.alias("src"), t.entity.alias("src_entity")
    found: dict[int, list[Related]] = defaultdict(list)
    query = (
        sa.select(ed.c.dst, ed.c.label, sn.c.uri, se.c.type, se.c.name)
        .join(sn, sn.c.id == ed.c.src)
        .outerjoin(se, se.c.node == ed.c.src)
        .where(ed.c.dst.in_(nodes))
    )
    for dst, label, uri, type_, name in conn.execute(query):
        inverse = store.schema.edge(store.labels.name(label)).inverse
        if inverse is not None:
            found[dst].append(Related(inverse, uri, type_, name))
    return found


def _entity_rows() -> sa.Select[Any]:
    n, e = t.node, t.entity
    return sa.select(n.c.id, n.c.uri, e.c.type, e.c.state, e.c.name, e.c.description, e.c.doc).join(
        e, e.c.node == n.c.id
    )


def subjects(store: Store, uris: Iterable[str]) -> dict[str, Subject]:
    """The current subjects of those ``uris`` the store holds (the others are gone)."""
    found: dict[str, Subject] = {}
    wanted = sorted(set(uris))
    with store.engine.connect() as conn:
        for part in _chunks(wanted):
            rows = conn.execute(_entity_rows().where(t.node.c.uri.in_(part))).all()
            found.update((s.entity.uri, s) for s in _subjects(store, conn, rows))
    return found


def every_subject(store: Store, batch: int = 1000) -> Iterator[list[Subject]]:
    """Every current entity, a batch at a time, in node order (each batch its own read).

    Only nodes that existed when it started: entities created meanwhile are the
    feed's to deliver, or a busy store would keep the walk chasing its tail.
    """
    with store.engine.connect() as conn:
        last = conn.execute(sa.select(sa.func.max(t.node.c.id))).scalar() or 0
    after = 0
    while after < last:
        with store.engine.connect() as conn:
            rows = conn.execute(
                _entity_rows()
                .where(t.node.c.id > after, t.node.c.id <= last)
                .order_by(t.node.c.id)
                .limit(batch)
            ).all()
            if not rows:
                return
            yield _subjects(store, conn, rows)
        after = rows[-1].id


def counts(store: Store) -> tuple[int, int]:
    """How many entities the store holds now, and how many of them are owners."""
    e = t.entity
    with store.engine.connect() as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(e)).scalar_one()
        owners = conn.execute(
            sa.select(sa.func.count()).select_from(e).where(e.c.type.in_(sorted(OWNER_TYPES)))
        ).scalar_one()
    return int(total), int(owners)
