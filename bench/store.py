"""Store benchmark: load a synthetic ML organisation, then time reads and traversals.

    python bench/store.py [--quick] [--entities N] [--stores sqlite,postgresql] [--pg-url URL]

For each store it loads about 1M entities and 5M edges (``--quick``: 16k and
77k) through ``Store.transact``, then times ``Store.get`` and 3-hop downstream
``Store.traverse`` from the highest-fanout nodes (which walks the store's
in-memory copy of the graph, kept up to date from the change feed), next to
the same walks as one recursive SQL query (``traverse_sql``: the store without
its in-memory graph, as ``as_of`` reads run), hop by hop with one query per
node (the N+1 way), and in memory with networkx. All four must reach the same
entities at the same depths, or the run fails. The in-memory graph's first
call (which builds it), build time and size are reported too.

Progress goes to stderr; stdout gets a table and ends with one JSON line.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import networkx as nx
import sqlalchemy as sa

from mlgraph.catalog import Entity
from mlgraph.store import Store
from mlgraph.store import tables as t
from mlgraph.store.engine import create_engine, normalize_url
from mlgraph.store.store import MAX_RESULTS
from synth import Org, uri

STORES = ("sqlite", "postgresql")
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/mlgraph_bench"
DEPTH = 3
LIMIT = MAX_RESULTS  # the most a traversal may return; the walks must stay under it

Walk = dict[str, int]  # reached URI -> its depth (the start itself left out)


@dataclass(frozen=True, slots=True)
class Config:
    entities: int
    quick: bool
    stores: tuple[str, ...]
    pg_url: str
    batch: int
    starts: int  # how many high-fanout start nodes
    repeats: int  # timed walks per start node and method
    gets: int  # timed Store.get calls
    seed: int


def parse_args(argv: Sequence[str] | None = None) -> Config:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="16k entities, fewer samples")
    parser.add_argument("--entities", type=int, help="entities to load (default 1,000,000)")
    parser.add_argument("--stores", default=",".join(STORES), help="comma-separated stores")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, help="dropped and recreated first")
    parser.add_argument("--batch", type=int, default=5000, help="entities per transaction")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    stores = tuple(s.strip() for s in args.stores.split(",") if s.strip())
    if not stores or set(stores) - set(STORES):
        parser.error(f"--stores takes one or more of {', '.join(STORES)}")
    # Below a thousand entities some types would have a single member: no skew left.
    if args.entities is not None and args.entities < 1000:
        parser.error("--entities must be at least 1000")
    if args.batch < 1:
        parser.error("--batch must be positive")
    quick = bool(args.quick)
    return Config(
        # Quick mode must stay under a minute for both stores on a busy 2-core machine.
        entities=args.entities or (16_000 if quick else 1_000_000),
        quick=quick,
        stores=stores,
        pg_url=args.pg_url,
        batch=args.batch,
        starts=5 if quick else 20,
        repeats=2 if quick else 3,
        gets=200 if quick else 2000,
        seed=args.seed,
    )


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def percentile(samples: Sequence[float], q: float) -> float:
    """The ``q``-th percentile, interpolated (with few samples p99 is close to the max)."""
    if len(samples) == 1:
        return samples[0]
    return statistics.quantiles(samples, n=100, method="inclusive")[round(q) - 1]


# -- a fresh, empty store per backend ----------------------------------------------


@contextmanager
def fresh_store(backend: str, cfg: Config) -> Iterator[Store]:
    """An empty store: SQLite in a temporary directory, PostgreSQL in a recreated database."""
    with tempfile.TemporaryDirectory(prefix="mlgraph-bench-") as tmp:
        if backend == "sqlite":
            url = f"sqlite:///{Path(tmp) / 'bench.sqlite'}"  # removed with the directory
        else:
            url = recreate_database(cfg.pg_url)
        # The first walk builds the in-memory graph (timed as the first call).
        with Store.open(url, graph_cache="blocking") as store:
            yield store


def recreate_database(url: str) -> str:
    """Drop and create the database ``url`` names, from the server's ``postgres`` database."""
    target = sa.engine.make_url(normalize_url(url))
    admin = create_engine(
        target.set(database="postgres").render_as_string(hide_password=False),
        isolation_level="AUTOCOMMIT",
    )
    name = target.database
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return url


# -- loading -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Loaded:
    seconds: float
    entities: int
    edges: int


def batches(items: Iterable[Entity], size: int) -> Iterator[list[Entity]]:
    it = iter(items)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def load(store: Store, org: Org, batch: int) -> Loaded:
    """Write the organisation through the public API, one transaction per batch."""
    entities = edges = 0
    started = last_log = time.perf_counter()
    for chunk in batches(org.entities(), batch):
        report = store.transact(upsert=chunk)
        # Entities come in load order, so a reference never creates a stub.
        if report.stubs_created:
            raise RuntimeError(f"the generator referred ahead: {report.stubs_created} stubs")
        entities += report.entities_written
        edges += report.edges_asserted
        now = time.perf_counter()
        if now - last_log >= 10 or entities == org.total:
            last_log = now
            log_progress(store.backend, entities, edges, org.total, now - started)
    return Loaded(time.perf_counter() - started, entities, edges)


def log_progress(backend: str, entities: int, edges: int, total: int, seconds: float) -> None:
    rate = entities / seconds
    eta = (total - entities) / rate if rate else 0.0
    log(
        f"  {backend}: {entities:,}/{total:,} entities ({entities / total:.0%}), "
        f"{edges:,} edges, {rate:,.0f} entities/s, {seconds:,.0f}s elapsed, ~{eta:,.0f}s to go"
    )


def prepare_for_reads(store: Store) -> None:
    """Vacuum and analyze PostgreSQL after the bulk load, as autovacuum would soon do.

    Since PostgreSQL 13 autovacuum also vacuums tables that only grew, which
    sets their visibility map so that index-only scans need not visit the
    table. Doing it here keeps it out of the timings, and gives the same state
    on servers that run autovacuum late or, like the one these figures come
    from, not at all. SQLite gathers no statistics unless asked: it runs as shipped.
    """
    if store.backend == "postgresql":
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM (ANALYZE)"))


# -- the three ways to walk downstream ---------------------------------------------


class Walker(Protocol):
    """One way to walk ``DEPTH`` hops downstream from a URI."""

    name: str

    def __call__(self, start: str) -> Walk: ...


def lineage_labels(store: Store) -> tuple[list[int], list[int]]:
    """Label ids the store's downstream walk follows outwards (src->dst) and inwards."""
    out, inward = store.schema.lineage_labels("downstream")
    return store.labels.ids(out), store.labels.ids(inward)


class StoreWalk:
    """The store's own traversal: the in-memory graph, or SQL when built without it."""

    name = "traverse"

    def __init__(self, store: Store, name: str = "traverse") -> None:
        self.store = store
        self.name = name

    def __call__(self, start: str) -> Walk:
        found = self.store.traverse(start, "downstream", depth=DEPTH, limit=LIMIT)
        if found.partial:
            # A capped walk cannot be compared; the generator keeps walks well under the cap.
            raise RuntimeError(f"traverse from {start} was cut at the limit ({LIMIT})")
        return {n.uri: n.depth for n in found.nodes}


class NPlusOneWalk:
    """Breadth-first in Python, one query per node for its downstream neighbours.

    Each query also fetches the neighbours' URI, type and name, as the store's
    traversal does, so both hand back the same information.
    """

    name = "n_plus_1"

    def __init__(self, store: Store) -> None:
        self.engine = store.engine
        out, inward = lineage_labels(store)
        e = t.edge
        node: sa.BindParameter[int] = sa.bindparam("node")
        near = sa.union_all(
            sa.select(e.c.dst.label("id")).where(e.c.src == node, e.c.label.in_(out)),
            sa.select(e.c.src.label("id")).where(e.c.dst == node, e.c.label.in_(inward)),
        ).subquery()
        self.neighbours = (
            sa.select(near.c.id, t.node.c.uri, t.entity.c.type, t.entity.c.name)
            .join(t.node, t.node.c.id == near.c.id)
            .outerjoin(t.entity, t.entity.c.node == near.c.id)
        )
        self.queries: list[int] = []  # queries issued, per walk

    def __call__(self, start: str) -> Walk:
        with self.engine.connect() as conn:
            origin = conn.execute(sa.select(t.node.c.id).where(t.node.c.uri == start)).scalar_one()
            queries = 1
            seen = {origin}
            frontier = [origin]
            found: Walk = {}
            for depth in range(1, DEPTH + 1):
                reached: list[int] = []
                for node in frontier:
                    queries += 1
                    for row in conn.execute(self.neighbours, {"node": node}):
                        if row.id not in seen:
                            seen.add(row.id)
                            reached.append(row.id)
                            found[row.uri] = depth
                frontier = reached
        self.queries.append(queries)
        return found


class NetworkxWalk:
    """Breadth-first over an in-memory networkx graph of the same edges.

    The graph holds only the edges the downstream walk follows, each pointing
    the way the walk goes, so a plain BFS with a cutoff is the same walk.
    """

    name = "networkx"

    def __init__(self, store: Store) -> None:
        started = time.perf_counter()
        self.graph: Any = nx.DiGraph()
        self.uri_of: dict[int, str] = {}
        self.id_of: dict[str, int] = {}
        self.type_of: dict[int, str] = {}
        self.read(store)
        self.build_seconds = time.perf_counter() - started

    def read(self, store: Store) -> None:
        out, inward = lineage_labels(store)
        e, n = t.edge, t.node
        with store.engine.connect().execution_options(yield_per=50_000) as conn:
            nodes = sa.select(n.c.id, n.c.uri, t.entity.c.type).outerjoin(
                t.entity, t.entity.c.node == n.c.id
            )
            for id_, uri_, type_ in conn.execute(nodes):
                self.uri_of[id_] = uri_
                self.id_of[uri_] = id_
                self.type_of[id_] = type_
            edges = sa.select(e.c.src, e.c.label, e.c.dst).where(e.c.label.in_(out + inward))
            outward = set(out)
            self.graph.add_nodes_from(self.uri_of)
            self.graph.add_edges_from(
                (src, dst) if label in outward else (dst, src)
                for src, label, dst in conn.execute(edges)
            )

    def __call__(self, start: str) -> Walk:
        depths = nx.single_source_shortest_path_length(self.graph, self.id_of[start], cutoff=DEPTH)
        return {self.uri_of[node]: d for node, d in depths.items() if d > 0}

    def highest_fanout(self, k: int) -> list[str]:
        """The ``k`` nodes with the most entities within ``DEPTH`` hops downstream.

        Candidates are the nodes of each type with the most direct downstream
        neighbours; their full walks are ranked, so the start nodes are the
        widest walks of the graph, whatever type they are.
        """
        by_type: dict[str, list[tuple[int, int]]] = {}
        for node, degree in self.graph.out_degree():
            if degree:
                by_type.setdefault(self.type_of[node], []).append((degree, node))
        candidates = [n for ranked in by_type.values() for _, n in sorted(ranked)[-3 * k :]]
        reach = {n: len(self(self.uri_of[n])) for n in candidates}
        best = sorted(candidates, key=lambda n: (-reach[n], self.uri_of[n]))[:k]
        return [self.uri_of[n] for n in best]


def check_same(start: str, expected: Walk, got: Walk, method: str) -> None:
    """Fail loudly when a method's walk differs from the reference (networkx)."""
    if got == expected:
        return
    missing = sorted(expected.keys() - got.keys())[:3]
    extra = sorted(got.keys() - expected.keys())[:3]
    depth = sorted(u for u in expected.keys() & got.keys() if expected[u] != got[u])[:3]
    raise AssertionError(
        f"{method} from {start} reached {len(got)} entities, networkx {len(expected)}: "
        f"missing {missing}, extra {extra}, other depth {depth}"
    )


# -- measuring -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FirstCall:
    """The first traversal on a store, which builds its in-memory graph."""

    seconds: float
    build_seconds: float
    cache_bytes: int
    rss_growth_bytes: int  # the process's resident memory, before and after


def rss_bytes() -> int:
    """Resident memory of this process (Linux), 0 where /proc is missing."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def first_call(store: Store, start: str) -> FirstCall:
    """Time the first traversal, which reads the graph into memory."""
    if store.traversal_cache() is not None:
        raise RuntimeError("the in-memory graph was built before its first call was timed")
    rss = rss_bytes()
    began = time.perf_counter()
    store.traverse(start, "downstream", depth=DEPTH, limit=LIMIT)
    seconds = time.perf_counter() - began
    stats = store.traversal_cache()
    if stats is None:
        raise RuntimeError("the first traversal did not build the in-memory graph")
    return FirstCall(seconds, stats.build_seconds, stats.bytes, rss_bytes() - rss)


def measure_get(store: Store, org: Org, n: int, rng: random.Random) -> list[float]:
    """Latencies (ms) of ``Store.get`` on URIs drawn uniformly from all entities."""
    types = list(org.n)
    weights = list(org.n.values())
    samples: list[float] = []
    for _ in range(n):
        type_name = rng.choices(types, weights)[0]
        target = uri(type_name, rng.randrange(org.n[type_name]))
        started = time.perf_counter()
        found = store.get(target)
        samples.append(ms_since(started))
        if found is None:
            raise AssertionError(f"get({target}) found nothing")
    return samples


def measure_walks(
    methods: Sequence[Walker], reference: Walker, starts: Sequence[str], repeats: int
) -> tuple[dict[str, list[float]], list[int]]:
    """Latencies (ms) per method, and how many entities each start reaches.

    A first untimed round checks every method against ``reference`` and warms
    the caches alike for all; the timed rounds then alternate methods per start,
    so that noise from the shared machine falls on all of them.
    """
    reached: list[int] = []
    for start in starts:
        expected = reference(start)
        for method in methods:
            check_same(start, expected, method(start), method.name)
        reached.append(len(expected))
    timed: dict[str, dict[str, list[float]]] = {s: {m.name: [] for m in methods} for s in starts}
    for _ in range(repeats):
        for start in starts:
            for method in methods:
                began = time.perf_counter()
                method(start)
                timed[start][method.name].append(ms_since(began))
    for start, count in zip(starts, reached, strict=True):
        medians = ", ".join(f"{m} {statistics.median(v):.1f}" for m, v in timed[start].items())
        log(f"  {start}: reaches {count:,}, all methods agree; median ms: {medians}")
    samples = {m.name: [x for s in starts for x in timed[s][m.name]] for m in methods}
    return samples, reached


def run_store(backend: str, cfg: Config) -> dict[str, Any]:
    """Load, then time get and the three walks on one store."""
    log(f"{backend}: loading {cfg.entities:,} entities in batches of {cfg.batch:,}")
    org = Org(cfg.entities, cfg.seed)
    with fresh_store(backend, cfg) as store:
        loaded = load(store, org, cfg.batch)
        prepare_for_reads(store)
        log(f"{backend}: reading the graph into networkx")
        memory = NetworkxWalk(store)
        starts = memory.highest_fanout(cfg.starts)
        kinds = Counter(memory.type_of[memory.id_of[s]] for s in starts)
        log(f"{backend}: timing get on {cfg.gets:,} random URIs")
        gets = measure_get(store, org, cfg.gets, random.Random(cfg.seed))
        log(f"{backend}: first traversal (builds the store's in-memory graph)")
        first = first_call(store, starts[0])
        log(f"{backend}: timing walks from {len(starts)} start nodes, {cfg.repeats} rounds")
        n_plus_1 = NPlusOneWalk(store)
        sql = StoreWalk(Store(store.engine, store.schema, graph_cache="off"), "traverse_sql")
        walks, reached = measure_walks(
            [StoreWalk(store), sql, n_plus_1, memory], memory, starts, cfg.repeats
        )
    out = figures(loaded, gets, walks, reached, memory.build_seconds, n_plus_1.queries)
    return out | cache_figures(first, walks) | {"start_types": dict(sorted(kinds.items()))}


def cache_figures(first: FirstCall, walks: dict[str, list[float]]) -> dict[str, Any]:
    """What the in-memory graph costs, and the SQL walk's ratios for comparison."""
    p50 = {name: percentile(s, 50) for name, s in walks.items()}
    mb = 1024 * 1024
    return {
        "traverse_first_call_s": round(first.seconds, 2),
        "traverse_cache_build_s": round(first.build_seconds, 2),
        "traverse_cache_mb": round(first.cache_bytes / mb, 1),
        "traverse_cache_rss_growth_mb": round(first.rss_growth_bytes / mb, 1),
        "sql_speedup_vs_n_plus_1": round(p50["n_plus_1"] / p50["traverse_sql"], 2),
        "sql_slowdown_vs_networkx": round(p50["traverse_sql"] / p50["networkx"], 2),
    }


def figures(
    loaded: Loaded,
    gets: list[float],
    walks: dict[str, list[float]],
    reached: list[int],
    build_seconds: float,
    queries: list[int],
) -> dict[str, Any]:
    p50 = {name: percentile(s, 50) for name, s in walks.items()}
    out: dict[str, Any] = {
        "load_s": round(loaded.seconds, 1),
        "entities": loaded.entities,
        "edges": loaded.edges,
        "entities_per_s": round(loaded.entities / loaded.seconds),
        "edges_per_s": round(loaded.edges / loaded.seconds),
        "get_p50_ms": round(percentile(gets, 50), 3),
        "get_p99_ms": round(percentile(gets, 99), 3),
    }
    for name, samples in walks.items():
        out[f"{name}_p50_ms"] = round(p50[name], 2)
        out[f"{name}_p99_ms"] = round(percentile(samples, 99), 2)
    out |= {
        "start_nodes": len(reached),
        "reached_avg": round(statistics.fmean(reached)),
        "reached_max": max(reached),
        "n_plus_1_queries_avg": round(statistics.fmean(queries)),
        "networkx_build_s": round(build_seconds, 1),
        "speedup_vs_n_plus_1": round(p50["n_plus_1"] / p50["traverse"], 2),
        "slowdown_vs_networkx": round(p50["traverse"] / p50["networkx"], 2),
    }
    return out


# -- reporting -----------------------------------------------------------------------


def table(results: dict[str, dict[str, Any]]) -> str:
    """The figures side by side, one row per figure, one column per store."""
    stores = list(results)
    keys = list(dict.fromkeys(k for r in results.values() for k in r))
    width = max(len(k) for k in keys)
    lines = [f"{'':<{width}}  " + "  ".join(f"{s:>12}" for s in stores)]
    for key in keys:
        cells = [cell(results[s].get(key, "")) for s in stores]
        lines.append(f"{key:<{width}}  " + "  ".join(f"{c:>12}" for c in cells))
    return "\n".join(lines)


def cell(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_args(argv)
    results = {backend: run_store(backend, cfg) for backend in cfg.stores}
    print(table(results))
    print(json.dumps({**results, "quick": cfg.quick, "entities": cfg.entities}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
