"""The one write path: every change to the graph is a transaction through here.

A transaction gets the next id under a lock held until commit (SQLite's write
lock, a PostgreSQL advisory lock), so ids follow commit order and a feed reader
reading ``tx > cursor`` never skips a commit. It diffs what it is given against
the current projection and writes only what changed: a new version closes the
old one (``tx_to``), nothing is updated in place, and a transaction that
changes nothing is rolled back and leaves no trace.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg.types.json import Jsonb
from sqlalchemy.engine import Connection, Engine

from mlgraph.catalog.entity import Entity, LifecycleState
from mlgraph.catalog.schema import Relationship, Schema
from mlgraph.catalog.validation import OWNERS, canonical, target_type, validate_entity
from mlgraph.errors import ValidationError
from mlgraph.store import tables as t
from mlgraph.store.engine import WRITE, write_lock
from mlgraph.store.labels import Labels
from mlgraph.store.prebuilt import ByDialect, among, driver_insert
from mlgraph.store.records import Edge, Op, Provenance, TxReport

TX_LOCK = 0x6D6C6702  # advisory lock id serializing transactions on PostgreSQL
CHUNK = 5000  # bound parameters per IN (...) lookup
COPY_MIN = 50  # rows from which an insert goes by COPY on PostgreSQL

EdgeKey = tuple[int, int, int]  # (src node, label id, dst node)

# The hot statements, built once (see prebuilt.py). ``among`` lists are bound
# as :uris / :nodes (a list on SQLite, one array parameter on PostgreSQL).
_URIS, _NODES = sa.Text(), sa.BigInteger()
_e, _ev, _ed, _edv, _n = t.entity, t.entity_version, t.edge, t.edge_version, t.node
_LAST_TX = sa.select(t.tx.c.id, t.tx.c.at).order_by(t.tx.c.id.desc()).limit(1)
_INSERT_TX = t.tx.insert()
_PG_TX_LOCK = sa.select(sa.func.pg_advisory_xact_lock(sa.bindparam("k", type_=sa.BigInteger())))
_NODE_IDS = ByDialect(
    lambda pg: sa.select(_n.c.uri, _n.c.id).where(among(_n.c.uri, "uris", _URIS, pg))
)
_CURRENT = ByDialect(
    lambda pg: sa.select(
        _e.c.node, _e.c.type, _e.c.state, _e.c.name, _e.c.description, _e.c.doc
    ).where(among(_e.c.node, "nodes", _NODES, pg))
)
_TYPES = ByDialect(
    lambda pg: sa.select(_e.c.node, _e.c.type).where(among(_e.c.node, "nodes", _NODES, pg))
)
_EDGE_COLUMNS = (_ed.c.src, _ed.c.label, _ed.c.dst, _ed.c.origin, _ed.c.provenance)
_EDGES_FROM = ByDialect(
    lambda pg: sa.select(*_EDGE_COLUMNS).where(among(_ed.c.src, "nodes", _NODES, pg))
)
_EDGES_AT = ByDialect(
    lambda pg: sa.select(*_EDGE_COLUMNS).where(
        sa.or_(among(_ed.c.src, "nodes", _NODES, pg), among(_ed.c.dst, "dsts", _NODES, pg))
    )
)
_INCOMING = ByDialect(
    lambda pg: (
        sa.select(_ed.c.src, _ed.c.label, _ed.c.dst, _ed.c.origin, _n.c.uri)
        .join(_n, _n.c.id == _ed.c.src)
        .where(among(_ed.c.dst, "nodes", _NODES, pg))
    )
)
_CLOSE_VERSIONS = ByDialect(
    lambda pg: (
        _ev.update()
        .where(among(_ev.c.node, "nodes", _NODES, pg), _ev.c.tx_to.is_(None))
        .values(tx_to=sa.bindparam("closed_by", type_=sa.BigInteger()))
    )
)
_DROP_CURRENT = ByDialect(lambda pg: _e.delete().where(among(_e.c.node, "nodes", _NODES, pg)))
_CLOSE_EDGE_VERSIONS = (
    _edv.update()
    .where(
        _edv.c.src == sa.bindparam("s"),
        _edv.c.label == sa.bindparam("l"),
        _edv.c.dst == sa.bindparam("d"),
        _edv.c.tx_to.is_(None),
    )
    .values(tx_to=sa.bindparam("closed_by"))
)
_DROP_EDGES = _ed.delete().where(
    _ed.c.src == sa.bindparam("s"), _ed.c.label == sa.bindparam("l"), _ed.c.dst == sa.bindparam("d")
)
_INSERT_NODES = _n.insert().returning(_n.c.uri, _n.c.id, sort_by_parameter_order=True)
_MAX_NODE = sa.select(sa.func.max(_n.c.id))
_URI_OF = sa.select(_n.c.uri).where(_n.c.id == sa.bindparam("id"))


@dataclass(slots=True)
class Current:
    """An entity's row in the current projection."""

    node: int
    type: str
    state: str
    name: str | None
    description: str | None
    doc: dict[str, Any]

    def content(self) -> tuple[Any, ...]:
        return (self.type, self.state, self.name, self.description, self.doc)


def entity_doc(schema: Schema, entity: Entity) -> dict[str, Any]:
    """The JSON document a version stores besides its columns (owners and references are edges)."""
    etype = schema.type(entity.type)
    return {
        "tags": dict(sorted(entity.tags.items())),
        "attributes": {k: etype.fields[k].to_json(v) for k, v in sorted(entity.attributes.items())},
        "source_created_at": _iso(entity.source_created_at),
        "source_updated_at": _iso(entity.source_updated_at),
    }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


@dataclass(slots=True)
class _EdgeWant:
    origin: str
    provenance: dict[str, Any] | None


@dataclass
class _Plan:
    """What one transaction will write, worked out before writing anything."""

    entities: dict[str, tuple[str, str, str | None, str | None, dict[str, Any]]] = field(
        default_factory=dict
    )  # uri -> (type, state, name, description, doc)
    retract: set[str] = field(default_factory=set)
    demoted: set[str] = field(default_factory=set)  # retracted but still referenced: stubs
    stubs: int = 0
    # (src uri, label, dst uri) -> wanted state, or None to retract
    edges: dict[tuple[str, str, str], _EdgeWant | None] = field(default_factory=dict)
    reconcile: dict[str, set[str]] = field(default_factory=dict)  # src uri -> labels stated in full


class Transactor:
    """Writes transactions; one per process (it serializes its own callers too)."""

    def __init__(self, engine: Engine, schema: Schema, labels: Labels) -> None:
        self.engine = engine
        self.schema = schema
        self.labels = labels
        # Transactions queue here rather than at the database: on SQLite this is the
        # lock every writer shares; on PostgreSQL they would queue at the advisory lock.
        self._lock = write_lock(engine)

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
        """Apply everything given atomically, as one transaction, or nothing.

        ``causes`` gives, per entity URI, what caused its change when one
        transaction carries several (a batch of hydrations); the change feed and
        history report it for that entity and the edges it states.
        Raises ValidationError (and writes nothing) when any part does not fit
        the schema.
        """
        entities = self._validated(upsert)
        retracting = {canonical(self.schema, u, "retract") for u in retract}
        if both := retracting & entities.keys():
            raise ValidationError(f"{sorted(both)[0]} is both upserted and retracted")
        adds = [self._edge(e, "assert") for e in assert_edges]
        removes = [self._edge(e, "retract") for e in retract_edges]
        provenance = provenance or Provenance()
        causes = {canonical(self.schema, u, "cause"): c for u, c in (causes or {}).items()}

        with self._lock, self.engine.connect().execution_options(**{WRITE: True}) as conn:
            trans = conn.begin()
            try:
                report = _Write(conn, self.schema, self.labels, causes).run(
                    entities, retracting, adds, removes, provenance, at
                )
            except BaseException:
                trans.rollback()
                raise
            if report.changed:
                trans.commit()
            else:
                trans.rollback()
            return report

    def purge(self, uri: str, provenance: Provenance | None = None) -> TxReport:
        """Delete every trace of an entity: versions, edges, feed entries.

        The feed keeps one ``purge`` entry naming the URI so that followers
        (the search index, the percolator) drop it too.
        """
        uri = canonical(self.schema, uri, "purge")
        provenance = provenance or Provenance()
        with self._lock, self.engine.connect().execution_options(**{WRITE: True}) as conn:
            with conn.begin():
                node = conn.execute(sa.select(t.node.c.id).where(t.node.c.uri == uri)).scalar()
                if node is None:
                    return TxReport(None, None)
                tx, at = _open_tx(conn, provenance, None)
                for table in (t.edge, t.edge_version):
                    conn.execute(
                        table.delete().where(sa.or_(table.c.src == node, table.c.dst == node))
                    )
                conn.execute(t.entity.delete().where(t.entity.c.node == node))
                conn.execute(t.entity_version.delete().where(t.entity_version.c.node == node))
                conn.execute(t.entity_status.delete().where(t.entity_status.c.node == node))
                conn.execute(
                    t.change.delete().where(sa.or_(t.change.c.uri == uri, t.change.c.other == uri))
                )
                conn.execute(t.node.delete().where(t.node.c.id == node))
                conn.execute(
                    t.change.insert(),
                    [
                        {
                            "tx": tx,
                            "seq": 0,
                            "kind": "entity",
                            "op": Op.PURGE,
                            "uri": uri,
                            "source": None,
                            "event_id": None,
                        }
                    ],
                )
            return TxReport(tx, at, entities_retracted=1)

    def _validated(self, upsert: Iterable[Entity]) -> dict[str, Entity]:
        out: dict[str, Entity] = {}
        for entity in upsert:
            valid = validate_entity(self.schema, entity)
            if valid.uri in out:
                raise ValidationError(f"{valid.uri} is upserted twice in one transaction")
            out[valid.uri] = valid
        return out

    def _edge(self, edge: Edge, what: str) -> Edge:
        where = f"{what} edge {edge.src} --{edge.rel}--> {edge.dst}"
        if edge.origin not in ("asserted", "inferred"):
            raise ValidationError(f"{where}: origin must be 'asserted' or 'inferred'")
        return Edge(
            canonical(self.schema, edge.src, where),
            edge.rel,
            canonical(self.schema, edge.dst, where),
            edge.origin,
            edge.provenance,
        )


def _open_tx(conn: Connection, provenance: Provenance, at: datetime | None) -> tuple[int, datetime]:
    """Take the transaction lock and the next id; time never runs backwards."""
    if conn.dialect.name == "postgresql":
        conn.execute(_PG_TX_LOCK, {"k": TX_LOCK})
    last = conn.execute(_LAST_TX).first()
    now = at or datetime.now(UTC)
    tx = 1 if last is None else last.id + 1
    if last is not None and last.at > now:
        now = last.at
    conn.execute(
        _INSERT_TX,
        {
            "id": tx,
            "at": now,
            "source": provenance.source,
            "event_id": provenance.event_id,
            "actor": provenance.actor,
        },
    )
    return tx, now


def insert_rows(conn: Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """Insert rows that all have the same keys; many at once by COPY on PostgreSQL.

    psycopg runs an executemany as one INSERT per row (pipelined): for the
    thousands of rows of a bulk load that is most of the load's time, and COPY
    writes them several times faster. On SQLite the rows go to the driver's
    executemany without SQLAlchemy's per-row work. The rows and their values
    are the same.
    """
    if not rows:
        return
    if conn.dialect.name == "sqlite":
        driver_insert(conn, table, rows)
        return
    if conn.dialect.driver != "psycopg" or len(rows) < COPY_MIN:
        conn.execute(table.insert(), rows)
        return
    quote = conn.dialect.identifier_preparer.quote
    columns = list(rows[0])
    # SQLAlchemy's JSON type serializes for INSERT; COPY needs it said (None stays NULL).
    json = {c for c in columns if isinstance(table.c[c].type, sa.JSON)}
    sql = f"COPY {quote(table.name)} ({', '.join(quote(c) for c in columns)}) FROM STDIN"
    driver = conn.connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    with driver.cursor() as cursor, cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row(
                [Jsonb(row[c]) if c in json and row[c] is not None else row[c] for c in columns]
            )


def chunks(items: list[Any], size: int = CHUNK) -> Iterable[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class _Write:
    """One transaction's work: read what is there, plan, then write the difference."""

    def __init__(
        self,
        conn: Connection,
        schema: Schema,
        labels: Labels,
        causes: Mapping[str, Provenance] | None = None,
    ) -> None:
        self.conn = conn
        self.schema = schema
        self.labels = labels
        self.causes = causes or {}

    def run(
        self,
        entities: Mapping[str, Entity],
        retracting: set[str],
        adds: list[Edge],
        removes: list[Edge],
        provenance: Provenance,
        at: datetime | None,
    ) -> TxReport:
        tx, at = _open_tx(self.conn, provenance, at)
        uris = set(entities) | retracting
        for e in entities.values():
            uris.update(e.owners)
            for targets in e.references.values():
                uris.update(targets)
        for edge in (*adds, *removes):
            uris.update((edge.src, edge.dst))
        ids = self.node_ids(uris)
        # Full rows (with the JSON document) only for what this transaction writes
        # over; the owners and targets it points to need only their types.
        full = entities.keys() | retracting
        current = self.current([n for u, n in ids.items() if u in full])
        by_uri = {uri: current[n] for uri, n in ids.items() if n in current}
        node_types = self.types_of([n for u, n in ids.items() if u not in full])
        known = {uri: node_types[n] for uri, n in ids.items() if n in node_types}

        plan = self.plan(entities, retracting, adds, removes, by_uri, known)
        return self.write(tx, at, plan, ids, by_uri)

    # -- reading what is there -------------------------------------------------

    def node_ids(self, uris: Iterable[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        query = _NODE_IDS.of(self.conn)
        for part in chunks(sorted(uris)):
            found.update(iter(self.conn.execute(query, {"uris": part})))
        return found

    def current(self, nodes: list[int]) -> dict[int, Current]:
        out: dict[int, Current] = {}
        query = _CURRENT.of(self.conn)
        for part in chunks(nodes):
            for node, type_, state, name, description, doc in self.conn.execute(
                query, {"nodes": part}
            ):
                out[node] = Current(node, type_, state, name, description, doc)
        return out

    def types_of(self, nodes: list[int]) -> dict[int, str]:
        out: dict[int, str] = {}
        query = _TYPES.of(self.conn)
        for part in chunks(nodes):
            out.update(iter(self.conn.execute(query, {"nodes": part})))
        return out

    def edges_touching(self, nodes: list[int], *, incoming: bool) -> dict[EdgeKey, _EdgeWant]:
        out: dict[EdgeKey, _EdgeWant] = {}
        query = (_EDGES_AT if incoming else _EDGES_FROM).of(self.conn)
        for part in chunks(nodes, CHUNK // 2 if incoming else CHUNK):
            params = {"nodes": part, "dsts": part} if incoming else {"nodes": part}
            for src, label, dst, origin, provenance in self.conn.execute(query, params):
                out[(src, label, dst)] = _EdgeWant(origin, provenance)
        return out

    # -- planning --------------------------------------------------------------

    def plan(
        self,
        entities: Mapping[str, Entity],
        retracting: set[str],
        adds: list[Edge],
        removes: list[Edge],
        by_uri: Mapping[str, Current],
        known: Mapping[str, str] | None = None,
    ) -> _Plan:
        """``by_uri``: the current rows of what is written over; ``known``: the
        types of the other entities this transaction points to."""
        plan = _Plan()
        types = dict(known or {})
        types.update({uri: c.type for uri, c in by_uri.items()})
        types.update({uri: e.type for uri, e in entities.items()})

        for uri, entity in entities.items():
            cur = by_uri.get(uri)
            if entity.state is LifecycleState.STUB and cur is not None:
                continue  # a stub only says "this exists"; it never overwrites
            if cur is not None and cur.type != entity.type and cur.state != LifecycleState.STUB:
                raise ValidationError(
                    f"{uri} is a {cur.type}; it cannot become a {entity.type} (retract it first)"
                )
            content = (
                entity.type,
                entity.state.value,
                entity.name,
                entity.description,
                entity_doc(self.schema, entity),
            )
            if cur is None or cur.content() != content:
                plan.entities[uri] = content
            if entity.state is LifecycleState.HYDRATED:
                self.plan_references(plan, entity, retracting, by_uri, types)

        for edge in adds:
            rel = self.declared(edge, types)
            self.need_target(
                plan, rel, edge.dst, retracting, by_uri, types, f"edge from {edge.src}"
            )
            plan.edges[(edge.src, rel.label, edge.dst)] = _EdgeWant(edge.origin, edge.provenance)
        for edge in removes:
            rel = self.declared(edge, types)
            plan.edges[(edge.src, rel.label, edge.dst)] = None

        plan.retract = {uri for uri in retracting if uri in by_uri}
        return plan

    def plan_references(
        self,
        plan: _Plan,
        entity: Entity,
        retracting: set[str],
        by_uri: Mapping[str, Current],
        types: dict[str, str],
    ) -> None:
        etype = self.schema.type(entity.type)
        stated = {OWNERS: entity.owners, **entity.references}
        labels = plan.reconcile.setdefault(entity.uri, set())
        for name, targets in stated.items():
            rel = etype.relationship(name).declarations[0]
            labels.add(rel.label)
            for dst in targets:
                self.need_target(plan, rel, dst, retracting, by_uri, types, f"{entity.uri}.{name}")
                plan.edges[(entity.uri, rel.label, dst)] = _EdgeWant("asserted", None)

    def declared(self, edge: Edge, types: Mapping[str, str]) -> Relationship:
        src_type = types.get(edge.src)
        if src_type is None:
            raise ValidationError(f"edge source {edge.src} is not in the store")
        view = self.schema.type(src_type).relationship(edge.rel)
        if view.direction != "out":
            decl = view.declarations[0]
            raise ValidationError(
                f"{src_type}.{edge.rel} is the inverse of {decl.label}; "
                f"state the edge from the {decl.source}"
            )
        return view.declarations[0]

    def need_target(
        self,
        plan: _Plan,
        rel: Relationship,
        dst: str,
        retracting: set[str],
        by_uri: Mapping[str, Current],
        types: dict[str, str],
        where: str,
    ) -> None:
        """Check an edge target's type; create a stub if the store does not have it."""
        if dst in retracting:
            raise ValidationError(f"{where} points to {dst}, which this transaction retracts")
        have = types.get(dst)
        if have is None:
            stub_type = target_type(self.schema, rel, dst, where)
            types[dst] = stub_type
            plan.entities[dst] = (stub_type, LifecycleState.STUB.value, None, None, empty_doc())
            plan.stubs += 1
        elif have not in rel.targets:
            raise ValidationError(
                f"{where}: {dst} is a {have}; {rel.label} points to {'/'.join(rel.targets)}"
            )

    # -- writing ---------------------------------------------------------------

    def write(
        self, tx: int, at: datetime, plan: _Plan, ids: dict[str, int], by_uri: Mapping[str, Current]
    ) -> TxReport:
        changes: list[dict[str, Any]] = []
        # Asserted edges end at entities that exist or are being written (stubs included).
        ids.update(self.insert_nodes([u for u in plan.entities if u not in ids]))

        self.keep_referenced(plan, by_uri)
        # Entities: close the open version, write the new one, swap the projection.
        replaced = [ids[u] for u in plan.entities if u in by_uri]
        gone = [by_uri[u].node for u in plan.retract]
        self.close_entities(tx, replaced + gone)
        rows = [
            {
                "node": ids[u],
                "type": c[0],
                "state": c[1],
                "name": c[2],
                "description": c[3],
                "doc": c[4],
            }
            for u, c in plan.entities.items()
        ]
        if rows:
            insert_rows(
                self.conn, t.entity_version, [{**r, "tx_from": tx, "tx_to": None} for r in rows]
            )
            insert_rows(self.conn, t.entity, [{**r, "tx": tx} for r in rows])
        for u in plan.entities:
            changes.append(
                {"kind": "entity", "op": Op.UPDATE if u in by_uri else Op.CREATE, "uri": u}
            )
        for u in sorted(plan.retract):
            changes.append({"kind": "entity", "op": Op.RETRACT, "uri": u})

        stripped = [by_uri[u].node for u in plan.demoted]
        asserted, retracted = self.write_edges(tx, plan, ids, gone, stripped, changes)
        if not changes:
            return TxReport(None, None)
        insert_rows(
            self.conn,
            t.change,
            [
                {"tx": tx, "seq": i, "label": None, "other": None, **c, **self.cause(c["uri"])}
                for i, c in enumerate(changes)
            ],
        )
        return TxReport(
            tx,
            at,
            entities_written=len(plan.entities) - plan.stubs - len(plan.demoted),
            entities_retracted=len(plan.retract) + len(plan.demoted),
            stubs_created=plan.stubs,
            edges_asserted=asserted,
            edges_retracted=retracted,
        )

    def cause(self, uri: str) -> dict[str, str | None]:
        found = self.causes.get(uri)
        if found is None:
            return {"source": None, "event_id": None}
        return {"source": found.source, "event_id": found.event_id}

    def keep_referenced(self, plan: _Plan, by_uri: Mapping[str, Current]) -> None:
        """Turn retractions of entities others still point to into stubs.

        An edge belongs to the entity it starts from: the target's source
        deleting the target does not take back what the referrer states. So a
        retracted entity that keeps incoming edges stays, as a stub, with them.
        """
        if not plan.retract:
            return
        gone = {by_uri[u].node: u for u in plan.retract}
        query = _INCOMING.of(self.conn)
        incoming = [
            row for part in chunks(list(gone)) for row in self.conn.execute(query, {"nodes": part})
        ]
        for src, label_id, dst, origin, src_uri in incoming:
            if src in gone:
                continue  # its source goes too
            label = self.labels.name(label_id)
            key = (src_uri, label, gone[dst])
            if key in plan.edges and plan.edges[key] is None:
                continue  # retracted in this transaction
            if origin == "asserted" and label in plan.reconcile.get(src_uri, ()):
                continue  # restated without it in this transaction
            uri = gone[dst]
            plan.retract.discard(uri)
            plan.demoted.add(uri)
        for uri in plan.demoted:
            cur = by_uri[uri]
            stub = (cur.type, LifecycleState.STUB.value, None, None, empty_doc())
            if cur.content() != stub:
                plan.entities[uri] = stub

    def insert_nodes(self, uris: list[str]) -> dict[str, int]:
        if not uris:
            return {}
        uris = list(dict.fromkeys(uris))
        if self.conn.dialect.name == "sqlite":
            # This transaction holds SQLite's write lock (BEGIN IMMEDIATE), so it hands
            # out the next rowids itself, as SQLite would (max + 1), and skips
            # SQLAlchemy's per-row work for INSERT ... RETURNING.
            top = self.conn.execute(_MAX_NODE).scalar() or 0
            ids = {u: top + i for i, u in enumerate(uris, 1)}
            driver_insert(self.conn, t.node, [{"id": n, "uri": u} for u, n in ids.items()])
            return ids
        return dict(iter(self.conn.execute(_INSERT_NODES, [{"uri": u} for u in uris])))

    def close_entities(self, tx: int, nodes: list[int]) -> None:
        if not nodes:
            return
        close, drop = _CLOSE_VERSIONS.of(self.conn), _DROP_CURRENT.of(self.conn)
        for part in chunks(nodes):
            self.conn.execute(close, {"nodes": part, "closed_by": tx})
            self.conn.execute(drop, {"nodes": part})

    def write_edges(
        self,
        tx: int,
        plan: _Plan,
        ids: Mapping[str, int],
        gone: list[int],
        stripped: list[int],
        changes: list[dict[str, Any]],
    ) -> tuple[int, int]:
        sources = [ids[u] for u in plan.reconcile if u in ids]
        sources += [ids[src] for src, _, _ in plan.edges if src in ids]
        existing = self.edges_touching(sorted(set(sources)), incoming=False) if sources else {}
        if gone:
            existing.update(self.edges_touching(gone, incoming=True))
        if stripped:
            existing.update(self.edges_touching(stripped, incoming=False))

        wanted: dict[EdgeKey, _EdgeWant | None] = {}
        # Relationships stated in full: what is there and not stated goes.
        reconcile = {
            ids[u]: {self.labels.id(lb) for lb in lbs} for u, lbs in plan.reconcile.items()
        }
        for key, have in existing.items():
            if have.origin == "asserted" and key[1] in reconcile.get(key[0], ()):
                wanted[key] = None
        for (src, lb, dst), want in plan.edges.items():
            if src in ids and dst in ids:  # retracting an edge between unknown nodes: nothing to do
                wanted[(ids[src], self.labels.id(lb), ids[dst])] = want
        gone_set, stripped_set = set(gone), set(stripped)
        for key in existing:
            if key[0] in gone_set or key[2] in gone_set or key[0] in stripped_set:
                wanted[key] = None

        close: list[EdgeKey] = []
        open_: list[tuple[EdgeKey, _EdgeWant]] = []
        for key, want in wanted.items():
            now = existing.get(key)
            if want is None:
                if now is not None:
                    close.append(key)
            elif now is None:
                open_.append((key, want))
            elif (now.origin, now.provenance) != (want.origin, want.provenance):
                close.append(key)
                open_.append((key, want))

        uri_of = {n: u for u, n in ids.items()}
        if close:
            params = [{"s": s, "l": lb, "d": d, "closed_by": tx} for s, lb, d in close]
            self.conn.execute(_CLOSE_EDGE_VERSIONS, params)
            self.conn.execute(_DROP_EDGES, [{"s": s, "l": lb, "d": d} for s, lb, d in close])
        reopened = {k for k, _ in open_}
        for key in close:
            if key not in reopened:
                changes.append(self.edge_change(Op.RETRACT, key, uri_of))
        if open_:
            rows = [
                {"src": s, "label": lb, "dst": d, "origin": w.origin, "provenance": w.provenance}
                for (s, lb, d), w in open_
            ]
            insert_rows(
                self.conn, t.edge_version, [{**r, "tx_from": tx, "tx_to": None} for r in rows]
            )
            insert_rows(self.conn, t.edge, [{**r, "tx": tx} for r in rows])
            for key, _ in open_:
                changes.append(self.edge_change(Op.ASSERT, key, uri_of))
        return len(open_), len(close) - len(reopened & set(close))

    def edge_change(self, op: Op, key: EdgeKey, uri_of: Mapping[int, str]) -> dict[str, Any]:
        src, lb, dst = key
        return {
            "kind": "edge",
            "op": op,
            "uri": self.uri(src, uri_of),
            "label": self.labels.name(lb),
            "other": self.uri(dst, uri_of),
        }

    def uri(self, node: int, uri_of: Mapping[int, str]) -> str:
        if node in uri_of:
            return uri_of[node]
        found = self.conn.execute(_URI_OF, {"id": node}).scalar_one()
        return str(found)


def empty_doc() -> dict[str, Any]:
    return {"tags": {}, "attributes": {}, "source_created_at": None, "source_updated_at": None}
