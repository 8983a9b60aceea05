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
    n, e = t.node, t.entity
    found: dict[str, tuple[str, str]] = {}
    for part in _chunks(list(dict.fromkeys(uris))):
        rows = conn.execute(
            sa.select(n.c.uri, e.c.type, e.c.state)
            .join(e, e.c.node == n.c.id)
            .where(n.c.uri.in_(part))
        )
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
    here, there, e = t.node.alias("here"), t.node.alias("there"), t.edge
    for direction, ids, near, far in (("out", out_ids, e.c.src, e.c.dst),
                                      ("in", in_ids, e.c.dst, e.c.src)):  # fmt: skip
        if not ids:
            continue
        for part in _chunks(wanted):
            rows = conn.execute(
                sa.select(here.c.uri, e.c.label, there.c.uri)
                .select_from(e)
                .join(here, here.c.id == near)
                .join(there, there.c.id == far)
                .where(here.c.uri.in_(part), e.c.label.in_(ids))
            )
            found.extend(
                Step(frm, labels.name(label), to, direction)  # type: ignore[arg-type]
                for frm, label, to in rows
            )
    return found


def inferred_edges(
    conn: Connection, labels: Labels, label: str, sources: Iterable[str] | None
) -> dict[tuple[str, str], dict[str, Any] | None]:
    src, dst, e = t.node.alias("src"), t.node.alias("dst"), t.edge
    query = (
        sa.select(src.c.uri, dst.c.uri, e.c.provenance)
        .select_from(e)
        .join(src, src.c.id == e.c.src)
        .join(dst, dst.c.id == e.c.dst)
        .where(e.c.label == labels.id(label), e.c.origin == "inferred")
    )
    if sources is None:
        return {(s, d): p for s, d, p in conn.execute(query)}
    found: dict[tuple[str, str], dict[str, Any] | None] = {}
    for part in _chunks(sorted(set(sources))):
        found.update(((s, d), p) for s, d, p in conn.execute(query.where(src.c.uri.in_(part))))
    return found
