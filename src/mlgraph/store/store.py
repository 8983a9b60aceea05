"""The Store: the fact store's one public face."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from mlgraph.catalog.entity import Entity
from mlgraph.catalog.schema import Schema, load_schema
from mlgraph.catalog.validation import canonical
from mlgraph.errors import LimitExceeded, NotFound, ValidationError
from mlgraph.store import batch_reads, feed, migrate, quality_queries, status
from mlgraph.store import tables as t
from mlgraph.store.engine import create_engine, writing
from mlgraph.store.graph_cache import CacheStats, GraphCache, NotReady
from mlgraph.store.labels import Labels
from mlgraph.store.reads import AsOf, Reader, node_id, parse_time, resolve_as_of
from mlgraph.store.records import (
    Change,
    Edge,
    EntityStatus,
    Listed,
    Neighbor,
    Provenance,
    Reached,
    Traversal,
    TxReport,
    Unresolved,
    Version,
)
from mlgraph.store.steps import Step, inferred_edges, states, step
from mlgraph.store.transactor import Transactor
from mlgraph.store.traversal import walk

TraverseDirection = Literal["upstream", "downstream", "out", "in", "both"]

MAX_DEPTH = 10
MAX_RESULTS = 10_000
MIN_VISITS = 100_000


# How traversals of the current graph use the in-memory copy (graph_cache.py):
# built in the background while SQL answers (servers), built by the first walk
# that needs it (tests, benchmarks), or not at all.
GraphCacheMode = Literal["background", "blocking", "off"]


class Store:
    """Entities and edges with their full history, on SQLite or PostgreSQL.

    Every write goes through ``transact``; reads come from the current
    projection, or from the versions when ``as_of`` is given.
    """

    def __init__(
        self, engine: Engine, schema: Schema, *, graph_cache: GraphCacheMode = "background"
    ) -> None:
        self.engine = engine
        self.schema = schema
        self.labels = Labels(engine, schema.labels)
        self._transactor = Transactor(engine, schema, self.labels)
        self._reader = Reader(schema, self.labels)
        # Traversals of the current graph walk an in-memory copy (see graph_cache);
        # without it, or with ``as_of``, they run as one recursive SQL query.
        self._graph = (
            None if graph_cache == "off" else GraphCache(background=graph_cache == "background")
        )

    @classmethod
    def open(
        cls,
        url: str,
        schema: Schema | None = None,
        *,
        upgrade: bool = True,
        graph_cache: GraphCacheMode = "background",
    ) -> Store:
        """Open the store at ``url``, bringing its tables up to date first."""
        engine = create_engine(url)
        if upgrade:
            migrate.upgrade(engine)
        return cls(engine, schema or load_schema(), graph_cache=graph_cache)

    def close(self) -> None:
        if self._graph is not None:
            self._graph.clear()
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    # -- writing ---------------------------------------------------------------

    def transact(
        self,
        *,
        upsert: Iterable[Entity] = (),
        retract: Iterable[str] = (),
        assert_edges: Iterable[Edge] = (),
        retract_edges: Iterable[Edge] = (),
        provenance: Provenance | None = None,
        at: datetime | None = None,
        causes: Mapping[str, Provenance] | None = None,
    ) -> TxReport:
        """Upsert entities, retract entities, assert and retract edges: all or nothing."""
        return self._transactor.transact(
            upsert=upsert,
            retract=retract,
            assert_edges=assert_edges,
            retract_edges=retract_edges,
            provenance=provenance,
            at=at,
            causes=causes,
        )

    def retract(self, uri: str, provenance: Provenance | None = None) -> TxReport:
        """Delete an entity by retraction: it is gone from now on, its history stays."""
        return self.transact(retract=[uri], provenance=provenance)

    def purge(self, uri: str, provenance: Provenance | None = None) -> TxReport:
        """Hard-delete an entity and all its history."""
        return self._transactor.purge(uri, provenance)

    # -- reading ---------------------------------------------------------------

    def _uri(self, uri: str) -> str:
        return canonical(self.schema, uri, "uri")

    def get(self, uri: str, as_of: AsOf = None) -> Entity | None:
        """The entity now, or as of a transaction id or a time; None if it did not exist."""
        with self.engine.connect() as conn:
            return self._reader.get(conn, self._uri(uri), as_of)

    def require(self, uri: str, as_of: AsOf = None) -> Entity:
        entity = self.get(uri, as_of)
        if entity is None:
            raise NotFound(f"no entity {uri}")
        return entity

    def neighbors(
        self,
        uri: str,
        as_of: AsOf = None,
        *,
        direction: Literal["out", "in", "both"] = "both",
        relationships: Iterable[str] | None = None,
    ) -> list[Neighbor]:
        """Entities one edge away, declared relationships and their inverses alike."""
        with self.engine.connect() as conn:
            return self._reader.neighbors(
                conn, self._uri(uri), as_of, direction=direction, relationships=relationships
            )

    def history(self, uri: str) -> list[Version]:
        """Every transaction that changed the entity or its edges, with what changed."""
        with self.engine.connect() as conn:
            return self._reader.history(conn, self._uri(uri))

    def traverse(
        self,
        uri: str,
        direction: TraverseDirection = "downstream",
        *,
        depth: int = 3,
        relationships: Iterable[str] | None = None,
        types: Iterable[str] | None = None,
        limit: int = 1000,
        max_visits: int | None = None,
        as_of: AsOf = None,
    ) -> Traversal:
        """Entities up to ``depth`` hops away, nearest first, then by URI.

        ``upstream``/``downstream`` follow the lineage flow the schema declares;
        ``out``/``in``/``both`` follow edges as stored. ``relationships`` and
        ``types`` narrow what is followed and what is returned. The current
        graph is walked in memory (built on the first call, then kept up to
        date from the change feed); ``as_of`` walks run as one SQL query.
        """
        if not 1 <= depth <= MAX_DEPTH:
            raise LimitExceeded(f"depth must be between 1 and {MAX_DEPTH}, got {depth}")
        if not 1 <= limit <= MAX_RESULTS:
            raise LimitExceeded(f"limit must be between 1 and {MAX_RESULTS}, got {limit}")
        out, inward = self._labels_for(direction, relationships)
        type_names = None
        if types is not None:
            type_names = [self.schema.type(name).name for name in types]
        # Each node can enter the walk once per depth, so this budget always
        # reaches ``limit`` distinct nodes before it runs out.
        budget = max(max_visits or MIN_VISITS, (limit + 1) * (depth + 1))
        uri = self._uri(uri)
        out_ids, in_ids = self.labels.ids(out), self.labels.ids(inward)
        if as_of is None and self._graph is not None:
            try:
                found = self._walk_in_memory(
                    self._graph, uri, out_ids, in_ids, depth, limit, budget, type_names
                )
            except NotReady:  # being built in the background: SQL answers meanwhile
                pass
            else:
                if found is None:
                    raise NotFound(f"no entity {uri}")
                return Traversal(uri, tuple(found[0]), found[1])
        with self.engine.connect() as conn:
            start = node_id(conn, uri)
            if start is None:
                raise NotFound(f"no entity {uri}")
            nodes, partial = walk(
                conn,
                start,
                out_labels=out_ids,
                in_labels=in_ids,
                depth=depth,
                limit=limit,
                budget=budget,
                types=type_names,
                as_of=resolve_as_of(conn, as_of),
            )
        return Traversal(uri, tuple(nodes), partial)

    def _walk_in_memory(
        self,
        graph: GraphCache,
        uri: str,
        out_ids: Collection[int],
        in_ids: Collection[int],
        depth: int,
        limit: int,
        budget: int,
        types: list[str] | None,
    ) -> tuple[list[Reached], bool] | None:
        with self._reading_now() as conn:
            return graph.walk(
                conn,
                uri,
                out_labels=out_ids,
                in_labels=in_ids,
                depth=depth,
                limit=limit,
                budget=budget,
                types=types,
            )

    def warm_traversals(self, *, wait: bool = False) -> None:
        """Build the in-memory graph traversals walk: now, or in the background (a
        server calls this at start so the first lineage query does not wait)."""
        if self._graph is not None:
            self._graph.warm(self.engine, wait=wait)

    def _reading_now(self) -> Connection:
        """A connection for reads that need no snapshot across statements.

        On PostgreSQL it runs in autocommit, which spares the BEGIN and ROLLBACK
        round trips: a warm traversal is then one query. SQLite begins in process.
        """
        conn = self.engine.connect()
        if self.backend == "postgresql":
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        return conn

    def traversal_cache(self) -> CacheStats | None:
        """Size and build time of the in-memory graph traversals walk; None
        before the first traversal built it, or when the store runs without it."""
        return None if self._graph is None else self._graph.stats()

    def _labels_for(
        self, direction: TraverseDirection, relationships: Iterable[str] | None
    ) -> tuple[set[str], set[str]]:
        if direction in ("upstream", "downstream"):
            out, inward = self.schema.lineage_labels(direction)
        elif direction in ("out", "in", "both"):
            every = set(self.schema.labels)
            out = every if direction in ("out", "both") else set()
            inward = every if direction in ("in", "both") else set()
        else:
            raise ValidationError(
                f"direction must be upstream, downstream, out, in or both, got {direction!r}"
            )
        if relationships is not None:
            named_out, named_in = self.schema.labels_named(relationships)
            if direction in ("upstream", "downstream"):
                allowed = named_out | named_in
                out, inward = out & allowed, inward & allowed
            else:
                out, inward = out & named_out, inward & named_in
        return out, inward

    def listing(self, prefix: str, type: str | None = None) -> list[Listed]:
        """Current entities whose URI starts with ``prefix`` (e.g. ``aip://model/registry/``)."""
        n, e = t.node, t.entity
        # A range, not LIKE: it uses the URI index on both backends and needs no escaping.
        query = (
            sa.select(n.c.uri, e.c.type, e.c.state, e.c.doc)
            .join(e, e.c.node == n.c.id)
            .where(n.c.uri >= prefix, n.c.uri < prefix + "\U0010ffff")
            .order_by(n.c.uri)
        )
        if type is not None:
            query = query.where(e.c.type == type)
        with self.engine.connect() as conn:
            return [
                Listed(r.uri, r.type, r.state, parse_time(r.doc.get("source_updated_at")))
                for r in conn.execute(query)
            ]

    def states(self, uris: Iterable[str]) -> dict[str, tuple[str, str]]:
        """``{uri: (type, state)}`` for those of ``uris`` the store holds now."""
        with self.engine.connect() as conn:
            return states(conn, uris)

    def step(self, uris: Iterable[str], out: Iterable[str], inward: Iterable[str]) -> list[Step]:
        """One hop, set at a time: current edges labelled ``out`` leaving ``uris``,
        and labelled ``inward`` arriving at them, each seen from the ``uris`` end."""
        with self.engine.connect() as conn:
            return step(conn, self.labels, uris, out, inward)

    def inferred_edges(
        self, label: str, sources: Iterable[str] | None = None
    ) -> dict[tuple[str, str], dict[str, Any] | None]:
        """Current inferred edges labelled ``label`` (from ``sources`` only, if given)."""
        with self.engine.connect() as conn:
            return inferred_edges(conn, self.labels, label, sources)

    # -- entity status (bookkeeping, not history) -------------------------------

    def mark_hydrated(self, uris: Iterable[str], at: datetime) -> None:
        with writing(self.engine) as conn:
            status.mark_hydrated(conn, uris, at)

    def record_hydration(self, hydrated: Iterable[str], gone: Iterable[str], at: datetime) -> None:
        """Stamp entities just read from their source; report the gone ones still referenced."""
        with writing(self.engine) as conn:
            status.record_hydration(conn, hydrated, gone, at)

    def mark_enriched(self, uris: Iterable[str], at: datetime) -> None:
        with writing(self.engine) as conn:
            status.mark_enriched(conn, uris, at)

    def mark_unresolved(self, reasons: Mapping[str, str], at: datetime) -> None:
        with writing(self.engine) as conn:
            status.mark_unresolved(conn, reasons, at)

    def status(self, uri: str) -> EntityStatus | None:
        with self.engine.connect() as conn:
            return status.status(conn, self._uri(uri))

    def statuses(self, uris: Iterable[str]) -> dict[str, EntityStatus]:
        with self.engine.connect() as conn:
            return status.statuses(conn, uris)

    def unresolved(self, limit: int = 1000) -> list[Unresolved]:
        with self.engine.connect() as conn:
            return status.unresolved(conn, limit)

    # -- the change feed -------------------------------------------------------

    def changes_since(self, cursor: int, limit: int = 1000) -> list[Change]:
        """Committed transactions after ``cursor``, in commit order."""
        with self.engine.connect() as conn:
            return feed.changes_since(conn, cursor, limit)

    def cursor(self, name: str) -> int:
        """Where the named feed reader got to (0 if it never saved)."""
        with self.engine.connect() as conn:
            return feed.cursor_position(conn, name)

    def save_cursor(self, name: str, position: int) -> None:
        with writing(self.engine) as conn:
            feed.save_cursor(conn, name, position)

    def last_tx(self) -> int:
        with self.engine.connect() as conn:
            return feed.last_tx(conn)

    # -- overview --------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """Counts by type and state, edges, transactions, and feed readers."""
        with self.engine.connect() as conn:
            by_type: dict[str, dict[str, int]] = {}
            rows = conn.execute(
                sa.select(t.entity.c.type, t.entity.c.state, sa.func.count()).group_by(
                    t.entity.c.type, t.entity.c.state
                )
            )
            for type_, state, count in rows:
                by_type.setdefault(type_, {})[state] = count
            edges = conn.execute(sa.select(sa.func.count()).select_from(t.edge)).scalar_one()
            last = conn.execute(sa.select(t.tx).order_by(t.tx.c.id.desc()).limit(1)).first()
            return {
                "backend": self.backend,
                "entities": sum(sum(s.values()) for s in by_type.values()),
                "entities_by_type": dict(sorted(by_type.items())),
                "edges": edges,
                "last_tx": None if last is None else {"id": last.id, "at": last.at.isoformat()},
                "cursors": feed.cursors(conn),
                "schema_revision": migrate.head_revision(),
            }

    # -- quality --------------------------------------------------------------

    def missing_owners(
        self, exempt_types: Iterable[str] = (), limit: int = 10
    ) -> quality_queries.Found:
        """Hydrated entities with no owner, by type, and the first ``limit`` of them."""
        owners, _ = self.schema.labels_named(["owners"])
        with self.engine.connect() as conn:
            return quality_queries.missing_owners(
                conn, self.labels.ids(owners), list(exempt_types), limit
            )

    def missing_description(
        self, exempt_types: Iterable[str] = (), limit: int = 10
    ) -> quality_queries.Found:
        with self.engine.connect() as conn:
            return quality_queries.missing_description(conn, list(exempt_types), limit)

    def stale(self, before: datetime, limit: int = 10) -> quality_queries.Found:
        """Hydrated entities whose source was last read before ``before``."""
        with self.engine.connect() as conn:
            return quality_queries.stale(conn, before, limit)

    def orphans(self, limit: int = 10) -> quality_queries.Found:
        """Entities with no edges at all."""
        with self.engine.connect() as conn:
            return quality_queries.orphans(conn, limit)

    def idle_unconsumed(
        self,
        before: datetime,
        consumers: tuple[Iterable[str], Iterable[str]],
        types: Iterable[str],
        limit: int = 10,
    ) -> quality_queries.Found:
        """Hydrated entities of ``types`` unchanged since ``before`` with no edge labelled
        ``consumers`` (outwards, inwards): nothing relies on them."""
        out, inward = consumers
        with self.engine.connect() as conn:
            return quality_queries.idle_unconsumed(
                conn, before, (self.labels.ids(out), self.labels.ids(inward)), list(types), limit
            )

    def unresolved_by_type(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return quality_queries.unresolved_by_type(conn)

    # -- batch reads --------------------------------------------------------------
    # Many entities per call, one statement each (see batch_reads): for readers
    # such as the API's DataLoaders that gather what a whole query level needs.

    def tx_at(self, as_of: AsOf) -> int | None:
        """The transaction id an ``as_of`` (a tx id or a time) reads at; None for now."""
        with self.engine.connect() as conn:
            return resolve_as_of(conn, as_of)

    def get_many(
        self, uris: Iterable[str], as_of: AsOf = None, *, references: bool = True
    ) -> dict[str, Entity]:
        """The entities among ``uris`` (canonical) that exist now or as of ``as_of``;
        without ``references``, their owners and references are left empty."""
        with self.engine.connect() as conn:
            tx = resolve_as_of(conn, as_of)
            return batch_reads.get_many(conn, self._reader, uris, tx, references=references)

    def neighbors_many(
        self,
        uris: Iterable[str],
        labels: Iterable[str],
        direction: Literal["out", "in"],
        *,
        as_of: AsOf = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> dict[str, batch_reads.NeighborPage]:
        """A page of each entity's neighbors along edges labelled ``labels``, in URI order."""
        with self.engine.connect() as conn:
            tx = resolve_as_of(conn, as_of)
            return batch_reads.neighbors_many(
                conn, self._reader, uris, labels, direction, tx, offset=offset, limit=limit
            )

    def statuses_many(self, uris: Iterable[str]) -> dict[str, EntityStatus]:
        """``statuses`` in one statement per 10,000 URIs."""
        with self.engine.connect() as conn:
            return batch_reads.statuses_many(conn, uris)

    def entity_page(
        self,
        type: str | None = None,
        after: str | None = None,
        limit: int = 100,
        as_of: AsOf = None,
    ) -> batch_reads.EntityPage:
        """Entities (of ``type``) in URI order after the URI ``after``, and how many in all."""
        if type is not None:
            type = self.schema.type(type).name
        with self.engine.connect() as conn:
            return batch_reads.entity_page(conn, type, after, limit, resolve_as_of(conn, as_of))
