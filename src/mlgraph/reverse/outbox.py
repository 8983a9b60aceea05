"""Writing what the follower found: membership changes and transitions, idempotently.

Every write here may be repeated (the feed handled twice, two followers for
a moment): a transition already recorded, or a member already there, is
left as it is rather than failing the whole batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from mlgraph.reverse import tables as rt
from mlgraph.store.prebuilt import ByDialect, among

Change = Literal["entered", "left"]
CHUNK = 500


@dataclass(frozen=True, slots=True)
class Found:
    """One transition the follower found."""

    search: int
    uri: str
    tx: int
    transition: Change
    at: datetime


def insert_ignoring_duplicates(
    conn: Connection, table: sa.Table, rows: list[dict[str, Any]]
) -> None:
    if not rows:
        return
    dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
    for i in range(0, len(rows), CHUNK):
        statement = dialect.insert(table).on_conflict_do_nothing()
        conn.execute(statement, rows[i : i + CHUNK])


def existing_searches(conn: Connection, ids: Iterable[int]) -> set[int]:
    wanted = sorted(set(ids))
    s = rt.saved_search
    found: set[int] = set()
    for i in range(0, len(wanted), CHUNK):
        rows = conn.execute(sa.select(s.c.id).where(s.c.id.in_(wanted[i : i + CHUNK])))
        found.update(int(r.id) for r in rows)
    return found


_MEMBERS_OF = ByDialect(
    lambda postgres: sa.select(rt.membership.c.search, rt.membership.c.uri).where(
        among(rt.membership.c.uri, "uris", sa.String(), postgres)
    )
)


_DROP_MEMBER = rt.membership.delete().where(
    rt.membership.c.search == sa.bindparam("drop_search"),
    rt.membership.c.uri == sa.bindparam("drop_uri"),
)


def members_of(conn: Connection, uris: Iterable[str]) -> dict[str, set[int]]:
    """The searches each of ``uris`` is a member of, as the membership table says."""
    wanted = sorted(set(uris))
    found: dict[str, set[int]] = {uri: set() for uri in wanted}
    query = _MEMBERS_OF.of(conn)
    for i in range(0, len(wanted), CHUNK):
        for search, uri in conn.execute(query, {"uris": wanted[i : i + CHUNK]}):
            found[uri].add(int(search))
    return found


def record(
    conn: Connection,
    found: list[Found],
    members: Mapping[tuple[int, str], int | None],
) -> set[int]:
    """Record transitions and apply membership changes; returns the searches gone meanwhile.

    ``members`` maps (search, uri) to the transaction it entered at, or None
    when it is no longer a member.
    """
    involved = {f.search for f in found} | {s for s, _ in members}
    alive = existing_searches(conn, involved)
    insert_ignoring_duplicates(
        conn,
        rt.transition,
        [
            {"search": f.search, "uri": f.uri, "tx": f.tx, "transition": f.transition, "at": f.at}
            for f in found
            if f.search in alive
        ],
    )
    m = rt.membership
    gone = [
        {"drop_search": s, "drop_uri": u}
        for (s, u), since in members.items()
        if since is None and s in alive
    ]
    if gone:
        conn.execute(_DROP_MEMBER, gone)
    insert_ignoring_duplicates(
        conn,
        m,
        [
            {"search": s, "uri": u, "since_tx": since}
            for (s, u), since in members.items()
            if since is not None and s in alive
        ],
    )
    return involved - alive


def replace_members(
    conn: Connection, search_ids: Iterable[int], members: Iterable[tuple[int, str]], since_tx: int
) -> None:
    """Set the membership of ``search_ids`` to exactly ``members`` (a rebuild: no transitions)."""
    m = rt.membership
    ids = sorted(set(search_ids))
    for i in range(0, len(ids), CHUNK):
        conn.execute(m.delete().where(m.c.search.in_(ids[i : i + CHUNK])))
    insert_ignoring_duplicates(
        conn, m, [{"search": s, "uri": u, "since_tx": since_tx} for s, u in members]
    )
