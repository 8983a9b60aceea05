"""The change feed: committed transactions in tx order, and durable reader cursors."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mlgraph.store import tables as t
from mlgraph.store.records import Change, ChangeItem, Op, Provenance

# Every feed reader (indexer, enricher, percolator) asks these again and again:
# built once, as SQLAlchemy spends three times as long on a statement built afresh.
_c, _tx = t.change, t.tx
_TXS = (
    sa.select(_tx.c.id, _tx.c.at, _tx.c.source, _tx.c.event_id, _tx.c.actor)
    .where(_tx.c.id > sa.bindparam("cursor"))
    .order_by(_tx.c.id)
    .limit(sa.bindparam("limit", type_=sa.Integer()))
)
_ITEMS = (
    sa.select(_c.c.tx, _c.c.kind, _c.c.op, _c.c.uri, _c.c.label, _c.c.other, _c.c.source,
              _c.c.event_id)
    .where(_c.c.tx > sa.bindparam("cursor"), _c.c.tx <= sa.bindparam("last"))
    .order_by(_c.c.tx, _c.c.seq)
)  # fmt: skip
_LAST_TX = sa.select(sa.func.max(_tx.c.id))
_POSITION = sa.select(t.cursor.c.position).where(t.cursor.c.name == sa.bindparam("name"))
_MOVE = (
    t.cursor.update()
    .where(t.cursor.c.name == sa.bindparam("reader"))
    .values(position=sa.bindparam("to"), updated_at=sa.bindparam("now"))
)
_ADD = t.cursor.insert()
_CURSORS = sa.select(t.cursor.c.name, t.cursor.c.position)
_OPS = {op.value: op for op in Op}  # a dict lookup, not an Enum call, per item


def changes_since(conn: Connection, cursor: int, limit: int = 1000) -> list[Change]:
    """Up to ``limit`` transactions after ``cursor``, oldest first.

    Ids are handed out in commit order under the transaction lock, so a reader
    that saves the last id it handled and asks again never skips a commit.
    """
    txs = conn.execute(_TXS, {"cursor": cursor, "limit": limit}).all()
    if not txs:
        return []
    items: dict[int, list[ChangeItem]] = defaultdict(list)
    rows = conn.execute(_ITEMS, {"cursor": cursor, "last": txs[-1][0]})
    for tx, kind, op, uri, label, other, source, event_id in rows:
        cause = None if source is None and event_id is None else Provenance(source, event_id, None)
        items[tx].append(ChangeItem(kind, _OPS[op], uri, label, other, cause))
    return [
        Change(id, at, Provenance(source, event_id, actor), tuple(items[id]))
        for id, at, source, event_id, actor in txs
    ]


def last_tx(conn: Connection) -> int:
    return int(conn.execute(_LAST_TX).scalar() or 0)


def cursor_position(conn: Connection, name: str) -> int:
    found = conn.execute(_POSITION, {"name": name}).scalar()
    return int(found or 0)


def save_cursor(conn: Connection, name: str, position: int) -> None:
    """Record that reader ``name`` has handled every transaction up to ``position``."""
    now = datetime.now(UTC)
    if conn.execute(_MOVE, {"reader": name, "to": position, "now": now}).rowcount == 0:
        conn.execute(_ADD, {"name": name, "position": position, "updated_at": now})


def cursors(conn: Connection) -> dict[str, int]:
    return dict(iter(conn.execute(_CURSORS)))
