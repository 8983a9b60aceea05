"""Reading entities and their edges, now or as of any past transaction."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mlgraph.catalog.entity import Entity, LifecycleState
from mlgraph.catalog.schema import Schema
from mlgraph.catalog.validation import OWNERS
from mlgraph.store import tables as t
from mlgraph.store.labels import Labels
from mlgraph.store.records import EdgeChange, Neighbor, Provenance, Version

AsOf = int | datetime | None


def resolve_as_of(conn: Connection, as_of: AsOf) -> int | None:
    """A transaction id for ``as_of``: the last transaction committed at or before a time."""
    if as_of is None or isinstance(as_of, int):
        return as_of
    found = conn.execute(sa.select(sa.func.max(t.tx.c.id)).where(t.tx.c.at <= as_of)).scalar()
    return int(found or 0)


def live(table: sa.Table, tx: int | None) -> sa.ColumnElement[bool]:
    """Versions of ``table`` in force at transaction ``tx``."""
    assert tx is not None
    return sa.and_(table.c.tx_from <= tx, sa.or_(table.c.tx_to.is_(None), table.c.tx_to > tx))


def node_id(conn: Connection, uri: str) -> int | None:
    return conn.execute(sa.select(t.node.c.id).where(t.node.c.uri == uri)).scalar()


def to_entity(schema: Schema, uri: str, row: Any, references: Mapping[str, list[str]]) -> Entity:
    """An Entity from a stored version row and its outgoing asserted edges."""
    doc = row.doc
    etype = schema.types.get(row.type)
    attributes = {
        k: etype.fields[k].from_json(v) if etype and k in etype.fields else v
        for k, v in doc.get("attributes", {}).items()
    }
    refs = {k: tuple(sorted(v)) for k, v in references.items() if k != OWNERS}
    return Entity(
        uri=uri,
        type=row.type,
        name=row.name,
        description=row.description,
        owners=tuple(sorted(references.get(OWNERS, ()))),
        tags=doc.get("tags", {}),
        attributes=attributes,
        references=dict(sorted(refs.items())),
        state=LifecycleState(row.state),
        source_created_at=parse_time(doc.get("source_created_at")),
        source_updated_at=parse_time(doc.get("source_updated_at")),
    )


def parse_time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


class Reader:
    def __init__(self, schema: Schema, labels: Labels) -> None:
        self.schema = schema
        self.labels = labels

    def get(self, conn: Connection, uri: str, as_of: AsOf = None) -> Entity | None:
        node = node_id(conn, uri)
        if node is None:
            return None
        tx = resolve_as_of(conn, as_of)
        if tx is None:
            e = t.entity
            row = conn.execute(sa.select(e).where(e.c.node == node)).first()
        else:
            v = t.entity_version
            row = conn.execute(sa.select(v).where(v.c.node == node, live(v, tx))).first()
        if row is None:
            return None
        return to_entity(self.schema, uri, row, self.references(conn, [node], tx).get(node, {}))

    def references(
        self, conn: Connection, nodes: list[int], tx: int | None
    ) -> dict[int, dict[str, list[str]]]:
        """Outgoing asserted edges of ``nodes``, grouped by relationship name."""
        table = t.edge if tx is None else t.edge_version
        query = (
            sa.select(table.c.src, table.c.label, t.node.c.uri)
            .join(t.node, t.node.c.id == table.c.dst)
            .where(table.c.src.in_(nodes), table.c.origin == "asserted")
        )
        if tx is not None:
            query = query.where(live(table, tx))
        out: dict[int, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
        for src, label, dst in conn.execute(query):
            out[src][self.schema.edge(self.labels.name(label)).name].append(dst)
        return out

    def neighbors(
        self,
        conn: Connection,
        uri: str,
        as_of: AsOf = None,
        *,
        direction: Literal["out", "in", "both"] = "both",
        relationships: Iterable[str] | None = None,
    ) -> list[Neighbor]:
        node = node_id(conn, uri)
        if node is None:
            return []
        tx = resolve_as_of(conn, as_of)
        wanted = set(relationships) if relationships is not None else None
        found: list[Neighbor] = []
        sides: list[Literal["out", "in"]] = ["out", "in"] if direction == "both" else [direction]
        for side in sides:
            for row in self._edges(conn, node, side, tx):
                rel = self.schema.edge(self.labels.name(row.label))
                name = rel.name if side == "out" else (rel.inverse or f"~{rel.name}")
                if wanted is not None and name not in wanted:
                    continue
                found.append(
                    Neighbor(
                        name,
                        side,
                        row.uri,
                        row.type,
                        rel.label,
                        row.origin,
                        row.provenance,
                        row.tx_from,
                    )
                )
        found.sort(key=lambda n: (n.relationship, n.direction, n.uri))
        return found

    def _edges(self, conn: Connection, node: int, side: str, tx: int | None) -> Iterable[Any]:
        table = t.edge if tx is None else t.edge_version
        near, far = (table.c.src, table.c.dst) if side == "out" else (table.c.dst, table.c.src)
        since = table.c.tx if tx is None else table.c.tx_from
        ent = t.entity if tx is None else t.entity_version
        on = ent.c.node == far if tx is None else sa.and_(ent.c.node == far, live(ent, tx))
        query = (
            sa.select(
                table.c.label,
                table.c.origin,
                table.c.provenance,
                since.label("tx_from"),
                t.node.c.uri,
                ent.c.type,
            )
            .join(t.node, t.node.c.id == far)
            .outerjoin(ent, on)
            .where(near == node)
        )
        if tx is not None:
            query = query.where(live(table, tx))
        return conn.execute(query)

    def history(self, conn: Connection, uri: str) -> list[Version]:
        node = node_id(conn, uri)
        if node is None:
            return []
        v, ev = t.entity_version, t.edge_version
        versions = conn.execute(sa.select(v).where(v.c.node == node).order_by(v.c.tx_from)).all()
        edges = conn.execute(
            sa.select(ev.c.src, ev.c.label, ev.c.dst, ev.c.tx_from, ev.c.tx_to).where(
                sa.or_(ev.c.src == node, ev.c.dst == node)
            )
        ).all()
        others = {e.dst if e.src == node else e.src for e in edges}
        uris: dict[int, str] = {}
        if others:
            query = sa.select(t.node.c.id, t.node.c.uri).where(t.node.c.id.in_(others))
            uris = {n: u for n, u in conn.execute(query)}

        added: dict[int, list[EdgeChange]] = defaultdict(list)
        removed: dict[int, list[EdgeChange]] = defaultdict(list)
        for e in edges:
            change = self._edge_change(node, e, uris)
            added[e.tx_from].append(change)
            if e.tx_to is not None:
                removed[e.tx_to].append(change)

        opened = {r.tx_from: r for r in versions}
        closed = {r.tx_to for r in versions if r.tx_to is not None}
        txs = sorted(set(opened) | closed | set(added) | set(removed))
        meta = (
            {r.id: r for r in conn.execute(sa.select(t.tx).where(t.tx.c.id.in_(txs)))}
            if txs
            else {}
        )
        causes = self._causes(conn, uri, txs)

        out: list[Version] = []
        previous: Entity | None = None
        for tx in txs:
            refs = self.references(conn, [node], tx).get(node, {})
            row = opened.get(tx)
            if row is not None:
                entity: Entity | None = to_entity(self.schema, uri, row, refs)
                op: Literal["created", "updated", "retracted", "edges"] = (
                    "created" if previous is None else "updated"
                )
            elif tx in closed:
                entity, op = None, "retracted"
            else:
                entity = previous.model_copy(update=_refs_update(refs)) if previous else None
                op = "edges"
            changes = diff(previous, entity)
            m = meta[tx]
            source, event_id = causes.get(tx, (m.source, m.event_id))
            out.append(
                Version(
                    tx,
                    m.at,
                    Provenance(source, event_id, m.actor),
                    op,
                    entity,
                    changes,
                    tuple(sorted(added.get(tx, []), key=_edge_key)),
                    tuple(sorted(removed.get(tx, []), key=_edge_key)),
                )
            )
            previous = entity
        return out

    def _causes(
        self, conn: Connection, uri: str, txs: list[int]
    ) -> dict[int, tuple[str | None, str | None]]:
        """Per-entity causes recorded in the feed, for transactions that carried several."""
        if not txs:
            return {}
        c = t.change
        rows = conn.execute(
            sa.select(c.c.tx, c.c.source, c.c.event_id, c.c.kind)
            .where(c.c.tx.in_(txs), c.c.uri == uri, c.c.event_id.is_not(None))
            .order_by(c.c.tx, c.c.seq)
        )
        found: dict[int, tuple[str | None, str | None]] = {}
        for r in rows:
            if r.tx not in found or r.kind == "entity":
                found[r.tx] = (r.source, r.event_id)
        return found

    def _edge_change(self, node: int, e: Any, uris: Mapping[int, str]) -> EdgeChange:
        rel = self.schema.edge(self.labels.name(e.label))
        if e.src == node:
            return EdgeChange(rel.name, "out", uris[e.dst])
        return EdgeChange(rel.inverse or f"~{rel.name}", "in", uris[e.src])


def _refs_update(refs: Mapping[str, list[str]]) -> dict[str, Any]:
    return {
        "owners": tuple(sorted(refs.get(OWNERS, ()))),
        "references": {k: tuple(sorted(v)) for k, v in sorted(refs.items()) if k != OWNERS},
    }


def _edge_key(e: EdgeChange) -> tuple[str, str, str]:
    return (e.relationship, e.direction, e.uri)


def flatten(entity: Entity | None) -> dict[str, Any]:
    """An entity as flat ``field -> value`` pairs, for diffs."""
    if entity is None:
        return {}
    flat: dict[str, Any] = {
        "type": entity.type,
        "state": entity.state.value,
        "name": entity.name,
        "description": entity.description,
        "owners": entity.owners,
        "source_created_at": entity.source_created_at,
        "source_updated_at": entity.source_updated_at,
    }
    flat.update({f"tags.{k}": v for k, v in entity.tags.items()})
    flat.update({f"attributes.{k}": v for k, v in entity.attributes.items()})
    flat.update({f"references.{k}": v for k, v in entity.references.items()})
    return flat


def diff(before: Entity | None, after: Entity | None) -> dict[str, tuple[Any, Any]]:
    """``field -> (old, new)`` for every field that differs."""
    a, b = flatten(before), flatten(after)
    return {k: (a.get(k), b.get(k)) for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)}
