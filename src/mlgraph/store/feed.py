"""The change feed: committed transactions in tx order, and durable reader cursors."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mlgraph.store import tables as t
from mlgraph.store.records import Change, ChangeItem, Op, Provenance


def changes_since(conn: Connection, cursor: int, limit: int = 1000) -> list[Change]:
    """Up to ``limit`` transactions after ``cursor``, oldest first.

    Ids are handed out in commit order under the transaction lock, so a reader
    that saves the last id it handled and asks again never skips a commit.
    """
    txs = conn.execute(
        sa.select(t.tx).where(t.tx.c.id > cursor).order_by(t.tx.c.id).limit(limit)
    ).all()
    if not txs:
        return []
    c = t.change
    items: dict[int, list[ChangeItem]] = defaultdict(list)
    rows = conn.execute(
        sa.select(c).where(c.c.tx > cursor, c.c.tx <= txs[-1].id).order_by(c.c.tx, c.c.seq)
    )
    for r in rows:
        cause = (
            None
            if r.source is None and r.event_id is None
            else Provenance(r.source, r.event_id, None)
        )
        items[r.tx].append(ChangeItem(r.kind, Op(r.op), r.uri, r.label, r.other, cause))
    return [
        Change(r.id, r.at, Provenance(r.source, r.event_id, r.actor), tuple(items[r.id]))
        for r in txs
    ]


def last_tx(conn: Connection) -> int:
    return int(conn.execute(sa.select(sa.func.max(t.tx.c.id))).scalar() or 0)


def cursor_position(conn: Connection, name: str) -> int:
    found = conn.execute(sa.select(t.cursor.c.position).where(t.cursor.c.name == name)).scalar()
    return int(found or 0)


def save_cursor(conn: Connection, name: str, position: int) -> None:
    """Record that reader ``name`` has handled every transaction up to ``position``."""
    now = datetime.now(UTC)
    updated = conn.execute(
        t.cursor.update().where(t.cursor.c.name == name).values(position=position, updated_at=now)
    )
    if updated.rowcount == 0:
        conn.execute(t.cursor.insert(), {"name": name, "position": position, "updated_at": now})


def cursors(conn: Connection) -> dict[str, int]:
    return dict(iter(conn.execute(sa.select(t.cursor.c.name, t.cursor.c.position))))
