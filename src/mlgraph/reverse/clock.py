"""Time passing: when can ``updated_at > now-7d`` change its answer about a document?

A relative atom ``field OP now+B`` (``B`` is ``-7d`` in seconds for
``now-7d``) compares each value ``v`` of the field with ``now + B``: its answer
can change only at ``now = v - B``. A search's answer about a document is
therefore constant between consecutive such *flip times* of its relative
atoms, and only those atoms count whose conjunction's fixed literals hold
(``type == 'Model' AND updated_at > now-7d`` never flips for a dataset).

The follower keeps, per (search, entity), the next flip time at or after the
moment it last evaluated the pair (table ``search_due``); the clock step
re-checks only the rows that fell due. Times here are integer microseconds
since the epoch, the resolution of the store's datetimes, so a flip time read
back from the database is exactly the one computed.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from mlgraph.reverse import tables as rt
from mlgraph.reverse.compiler import CompiledSearch
from mlgraph.reverse.predicate import Check, Prepared, all_checks, literal_check
from mlgraph.reverse.query import Atom, Node, Not

Now = Callable[[], datetime]  # the clock; tests pass one they move by hand
Micros = int  # microseconds since the epoch

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICRO = timedelta(microseconds=1)
SECOND: Micros = 1_000_000
CHUNK = 500


def system_now() -> datetime:
    return datetime.now(UTC)


def micros(moment: datetime) -> Micros:
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return (aware - EPOCH) // MICRO


def moment(at: Micros) -> datetime:
    return EPOCH + at * MICRO


def seconds(at: Micros) -> float:
    """``at`` as the epoch seconds checks take (exactly ``moment(at).timestamp()``)."""
    return at / SECOND


@dataclass(frozen=True, slots=True)
class TimeRule:
    """A search's relative atoms ((field, bound) pairs), each group with the fixed literals
    that must hold for its atoms to matter (None: always)."""

    groups: tuple[tuple[Check | None, tuple[tuple[str, float], ...]], ...]


def time_rule(compiled: CompiledSearch) -> TimeRule | None:
    """What makes ``compiled``'s answer depend on time; None if it does not."""
    groups: list[tuple[Check | None, tuple[tuple[str, float], ...]]] = []
    if compiled.conjunctions is None:  # too large to split: every relative atom counts
        atoms = tuple(_bound(a) for a in _relative_atoms(compiled.tree))
        if atoms:
            groups.append((None, atoms))
    else:
        for conjunction in compiled.conjunctions:
            atoms = tuple(_bound(a) for a, _ in conjunction if a.relative)
            if not atoms:
                continue
            fixed = tuple(
                literal_check(a, positive) for a, positive in conjunction if not a.relative
            )
            groups.append((all_checks(fixed) if fixed else None, atoms))
    return TimeRule(tuple(groups)) if groups else None


def _bound(atom: Atom) -> tuple[str, float]:
    return atom.field, float(atom.values[0])


def _relative_atoms(node: Node) -> Iterable[Atom]:
    if isinstance(node, Atom):
        if node.relative:
            yield node
    elif isinstance(node, Not):
        yield from _relative_atoms(node.item)
    else:
        for item in node.items:
            yield from _relative_atoms(item)


def flip_times(rule: TimeRule, doc: Prepared) -> list[Micros]:
    """The moments, in order, at which the search's answer about ``doc`` may change."""
    found: set[Micros] = set()
    for fixed, atoms in rule.groups:
        if fixed is not None and not fixed(doc, 0.0):  # fixed literals do not read "now"
            continue
        for field, bound in atoms:
            shift = round(bound * SECOND)
            for value in doc.get(field, ()):
                # In whole microseconds before subtracting: exact for datetimes.
                found.add(round(value * SECOND) - shift)
    return sorted(found)


def next_flip(times: list[Micros], at: Micros) -> Micros | None:
    """The first flip time at or after ``at`` (at ``at`` itself, ``>=`` and ``<`` flip
    only just after: the pair is looked at again then)."""
    i = bisect.bisect_left(times, at)
    return times[i] if i < len(times) else None


def settled(times: list[Micros], at: Micros) -> Micros:
    """A moment strictly inside the interval that starts at ``at``: there the answer is the
    one that holds just after ``at``, whichever operators flip there."""
    i = bisect.bisect_right(times, at)
    return (at + times[i]) // 2 if i < len(times) else at + SECOND


# -- the due-time table ---------------------------------------------------------------


def earliest_due(conn: Connection) -> Micros | None:
    found = conn.execute(sa.select(sa.func.min(rt.due.c.due_at))).scalar()
    return None if found is None else micros(found)


def due_rows(conn: Connection, until: Micros, limit: int) -> list[tuple[int, str, Micros]]:
    """(search, uri, due) of the rows due at or before ``until``, earliest first."""
    d = rt.due
    rows = conn.execute(
        sa.select(d.c.search, d.c.uri, d.c.due_at)
        .where(d.c.due_at <= moment(until))
        .order_by(d.c.due_at, d.c.search, d.c.uri)
        .limit(limit)
    )
    return [(int(r.search), str(r.uri), micros(r.due_at)) for r in rows]


def write_dues(
    conn: Connection,
    dues: Mapping[tuple[int, str], Micros | None],
    gone: Iterable[str] = (),
    alive: set[int] | None = None,
) -> None:
    """Forget every due row of the ``gone`` entities, then set (or, for None, delete) ``dues``
    (only for the ``alive`` searches, when given: the others were deleted meanwhile)."""
    d = rt.due
    gone_uris = sorted(set(gone))
    for i in range(0, len(gone_uris), CHUNK):
        conn.execute(d.delete().where(d.c.uri.in_(gone_uris[i : i + CHUNK])))
    dropped = [{"drop_search": s, "drop_uri": u} for (s, u), due in dues.items() if due is None]
    if dropped:
        conn.execute(_DROP_DUE, dropped)
    rows = [
        {"search": s, "uri": u, "due_at": moment(due)}
        for (s, u), due in dues.items()
        if due is not None and (alive is None or s in alive)
    ]
    dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
    for i in range(0, len(rows), CHUNK):
        statement = dialect.insert(d)
        statement = statement.on_conflict_do_update(
            index_elements=[d.c.search, d.c.uri], set_={"due_at": statement.excluded.due_at}
        )
        conn.execute(statement, rows[i : i + CHUNK])


_DROP_DUE = rt.due.delete().where(
    rt.due.c.search == sa.bindparam("drop_search"), rt.due.c.uri == sa.bindparam("drop_uri")
)


def forget_dues(conn: Connection, search_ids: Iterable[int]) -> None:
    ids = sorted(set(search_ids))
    for i in range(0, len(ids), CHUNK):
        conn.execute(rt.due.delete().where(rt.due.c.search.in_(ids[i : i + CHUNK])))
