"""Reads of many entities at once, for callers that would otherwise ask one at a time.

The GraphQL DataLoaders gather every entity, relationship and status a query
level needs and ask for them here in one call: one statement per call (per
``CHUNK`` URIs), whatever the number of entities, so the statements a query
issues grow with its depth, not with its results.

The statements are built once, with bound parameters (building a windowed
select with SQLAlchemy costs more than SQLite takes to run it).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mlgraph.catalog.entity import Entity
from mlgraph.store import tables as t
from mlgraph.store.reads import Reader, to_entity
from mlgraph.store.records import EntityStatus, Neighbor

# URIs per statement. SQLite takes up to 32,766 bound parameters, PostgreSQL
# 65,535; the API's cost limit keeps one query level well below this.
CHUNK = 10_000


@dataclass(frozen=True, slots=True)
class NeighborPage:
    """One page of an entity's neighbors along one relationship, and how many there are.

    ``entities`` are the neighbors themselves, read in the same statement, item for
    item: their own fields, without their references (None for an entity that has no
    version at that point)."""

    total: int
    items: tuple[Neighbor, ...]
    entities: tuple[Entity | None, ...] = ()


@dataclass(frozen=True, slots=True)
class EntityPage:
    """URIs of current entities in URI order, after a cursor, and how many match in all."""

    uris: tuple[str, ...]
    total: int


def _chunks(items: Iterable[str]) -> Iterator[list[str]]:
    wanted = list(dict.fromkeys(items))
    for i in range(0, len(wanted), CHUNK):
        yield wanted[i : i + CHUNK]


def _alive(table: sa.Table) -> sa.ColumnElement[bool]:
    """Versions of ``table`` in force at the transaction bound as ``tx``."""
    tx: sa.BindParameter[int] = sa.bindparam("tx")
    return sa.and_(table.c.tx_from <= tx, sa.or_(table.c.tx_to.is_(None), table.c.tx_to > tx))


def _uris() -> sa.BindParameter[Any]:
    return sa.bindparam("uris", expanding=True)


@functools.cache
def _entities_statement(historical: bool) -> sa.Select[Any]:
    n = t.node
    if not historical:
        e = t.entity
        return sa.select(n.c.uri, e).join(e, e.c.node == n.c.id).where(n.c.uri.in_(_uris()))
    v = t.entity_version
    return (
        sa.select(n.c.uri, v)
        .join(v, sa.and_(v.c.node == n.c.id, _alive(v)))
        .where(n.c.uri.in_(_uris()))
    )


def get_many(
    conn: Connection,
    reader: Reader,
    uris: Iterable[str],
    tx: int | None,
    *,
    references: bool = True,
) -> dict[str, Entity]:
    """The entities among ``uris`` that exist now (or at transaction ``tx``), by URI.

    Without ``references``, owners and references are left empty and no edge is read:
    for readers that follow relationships with ``neighbors_many`` anyway."""
    found: dict[str, Entity] = {}
    query = _entities_statement(tx is not None)
    for part in _chunks(uris):
        rows = conn.execute(query, {"uris": part, "tx": tx}).all()
        if not rows:
            continue
        refs = reader.references(conn, [r.node for r in rows], tx) if references else {}
        for row in rows:
            found[row.uri] = to_entity(reader.schema, row.uri, row, refs.get(row.node, {}))
    return found


@functools.cache
def _neighbors_statement(direction: str, historical: bool, limited: bool) -> sa.Select[Any]:
    table = t.edge_version if historical else t.edge
    near, far = (table.c.src, table.c.dst) if direction == "out" else (table.c.dst, table.c.src)
    here, there = t.node.alias("here"), t.node.alias("there")
    ent = t.entity_version if historical else t.entity
    on = sa.and_(ent.c.node == far, _alive(ent)) if historical else ent.c.node == far
    since = table.c.tx_from if historical else table.c.tx
    inner = (
        sa.select(
            here.c.uri.label("frm"),
            there.c.uri.label("to"),
            table.c.label,
            table.c.origin,
            table.c.provenance,
            since.label("since"),
            ent.c.type,
            ent.c.state,
            ent.c.name,
            ent.c.description,
            ent.c.doc,
            sa.func.row_number()
            .over(partition_by=near, order_by=(there.c.uri, table.c.label))
            .label("rn"),
            sa.func.count().over(partition_by=near).label("total"),
        )
        .select_from(table)
        .join(here, here.c.id == near)
        .join(there, there.c.id == far)
        .outerjoin(ent, on)
        .where(here.c.uri.in_(_uris()), table.c.label.in_(sa.bindparam("labels", expanding=True)))
    )
    if historical:
        inner = inner.where(_alive(table))
    sub = inner.subquery()
    in_page = sub.c.rn > sa.bindparam("offset")
    if limited:
        in_page = sa.and_(in_page, sub.c.rn <= sa.bindparam("upto"))
    # Each entity's first row comes too, page or not: it carries the total.
    return sa.select(sub).where(sa.or_(in_page, sub.c.rn == 1)).order_by(sub.c.frm, sub.c.rn)


def neighbors_many(
    conn: Connection,
    reader: Reader,
    uris: Iterable[str],
    labels: Iterable[str],
    direction: Literal["out", "in"],
    tx: int | None,
    *,
    offset: int = 0,
    limit: int | None = None,
) -> dict[str, NeighborPage]:
    """For each of ``uris``, its neighbors along edges labelled ``labels`` (leaving it for
    ``out``, arriving for ``in``), in URI order: ``limit`` of them after the first ``offset``.

    Paging is done per entity in SQL (a window over each entity's edges), so a
    page of neighbors for every entity of a level is one statement.
    """
    label_ids = reader.labels.ids(labels)
    out: dict[str, NeighborPage] = {}
    if not label_ids:
        return out
    query = _neighbors_statement(direction, tx is not None, limit is not None)
    upto = None if limit is None else offset + limit
    for part in _chunks(uris):
        params = {"uris": part, "labels": label_ids, "tx": tx, "offset": offset, "upto": upto}
        pages: dict[str, tuple[int, list[Neighbor], list[Entity | None]]] = {}
        for row in conn.execute(query, params):
            entry = pages.setdefault(row.frm, (row.total, [], []))
            if row.rn <= offset or (upto is not None and row.rn > upto):
                continue
            rel = reader.schema.edge(reader.labels.name(row.label))
            name = rel.name if direction == "out" else (rel.inverse or f"~{rel.name}")
            neighbor = Neighbor(
                name, direction, row.to, row.type, rel.label, row.origin, row.provenance, row.since
            )
            entry[1].append(neighbor)
            entry[2].append(None if row.type is None else to_entity(reader.schema, row.to, row, {}))
        out.update(
            (uri, NeighborPage(total, tuple(items), tuple(entities)))
            for uri, (total, items, entities) in pages.items()
        )
    return out


@functools.cache
def _statuses_statement() -> sa.Select[Any]:
    s, n = t.entity_status, t.node
    return (
        sa.select(n.c.uri, s.c.hydrated_at, s.c.enriched_at, s.c.unresolved, s.c.unresolved_at)
        .join(n, n.c.id == s.c.node)
        .where(n.c.uri.in_(_uris()))
    )


def statuses_many(conn: Connection, uris: Iterable[str]) -> dict[str, EntityStatus]:
    """When each of ``uris`` was last hydrated and enriched (those with a status row)."""
    found: dict[str, EntityStatus] = {}
    for part in _chunks(uris):
        rows = conn.execute(_statuses_statement(), {"uris": part})
        found.update((uri, EntityStatus(*rest)) for uri, *rest in rows)
    return found


def entity_page(
    conn: Connection, type_: str | None, after: str | None, limit: int, tx: int | None
) -> EntityPage:
    """Up to ``limit`` URIs of entities (of ``type_``, if given) after ``after``, in URI order."""
    n = t.node
    if tx is None:
        e = t.entity
        base = sa.select(n.c.uri).join(e, e.c.node == n.c.id)
        typed = e.c.type
    else:
        v = t.entity_version
        base = sa.select(n.c.uri).join(v, sa.and_(v.c.node == n.c.id, _alive(v)))
        typed = v.c.type
    if type_ is not None:
        base = base.where(typed == type_)
    params = {"tx": tx}
    total = conn.execute(sa.select(sa.func.count()).select_from(base.subquery()), params)
    page = base.order_by(n.c.uri).limit(limit)
    if after is not None:
        page = page.where(n.c.uri > after)
    return EntityPage(tuple(conn.execute(page, params).scalars()), int(total.scalar_one()))
