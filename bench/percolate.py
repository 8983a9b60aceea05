"""Reverse search: documents matched per second against 1k, 10k and 100k saved searches.

Documents are shaped like the generated organisation's (``synth.py``): every
entity of an organisation becomes its reverse-search document, with the
names of its related entities both ways, owners, a team and an environment
tag, a status and an update time. Saved searches are drawn from those
documents in a realistic mix:

- selective anchors (45%): one entity, one pipeline's failed runs, one
  person's instances, instances of a model, users of a feature;
- team filters (17%): a team's datasets, a team's production instances
  (teams are tags: one per 250 entities, at least 40, a few big ones);
- broad filters (3%): a type and a status or stage or environment, drawn
  from about a hundred such filters, so many people share each one;
- ranges (15%): big dataset versions, a window of run numbers, recent
  changes by one owner;
- prefixes and substrings (12%): names and pipeline names by prefix,
  names containing a number;
- negations (7%): anchored ones (a team's datasets that are not raw) and a
  few with no positive term at all (``NOT owners EXISTS``), about 1 in 1,000.

For each size, the same documents go through ``Percolator.match``, and a
subset through brute force: every search's compiled predicate, in the same
run. Both must give the same answer. Rates are per second of this process's
CPU time, i.e. of one core, whatever else the machine runs (the wall-clock
rate is reported too). RSS is the process's resident memory once the
searches are indexed, documents included; the figure over the documents'
baseline is what the compiled searches and the index take (the generated
entities are kept alive, so the allocator cannot hand their memory to the
searches and hide them).

    .venv/bin/python bench/percolate.py --quick   # under a minute
    .venv/bin/python bench/percolate.py           # 1k, 10k, 100k searches over 100k entities

Ends with one JSON line: ``docs_per_s_100k``, ``candidates_per_doc_100k``,
``speedup_vs_brute_force_100k``, ``rss_mb_100k`` and the same for each size.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import json
import random
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mlgraph.catalog import Entity, load_schema
from mlgraph.catalog.validation import OWNERS
from mlgraph.reverse import CompiledSearch, Percolator, compile_search, document_mapping
from mlgraph.reverse.stats import Statistics
from mlgraph.search.filter_document import Document, Related, build_document, uri_id
from mlgraph.search.filter_fields import DocumentMapping
from synth import Org

TARGET_DOCS_PER_S = 2000
TARGET_SPEEDUP = 100
NOW = datetime(2026, 1, 1, tzinfo=UTC)
STATUSES = (("success", 0.85), ("running", 0.10), ("failed", 0.05))
STATUS_NAMES = [name for name, _ in STATUSES]
STATUS_WEIGHTS = [weight for _, weight in STATUSES]


@dataclass(frozen=True)
class Config:
    quick: bool
    entities: int
    sizes: tuple[int, ...]
    documents: int  # matched per size
    brute_documents: int  # checked by brute force per size
    seed: int


def parse_args(argv: Sequence[str] | None = None) -> Config:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a small organisation, fewer documents")
    p.add_argument("--entities", type=int, help="organisation size (100,000; quick 20,000)")
    p.add_argument("--documents", type=int, help="documents matched per size (5,000; quick 300)")
    p.add_argument("--seed", type=int, default=7)
    a = p.parse_args(argv)
    return Config(
        quick=a.quick,
        entities=a.entities or (20_000 if a.quick else 100_000),
        sizes=(1_000, 10_000, 100_000),
        documents=a.documents or (300 if a.quick else 5_000),
        brute_documents=5 if a.quick else 40,
        seed=a.seed,
    )


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def settle_memory() -> None:
    """Collect garbage and hand freed memory back to the OS, so RSS means what is in use."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# -- documents ------------------------------------------------------------------------


def organisation_documents(cfg: Config) -> tuple[list[Entity], list[Document]]:
    """A generated organisation's entities, and each one's reverse-search document."""
    schema = load_schema()
    rng = random.Random(cfg.seed)
    entities: list[Entity] = list(Org(cfg.entities, seed=cfg.seed).entities())
    related: dict[str, list[Related]] = defaultdict(list)
    for e in entities:
        etype = schema.type(e.type)
        for rel, uris in [(OWNERS, e.owners), *e.references.items()]:
            view = etype.relationship(rel)
            inverse = view.declarations[0].inverse
            for target in uris:
                # Generated names are the URIs' ids, so no lookup is needed.
                related[e.uri].append(Related(rel, target, uri_id(target)))
                if inverse:
                    related[target].append(Related(inverse, e.uri, e.name))
    # Teams as tags, more of them than the organisation has groups, a few big.
    teams = [f"team-{i:04d}" for i in range(max(40, cfg.entities // 250))]
    weights = [1 / (rank + 5) for rank in range(len(teams))]
    docs: list[Document] = []
    for e in entities:
        team = rng.choices(teams, weights)[0]
        env = "prod" if rng.random() < 0.6 else "dev"
        attributes = dict(e.attributes)
        if "status" in schema.type(e.type).fields and e.type != "AbTest":
            attributes["status"] = rng.choices(STATUS_NAMES, STATUS_WEIGHTS)[0]
        shaped = e.model_copy(
            update={
                "tags": {**e.tags, "team": team, "env": env},
                "attributes": attributes,
                "source_updated_at": NOW - timedelta(seconds=rng.randrange(365 * 86400)),
            }
        )
        docs.append(build_document(schema, shaped, related.get(e.uri, ())))
    return entities, docs


# -- saved searches ---------------------------------------------------------------------


def q(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class SearchMix:
    """Draws saved searches from the documents, in the proportions the module doc gives."""

    def __init__(self, docs: list[Document], seed: int) -> None:
        self.rng = random.Random(seed)
        self.docs = docs
        self.by_type: dict[str, list[Document]] = defaultdict(list)
        for d in docs:
            self.by_type[d["type"]].append(d)
        teams = sorted({d["tags.team"] for d in docs})
        self.teams = teams
        self.broad = self._broad_filters()

    def pick(self, type_name: str) -> Document:
        return self.rng.choice(self.by_type[type_name])

    def _broad_filters(self) -> list[str]:
        found = []
        for type_name in sorted(self.by_type):
            for env in ("prod", "dev"):
                found.append(f"type == {q(type_name)} AND tags.env == {q(env)}")
            found.append(f"type == {q(type_name)} AND NOT tags.env == 'prod'")
        for type_name in ("PipelineRun", "JobAttempt"):
            for status, _ in STATUSES:
                found.append(f"type == {q(type_name)} AND status == {q(status)}")
                found.append(
                    f"type == {q(type_name)} AND status == {q(status)} AND tags.env == 'prod'"
                )
        for stage in ("production", "archived"):
            found.append(f"type == 'ModelInstance' AND stage == {q(stage)}")
        for team in self.teams[:40]:
            found.append(f"tags.team == {q(team)} AND type IN ['Model', 'ModelInstance']")
        return found

    def draw(self) -> str:
        r = self.rng.random()
        if r < 0.45:
            return self.selective()
        if r < 0.62:
            return self.team()
        if r < 0.65:
            return self.rng.choice(self.broad)
        if r < 0.80:
            return self.ranged()
        if r < 0.92:
            return self.pattern()
        return self.negated()

    def selective(self) -> str:
        # Anchors are drawn uniformly from the catalogue (any pipeline, model,
        # feature or person), not weighted by how much each is used.
        choice = self.rng.randrange(6)
        if choice == 0:
            return f"uri == {q(self.rng.choice(self.docs)['uri'])}"
        if choice == 1:
            pipeline = self.pick("Pipeline")["name"]
            return f"pipeline.name == {q(pipeline)} AND status == 'failed'"
        if choice == 2:
            person = uri_id(self.pick("User")["uri"])
            return f"owners ANY [{q(person)}] AND type == 'ModelInstance'"
        if choice == 3:
            model = self.pick("Model")["name"]
            return f"model.name == {q(model)} AND stage == 'production'"
        if choice == 4:
            features = [uri_id(self.pick("Feature")["uri"]) for _ in range(3)]
            return f"features ANY [{', '.join(q(f) for f in features)}]"
        d = self.pick("Dataset")
        return f"name == {q(d['name'])}"

    def team(self) -> str:
        team = self.rng.choice(self.teams)
        if self.rng.random() < 0.5:
            return f"tags.team == {q(team)} AND type == 'Dataset'"
        return f"tags.team == {q(team)} AND type == 'ModelInstance' AND stage == 'production'"

    def ranged(self) -> str:
        choice = self.rng.randrange(3)
        if choice == 0:
            threshold = self.rng.randrange(990_000_000, 1_000_000_000)
            return f"type == 'DatasetVersion' AND row_count > {threshold}"
        if choice == 1:
            start = self.pick("PipelineRun")["run_number"]
            return f"run_number >= {start} AND run_number < {start + 50}"
        person = uri_id(self.pick("User")["uri"])
        since = (NOW - timedelta(days=self.rng.randrange(1, 30))).date().isoformat()
        return f"updated_at > {since} AND owners.id == {q(person)}"

    def pattern(self) -> str:
        choice = self.rng.randrange(3)
        if choice == 0:
            name = self.pick("ModelInstance")["name"]
            return f"name LIKE {q(name[:-2] + '*')}"
        if choice == 1:
            pipeline = self.pick("Pipeline")["name"]
            return f"pipeline.name LIKE {q(pipeline[:-1] + '*')} AND status != 'success'"
        number = f"{self.rng.randrange(100_000):05d}"
        return f"name CONTAINS {q(number)}"

    def negated(self) -> str:
        if self.rng.random() < 0.015:  # with the 7% share: about 1 in 1,000 unanchored
            return self.rng.choice(
                ["NOT owners EXISTS", "NOT tags.env == 'prod'", "NOT status == 'success'"]
            )
        team = self.rng.choice(self.teams)
        return f"tags.team == {q(team)} AND type == 'Dataset' AND NOT tags.tier == 'raw'"


# -- measuring ----------------------------------------------------------------------------


@dataclass
class Result:
    searches: int
    conjunctions: int
    always_checked: int
    index_s: float
    docs_per_s: float
    wall_docs_per_s: float
    candidates_per_doc: float
    matches_per_doc: float
    brute_docs_per_s: float
    speedup_vs_brute_force: float
    rss_mb: float


class Compiler:
    """Compiles each distinct text once (the sizes share their searches)."""

    def __init__(self, mapping: DocumentMapping) -> None:
        self.mapping = mapping
        self.cache: dict[str, CompiledSearch] = {}
        self.cpu_s = 0.0

    def __call__(self, texts: list[str]) -> list[CompiledSearch]:
        start = time.process_time()
        for text in texts:
            if text not in self.cache:
                self.cache[text] = compile_search(text, self.mapping)
        self.cpu_s += time.process_time() - start
        return [self.cache[t] for t in texts]

    @property
    def per_s(self) -> float:
        return len(self.cache) / max(self.cpu_s, 1e-9)


def measure(
    cfg: Config,
    compiled: list[CompiledSearch],
    docs: list[Document],
    statistics: Statistics,
    mapping: DocumentMapping,
) -> Result:
    size = len(compiled)
    percolator = Percolator(mapping, statistics)
    start = time.process_time()
    for i, c in enumerate(compiled):
        percolator.add(i, c)
    index_s = time.process_time() - start
    settle_memory()
    rss = rss_mb()
    log(
        f"[{size:,}] indexed in {index_s:.1f} s: {percolator.conjunctions:,} conjunctions, "
        f"{percolator.always_checked} always checked, RSS {rss:.0f} MB"
    )

    now = NOW.timestamp()
    sample = random.Random(cfg.seed).sample(docs, min(cfg.documents, len(docs)))
    candidates = matches = 0
    # CPU time of this process: what one core does, whatever else the machine runs.
    start, wall = time.process_time(), time.perf_counter()
    for d in sample:
        matches += len(percolator.match(d, now))
        candidates += percolator.last_candidates
    docs_per_s = len(sample) / (time.process_time() - start)
    wall_per_s = len(sample) / (time.perf_counter() - wall)

    brute_sample = sample[: cfg.brute_documents]
    start = time.process_time()
    brute = []
    for d in brute_sample:
        prepared = percolator.prepare(d)
        brute.append([i for i, c in enumerate(compiled) if c.check(prepared, now)])
    brute_per_s = len(brute_sample) / (time.process_time() - start)
    fast = [percolator.match(d, now) for d in brute_sample]
    if fast != brute:
        raise SystemExit(f"[{size:,}] the percolator and brute force disagree")

    result = Result(
        searches=size,
        conjunctions=percolator.conjunctions,
        always_checked=percolator.always_checked,
        index_s=round(index_s, 2),
        docs_per_s=round(docs_per_s, 1),
        wall_docs_per_s=round(wall_per_s, 1),
        candidates_per_doc=round(candidates / len(sample), 1),
        matches_per_doc=round(matches / len(sample), 1),
        brute_docs_per_s=round(brute_per_s, 2),
        speedup_vs_brute_force=round(docs_per_s / brute_per_s, 1),
        rss_mb=round(rss, 1),
    )
    log(
        f"[{size:,}] {result.docs_per_s:,.0f} docs/s (CPU; {result.wall_docs_per_s:,.0f} by the "
        f"wall clock), {result.candidates_per_doc} candidates and {result.matches_per_doc} "
        f"matches per doc; brute force {result.brute_docs_per_s} docs/s: "
        f"x{result.speedup_vs_brute_force}"
    )
    del percolator
    gc.collect()
    return result


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_args(argv)
    mapping = document_mapping(load_schema())
    start = time.perf_counter()
    entities, docs = organisation_documents(cfg)
    log(f"{len(docs):,} documents from a {cfg.entities:,}-entity organisation "
        f"in {time.perf_counter() - start:.1f} s")  # fmt: skip
    # What documents look like, from a sample: the percolator picks keys by it.
    statistics = Statistics()
    sampler = Percolator(mapping, statistics)
    for d in random.Random(cfg.seed + 1).sample(docs, min(2000, len(docs))):
        sampler.observe(d)
    settle_memory()
    base_rss = rss_mb()
    # One mix: each size's searches are the first that many of the largest's.
    mix = SearchMix(docs, cfg.seed)
    texts = [mix.draw() for _ in range(max(cfg.sizes))]
    compiler = Compiler(mapping)
    results: dict[int, Result] = {}
    for size in cfg.sizes:
        compiled = compiler(texts[:size])
        log(f"[{size:,}] {len(set(texts[:size])):,} distinct texts")
        results[size] = measure(cfg, compiled, docs, statistics, mapping)
    log(f"compiled {len(compiler.cache):,} distinct searches at {compiler.per_s:,.0f}/s (CPU)")
    log(f"RSS with the documents and statistics alone: {base_rss:.0f} MB")

    print(f"{'searches':>9} {'docs/s':>9} {'cand/doc':>9} {'match/doc':>9} "
          f"{'brute/s':>9} {'speedup':>8} {'RSS MB':>8} {'+searches':>9}")  # fmt: skip
    for r in results.values():
        print(
            f"{r.searches:>9,} {r.docs_per_s:>9,.0f} {r.candidates_per_doc:>9} "
            f"{r.matches_per_doc:>9} {r.brute_docs_per_s:>9} {r.speedup_vs_brute_force:>8} "
            f"{r.rss_mb:>8} {r.rss_mb - base_rss:>9.1f}"
        )
    out: dict[str, Any] = {
        "quick": cfg.quick,
        "entities": cfg.entities,
        "compiled_per_s": round(compiler.per_s),
        "rss_mb_documents": round(base_rss, 1),
    }
    for size, r in results.items():
        label = f"{size // 1000}k"
        out[f"docs_per_s_{label}"] = r.docs_per_s
        out[f"wall_docs_per_s_{label}"] = r.wall_docs_per_s
        out[f"candidates_per_doc_{label}"] = r.candidates_per_doc
        out[f"matches_per_doc_{label}"] = r.matches_per_doc
        out[f"brute_force_docs_per_s_{label}"] = r.brute_docs_per_s
        out[f"speedup_vs_brute_force_{label}"] = r.speedup_vs_brute_force
        out[f"rss_mb_{label}"] = r.rss_mb
        # The compiled searches and the index, over the documents' baseline.
        out[f"searches_rss_mb_{label}"] = round(r.rss_mb - base_rss, 1)
        out[f"index_s_{label}"] = r.index_s
    big = results[max(results)]
    out["targets_met"] = (
        big.docs_per_s >= TARGET_DOCS_PER_S and big.speedup_vs_brute_force >= TARGET_SPEEDUP
    )
    print(json.dumps(out))
    del entities  # kept until now on purpose: see the module doc on RSS
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
