"""Entity status: when an entity was last hydrated and enriched, and unresolved references.

Bookkeeping, not facts: rows are overwritten in place and never enter the
history or the change feed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from mlgraph.store import tables as t
from mlgraph.store.prebuilt import ByDialect, among
from mlgraph.store.records import EntityStatus, Unresolved

_CHUNK = 500
_s, _n = t.entity_status, t.node
_NODE_IDS = ByDialect(
    lambda pg: sa.select(_n.c.uri, _n.c.id).where(among(_n.c.uri, "uris", sa.Text(), pg))
)


def _stamp(columns: dict[str, sa.ColumnElement[Any]]) -> ByDialect[Any]:
    """Upsert ``columns`` into the status rows of the entities at :uris, in one statement.

    The stamps are written by INSERT ... SELECT from ``node``: no lookup of node
    ids first, and no row built in Python per entity (the ingest path stamps
    every entity it writes).
    """

    def build(postgres: bool) -> Any:
        insert = (postgresql.insert if postgres else sqlite.insert)(_s)
        # SQLite needs the WHERE for INSERT ... SELECT ... ON CONFLICT to parse.
        found = sa.select(_n.c.id, *columns.values()).where(
            among(_n.c.uri, "uris", sa.Text(), postgres)
        )
        return insert.from_select(["node", *columns], found).on_conflict_do_update(
            index_elements=["node"], set_={c: insert.excluded[c] for c in columns}
        )

    return ByDialect(build)


_AT = sa.bindparam("at", type_=_s.c.hydrated_at.type)
_NULL_TEXT = sa.cast(sa.null(), sa.Text())
_NULL_AT = sa.cast(sa.null(), _s.c.unresolved_at.type)
_HYDRATED = _stamp({"hydrated_at": _AT, "unresolved": _NULL_TEXT, "unresolved_at": _NULL_AT})
_ENRICHED = _stamp({"enriched_at": _AT})


def _node_ids(conn: Connection, uris: Iterable[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    wanted = list(dict.fromkeys(uris))
    query = _NODE_IDS.of(conn)
    for i in range(0, len(wanted), _CHUNK):
        found.update(iter(conn.execute(query, {"uris": wanted[i : i + _CHUNK]})))
    return found


def _upsert(conn: Connection, rows: list[dict[str, Any]], columns: Iterable[str]) -> None:
    """Insert rows, or overwrite ``columns`` where the entity already has a status row."""
    if not rows:
        return
    insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(
        t.entity_status
    )
    conn.execute(
        insert.on_conflict_do_update(
            index_elements=["node"], set_={c: insert.excluded[c] for c in columns}
        ),
        rows,
    )


def _stamp_all(conn: Connection, stamp: ByDialect[Any], uris: Iterable[str], at: datetime) -> None:
    wanted = list(dict.fromkeys(uris))
    statement = stamp.of(conn)
    for i in range(0, len(wanted), _CHUNK):
        conn.execute(statement, {"uris": wanted[i : i + _CHUNK], "at": at})


def mark_hydrated(conn: Connection, uris: Iterable[str], at: datetime) -> None:
    """The source was read for these entities at ``at``: they resolve, whatever was said before."""
    _stamp_all(conn, _HYDRATED, uris, at)


def mark_enriched(conn: Connection, uris: Iterable[str], at: datetime) -> None:
    _stamp_all(conn, _ENRICHED, uris, at)


def mark_unresolved(conn: Connection, reasons: Mapping[str, str], at: datetime) -> None:
    """References to these entities cannot be hydrated, for the reason given: stop trying."""
    ids = _node_ids(conn, reasons)
    rows = [{"node": ids[u], "unresolved": r, "unresolved_at": at} for u, r in reasons.items()
            if u in ids]  # fmt: skip
    _upsert(conn, rows, ("unresolved", "unresolved_at"))


def status(conn: Connection, uri: str) -> EntityStatus | None:
    s = t.entity_status
    row = conn.execute(
        sa.select(s.c.hydrated_at, s.c.enriched_at, s.c.unresolved, s.c.unresolved_at)
        .join(t.node, t.node.c.id == s.c.node)
        .where(t.node.c.uri == uri)
    ).first()
    return None if row is None else EntityStatus(*row)


def statuses(conn: Connection, uris: Iterable[str]) -> dict[str, EntityStatus]:
    s, n = t.entity_status, t.node
    found: dict[str, EntityStatus] = {}
    wanted = list(dict.fromkeys(uris))
    for i in range(0, len(wanted), _CHUNK):
        rows = conn.execute(
            sa.select(n.c.uri, s.c.hydrated_at, s.c.enriched_at, s.c.unresolved, s.c.unresolved_at)
            .join(n, n.c.id == s.c.node)
            .where(n.c.uri.in_(wanted[i : i + _CHUNK]))
        )
        found.update((uri, EntityStatus(*rest)) for uri, *rest in rows)
    return found


def unresolved(conn: Connection, limit: int = 1000) -> list[Unresolved]:
    """Stubs whose hydration failed for good, with how many entities still point to them."""
    s, n, e, ent = t.entity_status, t.node, t.edge, t.entity
    referrers = (
        sa.select(sa.func.count()).select_from(e).where(e.c.dst == s.c.node).scalar_subquery()
    )
    rows = conn.execute(
        sa.select(n.c.uri, ent.c.type, s.c.unresolved, s.c.unresolved_at, referrers)
        .select_from(s)
        .join(n, n.c.id == s.c.node)
        .join(ent, ent.c.node == s.c.node)
        .where(s.c.unresolved.is_not(None), ent.c.state == "stub")
        .order_by(n.c.uri)
        .limit(limit)
    )
    return [Unresolved(*row) for row in rows]


def record_hydration(
    conn: Connection, hydrated: Iterable[str], gone: Iterable[str], at: datetime
) -> None:
    """After a hydration's writes: stamp what the source gave, and report what it lost
    but other entities still point to (the store kept those as stubs)."""
    mark_hydrated(conn, hydrated, at)
    gone = list(gone)
    if not gone:
        return
    n, e = t.node, t.entity
    kept = conn.execute(
        sa.select(n.c.uri).join(e, e.c.node == n.c.id).where(n.c.uri.in_(gone), e.c.state == "stub")
    ).scalars()
    reason = "the source has no such object (404), yet other entities refer to it"
    mark_unresolved(conn, dict.fromkeys(kept, reason), at)
