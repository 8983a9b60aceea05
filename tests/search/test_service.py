"""The indexer runs with the service's workers; nothing in the ingest path waits for it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from mlgraph.config import Settings
from mlgraph.connectors import load_connectors
from mlgraph.runtime import Service
from mlgraph.search import IndexUnavailable
from mlgraph.store import Store
from tests.builders import entity


def test_the_workers_keep_the_index_following_the_store(store: Store, tmp_path: Path) -> None:
    service = Service(
        Settings(workers=True, data_dir=tmp_path, enrich=False),
        store,
        load_connectors(store.schema),
    )

    async def scenario() -> list[str]:
        async with service.running_workers():
            # The indexer builds the first version itself, then follows the feed.
            await asyncio.to_thread(store.transact, upsert=[entity("Model", "fresh-model")])
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    hits = await asyncio.to_thread(service.search.search, "fresh model")
                    if hits.total:
                        return [h.name for h in hits.hits]
                except IndexUnavailable:  # the first version is still being built
                    pass
                await asyncio.sleep(0.05)
            raise TimeoutError("the entity never became searchable")

    assert asyncio.run(scenario()) == ["fresh-model"]
    assert service.search.status()["lag"] == 0
