"""API benchmark: seed 000's GraphQL query and a 3-hop lineage query, over HTTP.

    python bench/api.py [--quick] [--size N] [--clients C] [--seconds S]

Generates an organisation with the reference sources, hydrates and enriches it
into a SQLite store, then serves the API from a separate process (uvicorn, one
worker, a read token required). It times, in the same run:

- the same data read directly from the store in this process: for the seed
  query with the batch reads the API's loaders use, level by level (the same
  statements: the floor), and with ``Store.get`` / ``Store.neighbors`` one
  entity at a time, as a client of the store would walk it; ``Store.traverse``
  for lineage;
- the two GraphQL queries from one client, one after another: what HTTP,
  GraphQL and the loaders add over the floor is ``overhead_vs_store_p50``;
- each query from ``--clients`` concurrent clients for ``--seconds`` (p50/p99);
- the seed query at rising concurrency, for queries per second at saturation.

Every answer is checked against the store before timing starts. Progress goes
to stderr; stdout gets a table and ends with one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from mlgraph.api.tokens import Tokens
from mlgraph.config import Settings
from mlgraph.connectors import load_connectors
from mlgraph.runtime import Service
from mlgraph.sources import Sources, SourcesThread, generate
from mlgraph.store import Store
from mlgraph.store.batch_reads import NeighborPage

SEED_URI = "aip://model/registry/ranking-model-v5-20XX0101"
SEED_QUERY = """query {
  model(id: "aip://model/registry/ranking-model-v5-20XX0101") {
    name
    owners { name }
    currentInstance {
      version
      pipeline { name owners { name } }
      features { edges { node { name data { edges { node { name } } } } } }
      associatedAbTests { name cells { number name } }
    }
  }
}"""
LINEAGE_QUERY = """query($uri: String!) {
  lineage(uri: $uri, direction: DOWNSTREAM, depth: 3, first: 100) {
    partial
    nodes { depth entity { uri type name } }
  }
}"""


@dataclass(frozen=True, slots=True)
class Config:
    quick: bool
    size: int
    clients: int
    seconds: float
    sequential: int  # timed one-after-another requests per query and reader
    saturation: tuple[int, ...]  # client counts tried for queries per second


def parse_args(argv: Sequence[str] | None = None) -> Config:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small organisation, short runs")
    parser.add_argument("--size", type=int, help="organisation size (default 30; quick 3)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients")
    parser.add_argument("--seconds", type=float, help="per concurrent run (default 15; quick 2)")
    parser.add_argument("--serve", nargs=2, metavar=("STORE_URL", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve[0], int(args.serve[1]))
        sys.exit(0)
    quick = bool(args.quick)
    if args.clients < 1:
        parser.error("--clients must be at least 1")
    return Config(
        quick=quick,
        size=args.size or (3 if quick else 30),
        clients=args.clients,
        seconds=args.seconds or (2.0 if quick else 15.0),
        sequential=50 if quick else 500,
        saturation=(1, 16) if quick else (1, 2, 4, 8, 16, 32, 64),
    )


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def percentile(samples: Sequence[float], q: float) -> float:
    if len(samples) == 1:
        return samples[0]
    return statistics.quantiles(samples, n=100, method="inclusive")[round(q) - 1]


def summary(samples: Sequence[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(samples, 50), 2),
        "p99_ms": round(percentile(samples, 99), 2),
        "n": len(samples),
    }


# -- the organisation ------------------------------------------------------------------


def load(store: Store, data_dir: Path, size: int) -> None:
    """Hydrate every object of the reference sources, then enrich (stubs, inferences)."""
    sources = Sources(generate(size))
    thread = SourcesThread(sources)
    urls = thread.start()
    try:
        settings = Settings(workers=False, sources=urls, data_dir=data_dir)
        service = Service(settings, store, load_connectors(store.schema, urls))
        asyncio.run(service.reconcile())
        asyncio.run(service.enrich())
    finally:
        thread.stop()


def lineage_start(store: Store) -> str:
    """The dataset feeding the seed's features with the widest 3-hop downstream lineage."""
    candidates = {
        d.uri
        for f in store.neighbors(SEED_URI, relationships=["features"])
        for d in store.neighbors(f.uri, relationships=["data"])
    }
    return max(sorted(candidates), key=lambda u: len(store.traverse(u, "downstream").nodes))


# -- the baseline: the same data, straight from the store ---------------------------------


def seed_from_store(store: Store) -> dict[str, Any]:
    """Seed 000's answer with Store.get and Store.neighbors, as a store client walks it."""

    def named(uri: str) -> dict[str, Any]:
        entity = store.get(uri)
        return {"name": entity.name if entity else None}

    def related(uri: str, relationship: str) -> list[str]:
        return [n.uri for n in store.neighbors(uri, relationships=[relationship])]

    instance = store.get(SEED_URI)
    assert instance is not None
    (model_uri,) = related(SEED_URI, "model")
    model = store.get(model_uri)
    assert model is not None
    (pipeline,) = related(SEED_URI, "pipeline")
    return {
        "name": model.name,
        "owners": [named(o) for o in model.owners],
        "currentInstance": {
            "version": instance.attributes.get("version"),
            "pipeline": {**named(pipeline),
                         "owners": [named(o) for o in related(pipeline, "owners")]},
            "features": {"edges": [
                {"node": {**named(f), "data": {"edges": [{"node": named(d)}
                                                         for d in related(f, "data")]}}}
                for f in related(SEED_URI, "features")
            ]},
            "associatedAbTests": [
                {**named(t), "cells": [
                    {"number": (c := store.get(cell)) and c.attributes.get("number"),
                     "name": c.name if c else None}
                    for cell in related(t, "cells")
                ]}
                for t in related(SEED_URI, "associated_ab_tests")
            ],
        },
    }  # fmt: skip


def seed_from_store_batched(store: Store) -> dict[str, Any]:
    """The same answer with the batch reads the API uses, level by level: the floor."""
    types = store.schema.types

    def hop(uris: list[str], type_name: str, name: str) -> dict[str, NeighborPage]:
        view = types[type_name].relationships[name]
        return store.neighbors_many(uris, view.labels, view.direction, limit=100)

    def named(page: NeighborPage | None) -> list[dict[str, Any]]:
        if page is None:
            return []
        return [{"name": e.name if e else None} for e in page.entities]

    instance = store.get_many([SEED_URI], references=False)[SEED_URI]
    model_page = hop([SEED_URI], "ModelInstance", "model")[SEED_URI]
    model, model_uri = model_page.entities[0], model_page.items[0].uri
    owners = hop([model_uri], "Model", "owners").get(model_uri)
    pipeline = hop([SEED_URI], "ModelInstance", "pipeline")[SEED_URI]
    features = hop([SEED_URI], "ModelInstance", "features")[SEED_URI]
    tests = hop([SEED_URI], "ModelInstance", "associated_ab_tests").get(SEED_URI)
    pipeline_uri = pipeline.items[0].uri
    pipeline_owners = hop([pipeline_uri], "Pipeline", "owners").get(pipeline_uri)
    data = hop([f.uri for f in features.items], "Feature", "data")
    test_uris = [t.uri for t in tests.items] if tests else []
    cells = hop(test_uris, "AbTest", "cells")
    return {
        "name": model.name if model else None,
        "owners": named(owners),
        "currentInstance": {
            "version": instance.attributes.get("version"),
            "pipeline": {**named(pipeline)[0], "owners": named(pipeline_owners)},
            "features": {"edges": [
                {"node": {"name": e.name if e else None,
                          "data": {"edges": [{"node": n} for n in named(data.get(f.uri))]}}}
                for f, e in zip(features.items, features.entities, strict=True)
            ]},
            "associatedAbTests": [
                {"name": e.name if e else None, "cells": [
                    {"number": c.attributes.get("number") if c else None,
                     "name": c.name if c else None}
                    for c in (cells[t.uri].entities if t.uri in cells else ())
                ]}
                for t, e in zip(tests.items if tests else (), tests.entities if tests else (),
                                strict=True)
            ],
        },
    }  # fmt: skip


def lineage_from_store(store: Store, uri: str) -> list[tuple[int, str]]:
    walk = store.traverse(uri, "downstream", depth=3, limit=100)
    return [(r.depth, r.uri) for r in walk.nodes]


def time_calls(fn: Callable[[], object], n: int) -> list[float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


# -- the API in its own process ----------------------------------------------------------


def serve(store_url: str, port: int) -> None:
    """The API alone (``--serve``): no workers, no access log, one uvicorn worker."""
    import uvicorn

    from mlgraph.api import create_app

    data_dir = Path(store_url.removeprefix("sqlite:///")).parent
    settings = Settings(workers=False, store_url=store_url, data_dir=data_dir)
    service = Service.open(settings)
    uvicorn.run(create_app(service), host="127.0.0.1", port=port, log_level="warning",
                access_log=False)  # fmt: skip


def start_server(store_url: str) -> tuple[subprocess.Popen[bytes], str]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, __file__, "--serve", store_url, str(port)],
                            env={**os.environ, "MLGRAPH_CONFIG": ""})  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300  # imports alone take a while on a busy machine
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the API process exited")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise TimeoutError("the API did not start")


class Client:
    def __init__(self, url: str, token: str) -> None:
        self.url = f"{url}/graphql"
        self.headers = {"Authorization": f"Bearer {token}"}

    async def query(
        self, http: aiohttp.ClientSession, query: str, variables: dict[str, Any]
    ) -> Any:
        async with http.post(self.url, json={"query": query, "variables": variables},
                             headers=self.headers) as response:  # fmt: skip
            body = await response.json()
        if response.status != 200 or body.get("errors"):
            raise RuntimeError(f"GraphQL failed: {response.status} {body}")
        return body["data"]

    async def sequential(self, query: str, variables: dict[str, Any], n: int) -> list[float]:
        samples = []
        async with aiohttp.ClientSession() as http:
            for _ in range(n):
                started = time.perf_counter()
                await self.query(http, query, variables)
                samples.append((time.perf_counter() - started) * 1000)
        return samples

    async def concurrent(
        self, query: str, variables: dict[str, Any], clients: int, seconds: float
    ) -> tuple[list[float], float]:
        """Latencies and queries per second with ``clients`` in flight for ``seconds``."""
        samples: list[float] = []
        connector = aiohttp.TCPConnector(limit=clients)
        async with aiohttp.ClientSession(connector=connector) as http:
            deadline = time.perf_counter() + seconds

            async def one() -> None:
                while time.perf_counter() < deadline:
                    started = time.perf_counter()
                    await self.query(http, query, variables)
                    samples.append((time.perf_counter() - started) * 1000)

            began = time.perf_counter()
            await asyncio.gather(*(one() for _ in range(clients)))
            elapsed = time.perf_counter() - began
        return samples, len(samples) / elapsed


# -- the run ---------------------------------------------------------------------------


def run(cfg: Config) -> dict[str, Any]:
    out: dict[str, Any] = {"bench": "api", "quick": cfg.quick, "size": cfg.size,
                           "clients": cfg.clients, "seconds": cfg.seconds,
                           "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                           "load_average_start": round(os.getloadavg()[0], 2)}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="mlgraph-bench-api-") as tmp:
        store_url = f"sqlite:///{Path(tmp) / 'mlgraph.db'}"
        started = time.perf_counter()
        with Store.open(store_url) as store:
            load(store, Path(tmp), cfg.size)
            out["entities"] = store.summary()["entities"]
            log(f"loaded {out['entities']} entities in {time.perf_counter() - started:.1f} s")
            start = lineage_start(store)
            token = Tokens(store.engine).create("bench", ["read"]).secret
            expected_seed = seed_from_store(store)
            assert seed_from_store_batched(store) == expected_seed
            expected_lineage = lineage_from_store(store, start)
            log("store: timing direct reads")
            out["store"] = {
                "seed": summary(time_calls(lambda: seed_from_store(store), cfg.sequential)),
                "seed_batched": summary(
                    time_calls(lambda: seed_from_store_batched(store), cfg.sequential)
                ),
                "lineage": summary(time_calls(lambda: lineage_from_store(store, start),
                                              cfg.sequential)),
            }  # fmt: skip
        proc, url = start_server(store_url)
        try:
            out["api"] = asyncio.run(api_phases(cfg, Client(url, token), start,
                                                expected_seed, expected_lineage))  # fmt: skip
        finally:
            proc.terminate()
            proc.wait(30)
    api, store_side = out["api"], out["store"]
    out["seed_query_p50_ms"] = api["concurrent"]["seed"]["p50_ms"]
    out["seed_query_p99_ms"] = api["concurrent"]["seed"]["p99_ms"]
    out["lineage_p50_ms"] = api["concurrent"]["lineage"]["p50_ms"]
    out["lineage_p99_ms"] = api["concurrent"]["lineage"]["p99_ms"]
    out["qps"] = max(s["qps"] for s in api["saturation"])
    # Against the same statements run straight on the store: what HTTP, GraphQL and the
    # loaders' threads add. Against a store client's own walk (one read per entity) too.
    out["overhead_vs_store_p50"] = round(
        api["sequential"]["seed"]["p50_ms"] / store_side["seed_batched"]["p50_ms"], 2
    )
    out["overhead_vs_store_direct_p50"] = round(
        api["sequential"]["seed"]["p50_ms"] / store_side["seed"]["p50_ms"], 2
    )
    out["lineage_overhead_vs_store_p50"] = round(
        api["sequential"]["lineage"]["p50_ms"] / store_side["lineage"]["p50_ms"], 2
    )
    out["load_average_end"] = round(os.getloadavg()[0], 2)
    return out


async def api_phases(
    cfg: Config, client: Client, start: str, seed: dict[str, Any], lineage: list[tuple[int, str]]
) -> dict[str, Any]:
    variables = {"uri": start}
    async with aiohttp.ClientSession() as http:  # the answers must be the store's
        got = await client.query(http, SEED_QUERY, {})
        assert got["model"] == seed, (got["model"], seed)
        walked = await client.query(http, LINEAGE_QUERY, variables)
        assert [(n["depth"], n["entity"]["uri"]) for n in walked["lineage"]["nodes"]] == lineage
    out: dict[str, Any] = {}
    log("api: one client, one query after another")
    out["sequential"] = {
        "seed": summary(await client.sequential(SEED_QUERY, {}, cfg.sequential)),
        "lineage": summary(await client.sequential(LINEAGE_QUERY, variables, cfg.sequential)),
    }
    log(f"api: {cfg.clients} concurrent clients, {cfg.seconds:g} s per query")
    out["concurrent"] = {}
    for name, query, v in (("seed", SEED_QUERY, {}), ("lineage", LINEAGE_QUERY, variables)):
        samples, qps = await client.concurrent(query, v, cfg.clients, cfg.seconds)
        out["concurrent"][name] = {**summary(samples), "qps": round(qps, 1)}
    out["saturation"] = []
    for clients in cfg.saturation:
        log(f"api: seed query, {clients} clients")
        samples, qps = await client.concurrent(SEED_QUERY, {}, clients, cfg.seconds)
        out["saturation"].append({"clients": clients, "qps": round(qps, 1), **summary(samples)})
    return out


def table(out: dict[str, Any]) -> str:
    api, store = out["api"], out["store"]

    def row(label: str, cell: dict[str, Any]) -> str:
        return f"{label:34}{cell['p50_ms']:>10}{cell['p99_ms']:>10}{cell.get('qps', ''):>10}"

    rows = [
        f"API benchmark: {out['entities']} entities (size {out['size']}), SQLite, "
        f"{out['machine']}, load {out['load_average_start']} -> {out['load_average_end']}",
        f"{'':34}{'p50 ms':>10}{'p99 ms':>10}{'qps':>10}",
    ]
    rows.append(row("seed: store, batch reads", store["seed_batched"]))
    for name in ("seed", "lineage"):
        rows.append(row(f"{name}: store, direct reads", store[name]))
        rows.append(row(f"{name}: API, 1 client", api["sequential"][name]))
        rows.append(row(f"{name}: API, {out['clients']} clients", api["concurrent"][name]))
    for s in api["saturation"]:
        rows.append(row(f"seed: API, {s['clients']} clients", s))
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_args(argv)
    out = run(cfg)
    print(table(out))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
