"""The reverse follower's cost per change: changes handled per second with 0, 100 and 10k
saved searches.

A SQLite store (or ``--url``) is loaded with a generated organisation
(``synth.py``, with team and environment tags and run statuses, as
``percolate.py`` shapes them). For each size, saved searches drawn by
``percolate.py``'s mix are saved, a fresh follower builds them and catches up
(not timed), then a batch of thin changes is written (one entity per
transaction: a status or a description changed, as hydration writes them)
and ``follower.catch_up()`` is timed over them.

The floor, measured in the same run over the same batch: the store's feed
read plus every touched entity's document as of the transaction before and
the transaction itself (``DocumentReader``), which is what a follower that
matched every change both ways could not avoid reading. ``ratio`` is the
follower's rate over the floor's: above 1 means the follower skipped reads.
Rates are per second of this process's CPU time.

    .venv/bin/python bench/follow.py --quick   # 3k entities, 300 changes: about a minute
    .venv/bin/python bench/follow.py           # 10k entities, 1,000 changes

Ends with one JSON line: ``changes_per_s_0``, ``changes_per_s_100``,
``changes_per_s_10k``, ``floor_changes_per_s_*`` and ``ratio_*``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from mlgraph.catalog import Entity
from mlgraph.reverse import ReverseFollower, SavedSearches
from mlgraph.reverse.reading import DocumentReader
from mlgraph.store import Store
from percolate import NOW, STATUS_NAMES, STATUS_WEIGHTS, SearchMix
from synth import Org


@dataclass(frozen=True)
class Config:
    entities: int
    changes: int  # transactions per size
    sizes: tuple[int, ...]
    url: str | None
    seed: int


def parse_args(argv: Sequence[str] | None = None) -> Config:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--entities", type=int)
    p.add_argument("--changes", type=int)
    p.add_argument("--url", help="a store URL (default: a temporary SQLite file)")
    p.add_argument("--seed", type=int, default=7)
    a = p.parse_args(argv)
    return Config(
        entities=a.entities or (3_000 if a.quick else 10_000),
        changes=a.changes or (300 if a.quick else 1_000),
        sizes=(0, 100, 10_000),
        url=a.url,
        seed=a.seed,
    )


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def shaped(entities: list[Entity], rng: random.Random) -> list[Entity]:
    """Team and environment tags, statuses and update times, as ``percolate.py`` has them."""
    teams = [f"team-{i:04d}" for i in range(max(40, len(entities) // 250))]
    weights = [1 / (rank + 5) for rank in range(len(teams))]
    out: list[Entity] = []
    for e in entities:
        attributes = dict(e.attributes)
        if e.type in ("PipelineRun", "JobAttempt"):
            attributes["status"] = rng.choices(STATUS_NAMES, STATUS_WEIGHTS)[0]
        tags = {**e.tags, "team": rng.choices(teams, weights)[0]}
        tags["env"] = "prod" if rng.random() < 0.6 else "dev"
        when = NOW - timedelta(seconds=rng.randrange(365 * 86400))
        out.append(
            e.model_copy(update={"tags": tags, "attributes": attributes, "source_updated_at": when})
        )
    return out


def changed(e: Entity, k: int, rng: random.Random) -> Entity:
    """``e`` as a source would report it after a change: a new status, or a new description."""
    if e.type in ("PipelineRun", "JobAttempt"):
        status = rng.choices(STATUS_NAMES, STATUS_WEIGHTS)[0]
        return e.model_copy(update={"attributes": {**e.attributes, "status": status}})
    return e.model_copy(update={"description": f"revision {k}"})


@dataclass
class Row:
    searches: int
    changes: int
    follower_per_s: float
    floor_per_s: float
    documents: int
    entered: int
    left: int

    @property
    def ratio(self) -> float:
        return self.follower_per_s / max(self.floor_per_s, 1e-9)


def floor_rate(store: Store, first: int, last: int) -> float:
    """Changes per CPU second of the feed read and the before/after document reads alone."""
    reader = DocumentReader(store)
    start = time.process_time()
    cursor, n = first, 0
    while cursor < last:
        changes = store.changes_since(cursor, 100)
        for change in changes:
            if change.tx > last:
                break
            reader.documents(change.uris, as_of=change.tx - 1)
            reader.documents(change.uris, as_of=change.tx)
            n += 1
        cursor = changes[-1].tx
    return n / max(time.process_time() - start, 1e-9)


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_args(argv)
    rng = random.Random(cfg.seed)
    with tempfile.TemporaryDirectory() as tmp:
        url = cfg.url or f"sqlite:///{Path(tmp) / 'follow.db'}"
        store = Store.open(url)
        entities = shaped(list(Org(cfg.entities, seed=cfg.seed).entities()), rng)
        log(f"loading {len(entities)} entities into {store.backend}")
        for i in range(0, len(entities), 500):
            store.transact(upsert=entities[i : i + 500])
        docs = [d for part in DocumentReader(store).every_document() for d in part]
        mix = SearchMix(docs, cfg.seed)
        searches = SavedSearches(store)
        rows: list[Row] = []
        saved = 0
        for size in cfg.sizes:
            log(f"saving {size - saved} searches")
            while saved < size:
                searches.save(f"owner-{saved % 50}", f"search-{saved}", mix.draw())
                saved += 1
            follower = ReverseFollower(store)
            follower.catch_up()  # builds every search, reads the load: not timed
            first = store.last_tx()
            for k in range(cfg.changes):
                store.transact(upsert=[changed(rng.choice(entities), k, rng)])
            last = store.last_tx()
            before = follower.stats.documents, follower.stats.entered, follower.stats.left
            start = time.process_time()
            follower.catch_up()
            spent = time.process_time() - start
            floor = floor_rate(store, first, last)
            stats = follower.stats
            row = Row(
                size,
                last - first,
                (last - first) / max(spent, 1e-9),
                floor,
                stats.documents - before[0],
                stats.entered - before[1],
                stats.left - before[2],
            )
            rows.append(row)
            log(f"{size} searches: {row.follower_per_s:.0f} changes/s, floor {floor:.0f}/s")
        store.close()
    print("| saved searches | changes | follower changes/s | floor changes/s | ratio | "
          "documents matched | entered | left |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r.searches:,} | {r.changes:,} | {r.follower_per_s:,.0f} | {r.floor_per_s:,.0f} "
            f"| {r.ratio:.2f} | {r.documents:,} | {r.entered:,} | {r.left:,} |"
        )
    result: dict[str, float] = {}
    for r in rows:
        name = _size_name(r.searches)
        result[f"changes_per_s_{name}"] = round(r.follower_per_s, 1)
        result[f"floor_changes_per_s_{name}"] = round(r.floor_per_s, 1)
        result[f"ratio_{name}"] = round(r.ratio, 3)
    print(json.dumps(result))
    return 0


def _size_name(n: int) -> str:
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


if __name__ == "__main__":
    raise SystemExit(main())
