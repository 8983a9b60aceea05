"""Fixtures for the reference sources: a small organisation served on free ports."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from mlgraph.sources import CollectingSink, Organisation, Sources, SourcesThread, generate


@dataclass
class Running:
    """Six sources serving ``org`` from a background thread, events collected in ``sink``."""

    org: Organisation
    sources: Sources
    sink: CollectingSink
    thread: SourcesThread
    urls: dict[str, str]
    client: httpx.Client

    def get(self, source: str, path: str, **params: str | int) -> httpx.Response:
        return self.client.get(f"{self.urls[source]}{path}", params=params)

    def set_faults(self, source: str, **config: object) -> None:
        response = self.client.put(f"{self.urls[source]}/admin/faults", json=config)
        assert response.status_code == 200, response.text


def start(org: Organisation) -> Running:
    sink = CollectingSink()
    sources = Sources(org, sink)
    thread = SourcesThread(sources)
    urls = thread.start()
    return Running(org, sources, sink, thread, urls, httpx.Client(timeout=10))


@pytest.fixture
def running() -> Iterator[Running]:
    """Fresh sources over a size-1 organisation, for tests that change things."""
    served = start(generate(1))
    try:
        yield served
    finally:
        served.client.close()
        served.thread.stop()


@pytest.fixture(scope="module")
def shared() -> Iterator[Running]:
    """Sources over a size-3 organisation shared by a module's read-only tests."""
    served = start(generate(3))
    try:
        yield served
    finally:
        served.client.close()
        served.thread.stop()
