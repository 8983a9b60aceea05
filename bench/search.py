"""Search benchmark: build the discovery index over a synthetic organisation, then time
queries through the service (real HTTP), against tantivy directly and SQLite FTS5.

    python bench/search.py [--quick] [--entities N] [--samples N] [--seed N]

The organisation is bench/synth.py's (about 1M entities; ``--quick``: 20k).
Documents are built by the service's own code (``documents.build``, filter
document included, into every field of ``mapping.index_fields``) from the
generated entities and their neighbours both ways, named and typed, as the
indexer reads them from the store (a first, untimed pass over the organisation
collects the incoming edges); no SQL store is loaded. The same documents fill
an FTS5 table. Then, for five kinds of query (exact name,
several words, a typo, a filter with words, a typeahead prefix), each sample
is timed three ways, in one run:

- service: ``GET /v1/search`` (or ``/typeahead``) over HTTP to the FastAPI app
  in its own process, serving that index (facets and highlights included);
- direct: the same compiled tantivy query in process, top 20 fetched (and the
  facet aggregation, where the service computes facets);
- fts5: the closest FTS5 query, ``ORDER BY rank LIMIT 20`` (FTS5 has no fuzzy
  matching: the typo row searches the first four letters as a prefix).

Progress goes to stderr; stdout gets a table and ends with one JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from mlgraph.catalog import Entity, Schema, load_schema
from mlgraph.catalog.validation import OWNERS
from mlgraph.search import analysis
from mlgraph.search.compiler import NAME_FIELDS, TEXT_FIELDS, Compiler
from mlgraph.search.documents import (
    OWNER_TYPES,
    Related,
    SearchDocument,
    Subject,
    build,
    uri_id,
)
from mlgraph.search.engine import FACET_SIZE, FACETS, hit_count
from mlgraph.search.index import BULK_HEAP
from mlgraph.search.mapping import index_fields, mapping_hash
from mlgraph.search.query import QueryParser
from mlgraph.search.ranking import FUZZY_BELOW
from mlgraph.search.reader import Reader
from mlgraph.search.versions import Versions
from mlgraph.search.writer import VersionWriter
from synth import Org

KINDS = ("exact", "multi_term", "fuzzy", "filtered", "typeahead")
LIMIT = 20
TARGET_P99_MS = 20.0
TARGET_RATIO = 2.0


@dataclass(frozen=True, slots=True)
class Config:
    entities: int
    quick: bool
    samples: int  # timed queries per kind and method
    seed: int
    workdir: Path | None  # keep the built indexes here, and reuse them when present


def parse_args(argv: Sequence[str] | None = None) -> Config:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="20k entities, fewer samples")
    parser.add_argument("--entities", type=int, help="entities to index (default 1,000,000)")
    parser.add_argument("--samples", type=int, help="queries per kind and method")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--workdir", type=Path, help="keep the indexes there; a later run with the same "
        "options reuses them (its build figures are the first run's)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.entities is not None and args.entities < 1000:
        parser.error("--entities must be at least 1000")
    quick = bool(args.quick)
    return Config(
        entities=args.entities or (20_000 if quick else 1_000_000),
        quick=quick,
        samples=args.samples or (40 if quick else 300),
        seed=args.seed,
        workdir=args.workdir,
    )


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def percentile(samples: Sequence[float], q: float) -> float:
    if len(samples) == 1:
        return samples[0]
    return statistics.quantiles(samples, n=100, method="inclusive")[round(q) - 1]


# -- documents from the generated organisation --------------------------------------


@dataclass
class Graph:
    """What one pass over the organisation learns for the next: every entity's name and
    type, and the starts of the edges ending at it under the inverse's name (as
    ``search/source.py`` reads them from the store for the service)."""

    names: dict[str, tuple[str, str]]  # uri -> (name, type)
    incoming: dict[str, list[tuple[str, str]]]  # uri -> [(inverse name, source uri)]


def graph(org: Org, schema: Schema) -> Graph:
    inverses: dict[tuple[str, str], str | None] = {}

    def inverse(type_name: str, relationship: str) -> str | None:
        key = (type_name, relationship)
        if key not in inverses:
            view = schema.types[type_name].relationships.get(relationship)
            inverses[key] = None if view is None else view.declarations[0].inverse
        return inverses[key]

    found = Graph({}, defaultdict(list))
    for entity in org.entities():
        found.names[entity.uri] = (entity.name or uri_id(entity.uri), entity.type)
        edges = [(OWNERS, o) for o in entity.owners] + [
            (rel, target) for rel, targets in entity.references.items() for target in targets
        ]
        for rel, target in edges:
            name = inverse(entity.type, rel)
            if name is not None:  # no inverse name: no search can name it (source.py)
                found.incoming[target].append((name, entity.uri))
    return found


def subjects(org: Org, known: Graph) -> Iterator[Subject]:
    """Each entity with its neighbours both ways, named and typed, as the service's indexer
    reads them from the store."""

    def related(rel: str, uri: str) -> Related:
        name, type_name = known.names.get(uri, (None, None))
        return Related(rel, uri, type_name, name)

    for entity in org.entities():
        out = [related(OWNERS, o) for o in entity.owners]
        out += [
            related(rel, target) for rel, targets in entity.references.items() for target in targets
        ]
        back = [related(rel, source) for rel, source in known.incoming.get(entity.uri, ())]
        yield Subject(entity, tuple(out), tuple(back))


FTS_SCHEMA = "CREATE VIRTUAL TABLE docs USING fts5(uri UNINDEXED, type, name, body)"


def fts_row(doc: SearchDocument) -> tuple[str, str, str, str]:
    body = " ".join(
        (doc.type_words, doc.owner_words, doc.tag_words, doc.related_words, doc.attribute_words,
         analysis.split(doc.description))
    )  # fmt: skip
    return doc.uri, doc.type, doc.name_words, body


@dataclass
class Built:
    seconds: float  # tantivy: documents built and indexed, committed
    fts_seconds: float
    documents: int
    samples: list[Entity]  # entities to derive queries from
    reused: bool = False  # built by an earlier run (--workdir)


def build_indexes(cfg: Config, root: Path, fts_path: Path) -> Built:
    """One pass over the organisation: documents into a new index version and into FTS5."""
    schema = load_schema()
    versions = Versions(root)
    version = versions.create(mapping_hash(schema), "bench")
    kinds = {t.kind for t in schema.types.values() if t.name in OWNER_TYPES}
    writer = VersionWriter(version, kinds, BULK_HEAP, fields=index_fields(schema))
    fts = sqlite3.connect(fts_path)
    fts.execute(FTS_SCHEMA)
    rng = random.Random(cfg.seed)
    keep: list[Entity] = []
    log("  reading the organisation's edges both ways (not timed)")
    known = graph(Org(cfg.entities, cfg.seed), schema)
    tantivy_s = fts_s = 0.0
    pending: list[tuple[str, str, str, str]] = []
    started = last = time.perf_counter()
    count = 0
    for subject in subjects(Org(cfg.entities, cfg.seed), known):
        t0 = time.perf_counter()
        doc = build(schema, subject)
        writer.add_new([doc])
        t1 = time.perf_counter()
        pending.append(fts_row(doc))
        if len(pending) >= 5000:
            fts.executemany("INSERT INTO docs VALUES (?, ?, ?, ?)", pending)
            pending.clear()
        t2 = time.perf_counter()
        tantivy_s += t1 - t0
        fts_s += t2 - t1
        count += 1
        # A uniform sample of the entities (reservoir), to derive queries from.
        if len(keep) < 2 * cfg.samples:
            keep.append(subject.entity)
        elif (j := rng.randrange(count)) < len(keep):
            keep[j] = subject.entity
        if t2 - last > 10:
            last = t2
            log(f"  indexed {count:,}/{cfg.entities:,} ({t2 - started:,.0f}s)")
    t0 = time.perf_counter()
    writer.commit()
    writer.close()
    tantivy_s += time.perf_counter() - t0
    t0 = time.perf_counter()
    if pending:
        fts.executemany("INSERT INTO docs VALUES (?, ?, ?, ?)", pending)
    fts.commit()
    fts.close()
    fts_s += time.perf_counter() - t0
    with versions.lock():
        versions.cut_over(version, documents=count)
    return Built(tantivy_s, fts_s, count, keep)


def built_indexes(cfg: Config, data_dir: Path) -> Built:
    """The indexes in ``data_dir``, built unless a run with ``--workdir`` left them there."""
    saved = data_dir / "built.json"
    if saved.exists():
        log(f"reusing the indexes in {data_dir}")
        facts = json.loads(saved.read_text())
        samples = [Entity.model_validate(e) for e in facts.pop("samples")]
        return Built(**facts, samples=samples, reused=True)
    data_dir.mkdir(parents=True, exist_ok=True)
    log(f"building the index over {cfg.entities:,} entities")
    built = build_indexes(cfg, data_dir / "search", data_dir / "fts5.db")
    if cfg.workdir is not None:
        facts = {
            "seconds": built.seconds,
            "fts_seconds": built.fts_seconds,
            "documents": built.documents,
            "samples": [e.model_dump(mode="json") for e in built.samples],
        }
        saved.write_text(json.dumps(facts))
    return built


# -- the queries ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Query:
    kind: str
    text: str  # for the service and tantivy
    fts: str  # for FTS5 MATCH
    first_word: str


def _words(text: str) -> list[str]:
    return analysis.terms(text)


def _fts_phrase(words: Sequence[str]) -> str:
    return '"' + " ".join(words) + '"'


def _typo(word: str, rng: random.Random) -> str:
    """One edit in the letters of a word (swap two neighbours, or drop one)."""
    if len(word) < 5:
        return word
    i = rng.randrange(1, len(word) - 2)
    if rng.random() < 0.5:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    return word[:i] + word[i + 1 :]


def queries(samples: list[Entity], cfg: Config) -> dict[str, list[Query]]:
    rng = random.Random(cfg.seed + 1)
    found: dict[str, list[Query]] = {k: [] for k in KINDS}
    for entity in samples:
        name = entity.name or uri_id(entity.uri)
        words = _words(name)  # e.g. instance, 0042311
        owner = uri_id(entity.owners[0]) if entity.owners else None
        found["exact"].append(Query("exact", name, f"name:{_fts_phrase(words)}", words[0]))
        if owner:
            # A type word and a team: many hits, as "feature team-0000003" has.
            text = f"{analysis.split(entity.type).lower()} {owner}"
            fts = " AND ".join(_fts_phrase(_words(part)) for part in text.split())
            found["multi_term"].append(Query("multi_term", text, fts, words[0]))
        typo = _typo(words[0], rng)
        found["fuzzy"].append(
            Query("fuzzy", f"{typo} {' '.join(words[1:])}",
                  " AND ".join([f"{typo[:4]}*", *(_fts_phrase([w]) for w in words[1:])]),
                  words[0])
        )  # fmt: skip
        text = f"{words[-1]} type:{entity.type}"
        found["filtered"].append(
            Query("filtered", text, f'type:"{entity.type}" AND name:{_fts_phrase(words[-1:])}',
                  words[0])
        )  # fmt: skip
        prefix = name[: max(4, len(name) - 3)]
        pwords = _words(prefix)
        fts = " AND ".join([*(_fts_phrase([w]) for w in pwords[:-1]), f'"{pwords[-1]}"*'])
        found["typeahead"].append(Query("typeahead", prefix, f"name:({fts})", words[0]))
    return {k: v[: cfg.samples] for k, v in found.items()}


# -- three ways to run a query ----------------------------------------------------------


class Direct:
    """The compiled tantivy query, in process: what the service asks tantivy for."""

    name = "direct"

    def __init__(self, root: Path) -> None:
        schema = load_schema()
        self.parser = QueryParser(schema)
        self.reader = Reader(Versions(root), mapping_hash(schema))
        self.aggregation = {
            name: {"terms": {"field": f, "size": FACET_SIZE}} for name, f in FACETS.items()
        }

    def __call__(self, q: Query) -> int:
        snap = self.reader.snapshot()
        parsed = self.parser.parse(q.text)
        fields = NAME_FIELDS if q.kind == "typeahead" else TEXT_FIELDS
        compiled = Compiler(snap.schema, searcher=snap.entities).compile(parsed, fields=fields)
        result = snap.entities.search(compiled.ranked, LIMIT, weight_by_field="demote")
        if hit_count(result) < FUZZY_BELOW and compiled.could_be_fuzzy:  # as the service does
            compiled = Compiler(snap.schema, fuzzy=True, searcher=snap.entities).compile(
                parsed, fields=fields
            )
            result = snap.entities.search(compiled.ranked, LIMIT, weight_by_field="demote")
        for _, address in result.hits:
            snap.entities.doc(address)
        if q.kind != "typeahead":
            snap.entities.aggregate(compiled.match, self.aggregation)
        return len(result.hits)


class Service:
    """``GET /v1/search`` and ``/v1/search/typeahead`` over HTTP, keep-alive."""

    name = "service"

    def __init__(self, base: str) -> None:
        self.http = httpx.Client(base_url=base, timeout=30)

    def __call__(self, q: Query) -> int:
        if q.kind == "typeahead":
            response = self.http.get(
                "/v1/search/typeahead", params={"prefix": q.text, "limit": LIMIT}
            )
            response.raise_for_status()
            return len(response.json()["suggestions"])
        response = self.http.get("/v1/search", params={"q": q.text, "limit": LIMIT})
        response.raise_for_status()
        return len(response.json()["hits"])


class Fts5:
    name = "fts5"

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, check_same_thread=False)

    def __call__(self, q: Query) -> int:
        rows = self.db.execute(
            "SELECT uri, type, name FROM docs WHERE docs MATCH ? ORDER BY rank LIMIT ?",
            (q.fts, LIMIT),
        ).fetchall()
        return len(rows)


Method = Callable[[Query], int]


def time_all(methods: Sequence[Any], batches: dict[str, list[Query]]) -> dict[str, Any]:
    """Per kind and method: p50/p99 in ms and hits found; methods interleaved per query."""
    timings: dict[str, dict[str, list[float]]] = {k: {m.name: [] for m in methods} for k in batches}
    found: dict[str, dict[str, int]] = {k: {m.name: 0 for m in methods} for k in batches}
    for kind, batch in batches.items():
        for q in batch[: max(3, len(batch) // 10)]:  # warm up caches and connections
            for method in methods:
                method(q)
        for q in batch:
            for method in methods:
                t0 = time.perf_counter()
                hits = method(q)
                timings[kind][method.name].append((time.perf_counter() - t0) * 1000)
                found[kind][method.name] += bool(hits)
        log(f"  {kind}: " + ", ".join(
            f"{m.name} p99 {percentile(timings[kind][m.name], 99):.2f} ms" for m in methods
        ))  # fmt: skip
    return {"timings": timings, "found": found}


# -- the service in its own process ------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(data_dir: Path, port: int) -> None:
    """Run the API over the index in ``data_dir`` (an empty store next to it)."""
    import uvicorn

    from mlgraph.api import create_app
    from mlgraph.config import Settings
    from mlgraph.connectors import load_connectors
    from mlgraph.runtime import Service as Runtime
    from mlgraph.store import Store

    options: dict[str, Any] = {"workers": False, "data_dir": data_dir}
    if "auth" in Settings.model_fields:
        options["auth"] = "off"  # a benchmark on localhost: no tokens
    settings = Settings(**options)
    store = Store.open(f"sqlite:///{data_dir / 'empty.db'}")
    app = create_app(Runtime(settings, store, load_connectors(store.schema)), workers=False)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


@contextlib.contextmanager
def served(data_dir: Path) -> Iterator[str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(data_dir), str(port)],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError("the service exited")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("the service did not start")
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def http_floor(base: str, samples: int) -> tuple[float, float]:
    """``GET /healthz`` of the same service: what any request costs before searching."""
    with httpx.Client(base_url=base, timeout=30) as http:
        times = []
        for _ in range(samples):
            t0 = time.perf_counter()
            http.get("/healthz").raise_for_status()
            times.append((time.perf_counter() - t0) * 1000)
    return round(percentile(times, 50), 3), round(percentile(times, 99), 3)


# -- freshness: commit to searchable -------------------------------------------------------


def freshness(data_dir: Path, commits: int, rate_per_s: float = 10.0) -> list[float]:
    """Seconds from each commit to the entity turning up in a search, with the indexer
    following the feed of a SQLite store (as the service runs it), at ``rate_per_s``."""
    import asyncio
    import shutil
    import threading

    from mlgraph.search import Discovery
    from mlgraph.store import Store

    # A fresh store and index each run: a --workdir run must not find last run's entities.
    (data_dir / "fresh.db").unlink(missing_ok=True)
    shutil.rmtree(data_dir / "fresh-search", ignore_errors=True)
    delays: list[float] = []
    with Store.open(f"sqlite:///{data_dir / 'fresh.db'}") as store:
        discovery = Discovery(data_dir / "fresh-search", store)
        discovery.indexer().catch_up()
        stop = asyncio.Event()
        loop = asyncio.new_event_loop()
        follower = threading.Thread(
            target=loop.run_until_complete, args=(discovery.indexer().run(stop),)
        )
        follower.start()
        try:
            for i in range(commits):
                name = f"fresh-model-{i:05d}"
                store.transact(
                    upsert=[Entity(uri=f"aip://model/bench/{name}", type="Model", name=name)]
                )
                committed = time.perf_counter()
                while not discovery.search(name, limit=1, facets=False).hits:
                    if time.perf_counter() - committed > 30:
                        raise TimeoutError(f"{name} not searchable after 30 s")
                    time.sleep(0.005)
                delays.append(time.perf_counter() - committed)
                time.sleep(max(0.0, 1 / rate_per_s - delays[-1]))
        finally:
            loop.call_soon_threadsafe(stop.set)
            follower.join()
            loop.close()
    return delays


# -- report -------------------------------------------------------------------------------


def summarize(
    cfg: Config, built: Built, timed: dict[str, Any], fresh: list[float]
) -> dict[str, Any]:
    timings = timed["timings"]

    def over(method: str, q: float) -> float:
        every = [t for kind in timings.values() for t in kind[method]]
        return round(percentile(every, q), 3)

    by_kind = {
        kind: {
            f"{m}_{p}_ms": round(percentile(times, q), 3)
            for m, times in methods.items()
            for p, q in (("p50", 50), ("p99", 99))
        }
        for kind, methods in timings.items()
    }
    service_p99 = over("service", 99)
    direct_p99 = over("direct", 99)
    return {
        "entities": built.documents,
        "quick": cfg.quick,
        "samples_per_kind": cfg.samples,
        "index_build_s": round(built.seconds, 1),
        "index_reused": built.reused,
        "index_docs_per_s": round(built.documents / built.seconds),
        "fts5_build_s": round(built.fts_seconds, 1),
        "service_p50_ms": over("service", 50),
        "service_p99_ms": service_p99,
        "direct_tantivy_p50_ms": over("direct", 50),
        "direct_tantivy_p99_ms": direct_p99,
        "fts5_p50_ms": over("fts5", 50),
        "fts5_p99_ms": over("fts5", 99),
        "ratio_to_direct_p99": round(service_p99 / direct_p99, 2),
        "freshness_p50_s": round(percentile(fresh, 50), 3),
        "freshness_p99_s": round(percentile(fresh, 99), 3),
        "target_p99_met": service_p99 < TARGET_P99_MS,
        "target_ratio_met": service_p99 / direct_p99 <= TARGET_RATIO,
        "by_kind": by_kind,
        "found": timed["found"],
    }


def table(result: dict[str, Any]) -> str:
    lines = [
        f"{result['entities']:,} entities: index built in {result['index_build_s']} s "
        f"({result['index_docs_per_s']:,}/s), FTS5 in {result['fts5_build_s']} s",
        f"{'query':<12} {'service p50/p99':>18} {'direct p50/p99':>18} {'fts5 p50/p99':>18}",
    ]
    for kind, row in result["by_kind"].items():
        cells = [
            f"{row[f'{m}_p50_ms']:.2f} / {row[f'{m}_p99_ms']:.2f}"
            for m in ("service", "direct", "fts5")
        ]
        lines.append(f"{kind:<12} {cells[0]:>18} {cells[1]:>18} {cells[2]:>18}")
    lines.append(
        f"GET /healthz of the same service (the HTTP floor): p50 {result['http_floor_p50_ms']}"
        f" ms, p99 {result['http_floor_p99_ms']} ms; load average {result['load_average_1m']}"
    )
    lines.append(
        f"freshness (commit to searchable) p50 {result['freshness_p50_s']} s, "
        f"p99 {result['freshness_p99_s']} s"
    )
    lines.append(
        f"{'all':<12} {result['service_p50_ms']:.2f} / {result['service_p99_ms']:.2f}".ljust(31)
        + f" {result['direct_tantivy_p50_ms']:.2f} / {result['direct_tantivy_p99_ms']:.2f}"
        f"     {result['fts5_p50_ms']:.2f} / {result['fts5_p99_ms']:.2f}"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--serve"]:
        serve(Path(args[1]), int(args[2]))
        return 0
    cfg = parse_args(args)
    with contextlib.ExitStack() as stack:
        if cfg.workdir is None:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mlgraph-")))
        else:
            data_dir = cfg.workdir / f"{cfg.entities}-{cfg.seed}"
        built = built_indexes(cfg, data_dir)
        batches = queries(built.samples, cfg)
        log(f"timing {cfg.samples} queries of each kind three ways")
        with served(data_dir) as base:
            methods = [Service(base), Direct(data_dir / "search"), Fts5(data_dir / "fts5.db")]
            timed = time_all(methods, batches)
            floor = http_floor(base, cfg.samples)
        log("timing commit-to-searchable with the indexer following a SQLite store")
        fresh = freshness(data_dir, 10 if cfg.quick else 100)
    result = summarize(cfg, built, timed, fresh)
    result["http_floor_p50_ms"], result["http_floor_p99_ms"] = floor
    result["load_average_1m"] = round(os.getloadavg()[0], 2)
    print(table(result))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
