"""Set-at-a-time hops over the current edges, for walks driven from Python.

The enricher evaluates relationship paths one step at a time over many
starting points at once: one query per step and chunk, never one per node.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mlgraph.store import tables as t
from mlgraph.store.labels import Labels

_CHUNK = 500

# Built once: the enricher runs these for every batch of the change feed, and
# SQLAlchemy spends three times as long on a statement (with its aliases) built afresh.
_n, _e, _edge = t.node, t.entity, t.edge
_STATES = (
    sa.select(_n.c.uri, _e.c.type, _e.c.state)
    .join(_e, _e.c.node == _n.c.id)
    .where(_n.c.uri.in_(sa.bindparam("uris", expanding=True)))
)


def _hop(near: sa.Column[Any], far: sa.Column[Any]) -> sa.Select[Any]:
    here, there = _n.alias("here"), _n.alias("there")
    return (
        sa.select(here.c.uri, _edge.c.label, there.c.uri)
        .select_from(_edge)
        .join(here, here.c.id == near)
        .join(there, there.c.id == far)
        .where(
            here.c.uri.in_(sa.bindparam("uris", expanding=True)),
            _edge.c.label.in_(sa.bindparam("labels", expanding=True)),
        )
    )


_HOPS = {"out": _hop(_edge.c.src, _edge.c.dst), "in": _hop(_edge.c.dst, _edge.c.src)}
_src, _dst = _n.alias("src"), _n.alias("dst")
_INFERRED = (
    sa.select(_src.c.uri, _dst.c.uri, _edge.c.provenance)
    .select_from(_edge)
    .join(_src, _src.c.id == _edge.c.src)
    .join(_dst, _dst.c.id == _edge.c.dst)
    .where(_edge.c.label == sa.bindparam("label"), _edge.c.origin == "inferred")
)
_INFERRED_FROM = _INFERRED.where(_src.c.uri.in_(sa.bindparam("uris", expanding=True)))


@dataclass(frozen=True, slots=True)
class Step:
    """An edge ``frm --label--> to`` (``out``) or ``to --label--> frm`` (``in``)."""

    frm: str
    label: str
    to: str
    direction: Literal["out", "in"]


def _chunks(items: list[str]) -> Iterable[list[str]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


def states(conn: Connection, uris: Iterable[str]) -> dict[str, tuple[str, str]]:
    found: dict[str, tuple[str, str]] = {}
    for part in _chunks(list(dict.fromkeys(uris))):
        rows = conn.execute(_STATES, {"uris": part})
        found.update((uri, (type_, state)) for uri, type_, state in rows)
    return found


def step(
    conn: Connection,
    labels: Labels,
    uris: Iterable[str],
    out: Iterable[str],
    inward: Iterable[str],
) -> list[Step]:
    out_ids, in_ids = labels.ids(out), labels.ids(inward)
    wanted = sorted(set(uris))
    found: list[Step] = []
    for direction, ids in (("out", out_ids), ("in", in_ids)):
        if not ids:
            continue
        for part in _chunks(wanted):
            rows = conn.execute(_HOPS[direction], {"uris": part, "labels": list(ids)})
            found.extend(
                Step(frm, labels.name(label), to, direction)  # type: ignore[arg-type]
                for frm, label, to in rows
            )
    return found


def inferred_edges(
    conn: Connection, labels: Labels, label: str, sources: Iterable[str] | None
) -> dict[tuple[str, str], dict[str, Any] | None]:
    label_id = labels.id(label)
    if sources is None:
        return {(s, d): p for s, d, p in conn.execute(_INFERRED, {"label": label_id})}
    found: dict[tuple[str, str], dict[str, Any] | None] = {}
    for part in _chunks(sorted(set(sources))):
        rows = conn.execute(_INFERRED_FROM, {"label": label_id, "uris": part})
        found.update(((s, d), p) for s, d, p in rows)
    return found
