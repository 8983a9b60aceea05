"""Running the reference sources next to a service, and comparing the store with them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from mlgraph.catalog.validation import validate_entity
from mlgraph.config import Settings
from mlgraph.connectors import Connectors, load_connectors
from mlgraph.runtime import Service
from mlgraph.sources import EventSink, FaultConfig, Sources, SourcesThread, generate
from mlgraph.store import Store


@contextmanager
def running_sources(
    sink: EventSink | None = None, faults: FaultConfig | None = None, size: int = 1
) -> Iterator[tuple[Sources, SourcesThread, dict[str, str]]]:
    """The six reference sources over a generated organisation, on free ports."""
    sources = Sources(generate(size), sink, faults)
    thread = SourcesThread(sources)
    urls = thread.start()
    try:
        yield sources, thread, urls
    finally:
        thread.stop()


def make_service(store: Store, urls: dict[str, str], **settings: Any) -> Service:
    """A service over ``store`` whose connectors call the sources at ``urls``."""
    config = Settings(workers=False, sources=urls, **settings)
    return Service(config, store, load_connectors(store.schema, urls))


def drain(service: Service, timeout_s: float = 60.0) -> None:
    async def go() -> None:
        async with service.fetching() as fetcher:
            await service.make_worker(fetcher).drain(timeout_s)

    asyncio.run(go())


def expected_state(connectors: Connectors, schema: Any) -> dict[str, Any]:
    """Every entity the sources describe now, normalized: what the store must hold."""
    expected: dict[str, Any] = {}
    with httpx.Client(timeout=10) as http:
        for connector in connectors:
            for resource in connector.resources.values():
                assert resource.list is not None
                token = None
                while True:
                    params = {"limit": "500"} | ({"page_token": token} if token else {})
                    page = http.get(connector.base_url + resource.list, params=params).json()
                    for item in page["items"]:
                        body = http.get(resource.url(connector.base_url, item["id"])).json()
                        for entity in connector.normalize(resource, body):
                            valid = validate_entity(schema, entity)
                            refs = {k: v for k, v in valid.references.items() if v}
                            expected[valid.uri] = valid.model_copy(update={"references": refs})
                    token = page["next_page_token"]
                    if not token:
                        break
    return expected


def assert_store_matches_sources(store: Store, connectors: Connectors) -> None:
    """Every entity the sources have is stored as they describe it; nothing else is hydrated."""
    expected = expected_state(connectors, store.schema)
    for uri, entity in expected.items():
        assert store.get(uri) == entity, uri
    hydrated = {
        item.uri
        for connector in connectors
        for item in store.listing(f"{store.schema.scheme}://")
        if item.state == "hydrated"
    }
    assert hydrated == set(expected), sorted(hydrated ^ set(expected))[:10]


def settle(service: Service, timeout_s: float = 60.0) -> None:
    """Hydrate and enrich until neither has anything left: stubs hydrated, inferences made."""
    asyncio.run(service.enrich(timeout_s=timeout_s))
