"""A process-local copy of the current graph for traversals, kept exact by the change feed.

Why: a 3-hop walk from a popular dataset reaches 5-7k entities. In SQL that
is a recursive CTE plus a URI/type/name lookup and a sort per reached node
(100-200 ms at 1M entities); in memory it is a few set operations per node
(a few ms). See docs/BENCHMARKS.md, "The store".

How it stays exact: the copy remembers the last transaction it holds
(``cursor``). Before every walk it reads ``max(tx.id)``; if that moved, it
applies the feed rows after the cursor (edge asserts and retracts, entity
changes with the entity's current type and name). Transaction ids are handed
out in commit order, so ``tx > cursor`` never skips a commit, whichever
process made it. A purge (which deletes feed rows), a store whose ids went
backwards, or too many edits since the build make it rebuild instead.

The build reads ``cursor`` first and the tables after, then replays the feed
from ``cursor``: on PostgreSQL each statement may see later commits than the
cursor, and replaying them is harmless because applying a change twice
changes nothing.

Only reads of the current graph use it; ``as_of`` reads stay in SQL.

Building the copy reads every node and edge: about a minute at 1M entities.
A server must not make a request wait that long, so by default the copy is
built in a background thread (``background=True``) and walks are answered in
SQL (``NotReady``) until it is there; too many edits since the build start a
fresh build in the background while the old copy, still exact, keeps serving.
``background=False`` builds in the walk that needs it (tests, benchmarks).
"""

from __future__ import annotations

import logging
import threading
import time
from array import array
from collections import Counter
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from itertools import accumulate, repeat
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from mlgraph.store.memory_graph import (
    Adjacency,
    NodeInfo,
    Nodes,
    NodesBuilder,
    breadth_first,
    label_mask,
)
from mlgraph.store.records import Op, Reached

CHUNK = 50_000  # rows per fetch while building
MIN_EDITS_BEFORE_REBUILD = 100_000
RETRY_FAILED_BUILD_S = 60.0  # a background build that failed is not retried sooner

log = logging.getLogger("mlgraph.store")


class NotReady(Exception):
    """The copy is being built in the background: walk in SQL meanwhile."""


@dataclass(frozen=True, slots=True)
class CacheStats:
    """What the copy costs: when it was built, how long that took, its size."""

    builds: int
    build_seconds: float  # the last build
    nodes: int
    edges: int
    edits: int  # changes applied since the last build
    bytes: int  # arrays and strings, roughly
    cursor: int


class _Graph:
    """The arrays of one build, plus the edits applied since."""

    def __init__(self, nodes: Nodes, out: Adjacency, inward: Adjacency, cursor: int) -> None:
        self.nodes = nodes
        self.out = out
        self.inward = inward
        self.cursor = cursor
        self.max_label = max(_max(out.labels), _max(inward.labels))

    @property
    def edits(self) -> int:
        return self.out.edits + self.inward.edits + len(self.nodes.changed)


def _max(values: array[int]) -> int:
    return max(values) if len(values) else 0


class GraphCache:
    """The current graph in memory, built on first use; thread-safe."""

    def __init__(self, rebuild_after: int | None = None, *, background: bool = False) -> None:
        self._lock = threading.Lock()
        self._graph: _Graph | None = None
        self._rebuild_after = rebuild_after
        self._builds = 0
        self._build_seconds = 0.0
        self._background = background
        self._builder: threading.Thread | None = None
        self._failed_at: float | None = None

    @property
    def ready(self) -> bool:
        return self._graph is not None

    def warm(self, engine: Engine, *, wait: bool) -> None:
        """Build the copy now: in this thread (``wait``), or start it in the background."""
        if wait:
            with self._lock, engine.connect() as conn:
                self._current(conn, _last_tx(conn), blocking=True)
        else:
            with self._lock:
                if self._graph is None:
                    self._start_build(engine)

    def clear(self) -> None:
        with self._lock:
            self._graph = None

    def stats(self) -> CacheStats | None:
        """Size and build time of the copy; None before the first walk built it."""
        with self._lock:
            g = self._graph
            if g is None:
                return None
            return CacheStats(
                builds=self._builds,
                build_seconds=self._build_seconds,
                nodes=len(g.nodes),
                edges=g.out.base_edges,
                edits=g.edits,
                bytes=g.nodes.nbytes() + g.out.nbytes() + g.inward.nbytes(),
                cursor=g.cursor,
            )

    def walk(
        self,
        conn: Connection,
        uri: str,
        *,
        out_labels: Collection[int],
        in_labels: Collection[int],
        depth: int,
        limit: int,
        budget: int,
        types: Collection[str] | None = None,
    ) -> tuple[list[Reached], bool] | None:
        """Entities within ``depth`` hops of ``uri`` (not itself), nearest first,
        then by URI: the first ``limit`` of them and whether the answer is partial.
        The same answer as ``traversal.walk`` on the current graph; None if the
        store has no node ``uri``. Raises NotReady while a background build runs."""
        # One round trip: the start's id and how far the store has got.
        start, last = conn.execute(_START, {"uri": uri}).one()
        if start is None:
            return None
        if not out_labels and not in_labels:
            return [], False
        with self._lock:
            for _ in range(2):
                g = self._current(conn, int(last or 0))
                size = g.max_label + 1
                levels, cut = breadth_first(
                    g.out,
                    g.inward,
                    start,
                    out_mask=label_mask(out_labels, size) if out_labels else None,
                    in_mask=label_mask(in_labels, size) if in_labels else None,
                    depth=depth,
                    budget=budget,
                )
                reached, more = _ordered(g.nodes, levels, types, limit)
                if reached is not None:
                    return reached, cut or more
                # A reached id the copy cannot name: it is out of step; build it again.
                self._graph = None
        raise RuntimeError(f"the graph cache cannot name every node reached from {uri}")

    # -- keeping up ------------------------------------------------------------------

    def _current(self, conn: Connection, last: int, *, blocking: bool = False) -> _Graph:
        """The copy as of transaction ``last`` or later (call with the lock held)."""
        blocking = blocking or not self._background
        g = self._graph
        if g is None:
            return self._replace(conn, blocking)
        if last < g.cursor:
            # Another thread caught up further since ``last`` was read, or the
            # store was emptied and its ids started again: ask once more.
            last = _last_tx(conn)
            if last < g.cursor:
                return self._replace(conn, blocking)
        if last == g.cursor:
            return g
        limit = self._edit_limit(g)
        if not blocking:
            # Apply everything: the copy stays exact (if slower to walk) while a
            # compacted one is built beside it.
            if not _catch_up(conn, g, last, None):
                return self._replace(conn, blocking)  # a purge or an unknown id
            if g.edits > limit:
                self._start_build(conn.engine)
            return g
        if not _catch_up(conn, g, last, limit - g.edits):
            # A purge, an unknown id, or more changes than are worth applying one by one.
            return self._build(conn)
        if g.edits > limit:
            return self._build(conn)  # edits would slow every walk: compact
        return g

    def _replace(self, conn: Connection, blocking: bool) -> _Graph:
        """A copy built afresh: now, or (in the background) later, answering NotReady."""
        if blocking:
            return self._build(conn)
        self._graph = None  # it may hold half a catch-up
        self._start_build(conn.engine)
        raise NotReady

    def _start_build(self, engine: Engine) -> None:
        if self._builder is not None and self._builder.is_alive():
            return
        if (
            self._failed_at is not None
            and time.monotonic() - self._failed_at < RETRY_FAILED_BUILD_S
        ):
            return
        self._builder = threading.Thread(
            target=self._build_beside, args=(engine,), name="mlgraph-graph-cache", daemon=True
        )
        self._builder.start()

    def _build_beside(self, engine: Engine) -> None:
        """The background build: read without the lock, then swap the copy in."""
        started = time.perf_counter()
        try:
            with engine.connect() as conn:
                g = self._read(conn)
        except Exception:  # the SQL walk still answers; say why this did not work
            log.exception("building the in-memory graph failed: traversals stay in SQL")
            self._failed_at = time.monotonic()
            return
        with self._lock:
            self._builds += 1
            self._build_seconds = time.perf_counter() - started
            self._failed_at = None
            # The next walk catches it up from its cursor, as it would the old copy.
            self._graph = g
        log.info("in-memory graph built in %.1f s", self._build_seconds)

    def _edit_limit(self, g: _Graph) -> int:
        if self._rebuild_after is not None:
            return self._rebuild_after
        return max(MIN_EDITS_BEFORE_REBUILD, g.out.base_edges // 5)

    def _build(self, reading: Connection) -> _Graph:
        self._graph = None  # a failed build leaves no half-made copy behind
        started = time.perf_counter()
        # Its own connection, in a transaction: PostgreSQL streams the tables
        # through server-side cursors, which autocommit connections cannot open.
        with reading.engine.connect() as conn:
            g = self._read(conn)
        self._builds += 1
        self._build_seconds = time.perf_counter() - started
        self._graph = g
        return g

    @staticmethod
    def _read(conn: Connection) -> _Graph:
        cursor = _last_tx(conn)
        nodes = _read_nodes(conn)
        out, inward = _read_edges(conn, len(nodes))
        g = _Graph(nodes, out, inward, cursor)
        last = _last_tx(conn)
        if last > cursor and not _catch_up(conn, g, last, None):
            raise RuntimeError("the store changed in a way the graph cache cannot follow")
        if last < cursor:
            raise RuntimeError("the store's transaction ids went backwards during a build")
        return g


_START = sa.text(
    "SELECT (SELECT id FROM node WHERE uri = :uri) AS start, (SELECT MAX(id) FROM tx) AS last"
)


def _last_tx(conn: Connection) -> int:
    return int(conn.execute(sa.text("SELECT MAX(id) FROM tx")).scalar() or 0)


def _rows(conn: Connection, sql: str) -> Iterator[list[tuple[Any, ...]]]:
    """The rows of ``sql`` in chunks of plain tuples, from the driver's own cursor.

    Millions of rows: SQLAlchemy's result rows would double the read time. On
    PostgreSQL the cursor is server-side (named), so the rows are streamed.
    """
    dbapi: Any = conn.connection.dbapi_connection
    postgres = conn.dialect.name == "postgresql"
    cursor = dbapi.cursor(name="mlgraph_graph_cache") if postgres else dbapi.cursor()
    try:
        if postgres:
            cursor.itersize = CHUNK
        cursor.execute(sql)
        while part := cursor.fetchmany(CHUNK):
            yield part
    finally:
        cursor.close()


def _read_nodes(conn: Connection) -> Nodes:
    builder = NodesBuilder()
    sql = (
        "SELECT n.id, n.uri, e.type, e.name FROM node n "
        "LEFT JOIN entity e ON e.node = n.id ORDER BY n.id"
    )
    for part in _rows(conn, sql):
        builder.add_many(part)
    return builder.build()


def _read_edges(conn: Connection, nodes: int) -> tuple[Adjacency, Adjacency]:
    """Every current edge, in CSR arrays seen from each end: ``(out, inward)``.

    One scan in ``src`` order, straight off the primary key's index (it holds
    ``src``, ``label`` and ``dst``), gives the outward arrays as they come; the
    inward ones are a counting sort of the same arrays by ``dst``, in memory,
    which costs less than a second scan.
    """
    wide = nodes >= 2**31
    srcs = array("q" if wide else "i")
    dsts = array("q" if wide else "i")
    labels = array("H")
    for part in _rows(conn, "SELECT src, label, dst FROM edge ORDER BY src, label, dst"):
        s, lb, d = zip(*part, strict=True)
        srcs.extend(s)
        labels.extend(lb)
        dsts.extend(d)
    size = max(nodes, max(srcs, default=-1) + 1, max(dsts, default=-1) + 1)
    out = Adjacency(_offsets(srcs, size), dsts, labels)
    in_offsets = _offsets(dsts, size)
    # Counting sort by dst: stable, so each node's inward edges stay in (src, label) order.
    places = array("q", in_offsets)
    in_srcs = array(srcs.typecode, bytes(srcs.itemsize * len(srcs)))
    in_labels = array("H", bytes(2 * len(labels)))
    for src, label, dst in zip(srcs, labels, dsts, strict=True):
        at = places[dst]
        in_srcs[at] = src
        in_labels[at] = label
        places[dst] = at + 1
    del srcs
    return out, Adjacency(in_offsets, in_srcs, in_labels)


def _offsets(nears: array[int], size: int) -> array[int]:
    """CSR offsets: where each node's edges start in arrays ordered by ``nears``."""
    counts = Counter(nears)
    return array("q", accumulate((counts.get(n, 0) for n in range(size)), initial=0))


def _catch_up(conn: Connection, g: _Graph, last: int, most: int | None) -> bool:
    """Apply the feed's transactions after ``g.cursor`` up to ``last``; False if the
    copy must be rebuilt instead: a purge, a node or label it cannot resolve, or
    more than ``most`` changes."""
    collate = ' COLLATE "C"' if conn.dialect.name == "postgresql" else ""
    # Node ids from the URIs the feed names; for entity changes also the entity's
    # type and name now (a later change replays over it, so "now" is safe).
    params = {"cursor": g.cursor, "last": last}
    if most is not None:
        params["most"] = max(most, 0) + 1
    rows = conn.execute(
        sa.text(
            "SELECT c.kind, c.op, s.id, l.id, o.id, c.uri, e.type, e.name "
            "FROM change c "
            f"LEFT JOIN node s ON s.uri = c.uri{collate} "
            f"LEFT JOIN node o ON o.uri = c.other{collate} "
            "LEFT JOIN label l ON l.name = c.label "
            "LEFT JOIN entity e ON e.node = s.id AND c.kind = 'entity' "
            "WHERE c.tx > :cursor AND c.tx <= :last ORDER BY c.tx, c.seq"
            + ("" if most is None else " LIMIT :most")
        ),
        params,
    ).all()
    if most is not None and len(rows) > most:
        return False
    for kind, op, src, label, dst, uri, type_, name in rows:
        if op == Op.PURGE or src is None:
            return False
        if kind == "entity":
            g.nodes.set(src, (uri, type_, name))
            continue
        if label is None or dst is None:
            return False
        if op == Op.ASSERT:
            g.out.add(src, label, dst)
            g.inward.add(dst, label, src)
        else:
            g.out.remove(src, label, dst)
            g.inward.remove(dst, label, src)
        g.max_label = max(g.max_label, label)
    g.cursor = last
    return True


def _ordered(
    nodes: Nodes, levels: list[set[int]], types: Collection[str] | None, limit: int
) -> tuple[list[Reached] | None, bool]:
    """The reached nodes by depth, then URI, those of ``types`` only, the first
    ``limit``; and whether more were left out. None if a node has no URI here."""
    wanted = None if types is None else set(types)
    reached: list[Reached] = []
    for depth, level in enumerate(levels, start=1):
        named = _named(nodes, level if wanted is None else _of_types(nodes, level, wanted))
        if named is None:
            return None, False
        named.sort()
        reached.extend(map(_reached, named, repeat(depth)))
        if len(reached) > limit:
            return reached[:limit], True
    return reached, False


def _named(nodes: Nodes, level: Iterable[int]) -> list[NodeInfo] | None:
    """``Nodes.get`` for many nodes, inlined (once per reached node); None if one is unknown."""
    changed, uris, u, names, n = (
        nodes.changed,
        nodes.uris,
        nodes.uri_offsets,
        nodes.names,
        nodes.name_offsets,
    )
    named, type_of, types = nodes.named, nodes.type_of, nodes.types
    size = len(type_of)
    out: list[NodeInfo] = []
    add = out.append
    for node in level:
        if changed and node in changed:
            info = changed[node]
            if info is None:
                return None
            add(info)
        elif node < size and (uri := uris[u[node] : u[node + 1]]):
            add((uri, types[type_of[node]], names[n[node] : n[node + 1]] if named[node] else None))
        else:
            return None
    return out


def _of_types(nodes: Nodes, level: Iterable[int], wanted: set[str]) -> list[int]:
    return [n for n in level if nodes.type_name(n) in wanted]


# ``Reached`` is a frozen dataclass: its __init__ sets each field through
# object.__setattr__, which costs more than the rest of a walk per node. Setting
# the slots directly makes the same object in a third of the time.
_new = object.__new__
_set_uri, _set_type, _set_name, _set_depth = (
    getattr(Reached, field).__set__ for field in ("uri", "type", "name", "depth")
)


def _reached(info: NodeInfo, depth: int) -> Reached:
    node = _new(Reached)
    _set_uri(node, info[0])
    _set_type(node, info[1])
    _set_name(node, info[2])
    _set_depth(node, depth)
    return node
