"""An outbox row as the event a subscriber receives, and reading them after a cursor.

The outbox (``search_transition``) only grows, and its ids increase in the
order rows are committed by the one follower, so a transition id is a cursor:
"everything after 41" is the same set however often it is asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa

from mlgraph.reverse import tables as rt
from mlgraph.store import Store

Kind = Literal["entered", "left", "invalid"]
KINDS: tuple[Kind, ...] = ("entered", "left", "invalid")


@dataclass(frozen=True, slots=True)
class Notice:
    """One transition: ``uri`` entered or left search ``search`` at ``tx``.

    ``invalid`` says the search itself no longer compiles (``uri`` is empty):
    its owner has to edit it.
    """

    id: int  # the outbox id: the cursor to resume after
    search: int
    kind: Kind
    uri: str
    tx: int
    at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "search": self.search,
            "kind": self.kind,
            "uri": self.uri or None,
            "tx": self.tx,
            "at": self.at.isoformat(),
        }


def _notice(row: Any) -> Notice:
    return Notice(int(row.id), int(row.search), row.transition, row.uri, int(row.tx), row.at)


def read_notices(store: Store, search_id: int | None, after: int, limit: int = 500) -> list[Notice]:
    """Notices with ids above ``after`` (of one search, or all), oldest first."""
    tr = rt.transition
    query = sa.select(tr).where(tr.c.id > after).order_by(tr.c.id).limit(limit)
    if search_id is not None:
        query = query.where(tr.c.search == search_id)
    with store.engine.connect() as conn:
        return [_notice(r) for r in conn.execute(query)]


def last_notice_id(store: Store) -> int:
    """The newest outbox id (0 when empty): where a stream that asks for "from now" starts."""
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.max(rt.transition.c.id))).scalar() or 0)
