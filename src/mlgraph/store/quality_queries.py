"""Set-based reads behind the quality report: per finding, one count by type and one page.

Each finding is a condition on the current ``entity`` row, checked with
index probes (``NOT EXISTS`` on the edge table's ``(src, label, …)`` key and
``(dst, label, …)`` index) inside one scan, so a report over a million
entities is a handful of scans, whatever it finds. The examples are the
first ``limit`` in a fixed order, so two reports on the same graph agree.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mlgraph.store import tables as t

HYDRATED = "hydrated"


@dataclass(frozen=True, slots=True)
class Example:
    """One entity a finding names; ``at`` is the time that makes it a finding, if any
    (last hydrated, unresolved since, last changed)."""

    uri: str
    type: str
    state: str
    name: str | None
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Found:
    by_type: dict[str, int]
    examples: tuple[Example, ...]

    @property
    def count(self) -> int:
        return sum(self.by_type.values())


def _edge_from(labels: Collection[int]) -> sa.Exists:
    e = t.edge
    return sa.exists().where(e.c.src == t.entity.c.node, e.c.label.in_(labels))


def _edge_to(labels: Collection[int]) -> sa.Exists:
    e = t.edge
    return sa.exists().where(e.c.dst == t.entity.c.node, e.c.label.in_(labels))


def _found(
    conn: Connection,
    where: Sequence[sa.ColumnElement[bool]],
    limit: int,
    *,
    joined: sa.FromClause = t.entity,
    at: sa.ColumnElement[datetime] | None = None,
    oldest_first: sa.ColumnElement[object] | None = None,
) -> Found:
    """Count ``where`` by type, and list the first ``limit`` (oldest first, then by URI)."""
    e, n = t.entity, t.node
    counts = conn.execute(
        sa.select(e.c.type, sa.func.count())
        .select_from(joined)
        .where(*where)
        .group_by(e.c.type)
        .order_by(e.c.type)
    )
    by_type = {type_: count for type_, count in counts}
    if not by_type or limit <= 0:
        return Found(by_type, ())
    when = sa.null() if at is None else at
    rows = conn.execute(
        sa.select(n.c.uri, e.c.type, e.c.state, e.c.name, when)
        .select_from(joined.join(n, n.c.id == e.c.node))
        .where(*where)
        .order_by(*([] if oldest_first is None else [oldest_first]), n.c.uri)
        .limit(limit)
    )
    return Found(by_type, tuple(Example(*row) for row in rows))


def missing_owners(
    conn: Connection, owner_labels: Collection[int], exempt: Collection[str], limit: int
) -> Found:
    """Hydrated entities nobody owns (stubs are unknown yet, so not counted)."""
    e = t.entity
    where = [e.c.state == HYDRATED, e.c.type.not_in(exempt), ~_edge_from(owner_labels)]
    return _found(conn, where, limit)


def missing_description(conn: Connection, exempt: Collection[str], limit: int) -> Found:
    e = t.entity
    blank = sa.or_(e.c.description.is_(None), e.c.description == "")
    return _found(conn, [e.c.state == HYDRATED, e.c.type.not_in(exempt), blank], limit)


def stale(conn: Connection, before: datetime, limit: int) -> Found:
    """Entities last hydrated before ``before``: their source has not been read since."""
    e, s = t.entity, t.entity_status
    where = [e.c.state == HYDRATED, s.c.hydrated_at < before]
    joined = e.join(s, s.c.node == e.c.node)
    return _found(
        conn, where, limit, joined=joined, at=s.c.hydrated_at, oldest_first=s.c.hydrated_at
    )


def orphans(conn: Connection, limit: int) -> Found:
    """Entities no edge touches, in either direction (owners count as edges)."""
    e, edge = t.entity, t.edge
    touching_from = sa.exists().where(edge.c.src == e.c.node)
    touching_to = sa.exists().where(edge.c.dst == e.c.node)
    return _found(conn, [~touching_from, ~touching_to], limit)


def idle_unconsumed(
    conn: Connection,
    before: datetime,
    consumers: tuple[Collection[int], Collection[int]],
    types: Collection[str],
    limit: int,
) -> Found:
    """Hydrated entities of ``types`` that nothing consumes and nothing changed since ``before``.

    Unchanged means no version after ``before`` and no ``source_updated_at``
    after it either. Transaction ids follow time, so "last version before"
    is ``entity.tx`` at most the last transaction before: no join needed.
    """
    e, tx = t.entity, t.tx
    last_tx = conn.execute(sa.select(sa.func.max(tx.c.id)).where(tx.c.at < before)).scalar() or 0
    # Stored as UTC ISO 8601 text, which sorts as time does when compared
    # byte by byte (PostgreSQL's locale collation would skip the punctuation).
    updated = e.c.doc["source_updated_at"].as_string()
    if conn.dialect.name == "postgresql":
        updated = updated.collate("C")
    out_labels, in_labels = consumers
    where = [
        e.c.state == HYDRATED,
        e.c.type.in_(types),
        e.c.tx <= last_tx,
        sa.or_(updated.is_(None), updated < before.astimezone(UTC).isoformat()),
        ~_edge_from(out_labels),
        ~_edge_to(in_labels),
    ]
    # The time is looked up for the page only; ids sort as times do.
    changed_at = sa.select(tx.c.at).where(tx.c.id == e.c.tx).scalar_subquery()
    return _found(conn, where, limit, at=changed_at, oldest_first=e.c.tx)


def unresolved_by_type(conn: Connection) -> dict[str, int]:
    """How many stubs no source could give, by type (``Store.unresolved`` lists them)."""
    s, e = t.entity_status, t.entity
    rows = conn.execute(
        sa.select(e.c.type, sa.func.count())
        .select_from(s.join(e, e.c.node == s.c.node))
        .where(s.c.unresolved.is_not(None), e.c.state == "stub")
        .group_by(e.c.type)
        .order_by(e.c.type)
    )
    return {type_: count for type_, count in rows}
