"""The generated organisation through real buses: sources publish, the service consumes."""

from __future__ import annotations

import asyncio
import contextlib

import nats
import pytest
import redis.asyncio as aioredis

from mlgraph.sources import EventSink, NatsSink, RedisStreamSink
from mlgraph.store import Store
from tests.conftest import service_missing
from tests.e2e.harness import assert_store_matches_sources, make_service, running_sources

NATS_URL = "nats://127.0.0.1:4222"
REDIS_URL = "redis://127.0.0.1:6379"


async def reachable(bus: str) -> bool:
    with contextlib.suppress(Exception):
        if bus == "nats":
            client = await nats.connect(NATS_URL, connect_timeout=2, max_reconnect_attempts=0)
            await client.close()
            return True
        redis = aioredis.from_url(REDIS_URL)
        await redis.ping()
        await redis.aclose()
        return True
    return False


@pytest.mark.parametrize("bus", ["nats", "redis"])
def test_the_organisation_through_a_bus(store: Store, bus: str) -> None:
    if not asyncio.run(reachable(bus)):
        service_missing(f"{bus} server")
    sink: EventSink = NatsSink(NATS_URL) if bus == "nats" else RedisStreamSink(REDIS_URL)
    with running_sources(sink) as (_, thread, urls):
        bus_settings = {"nats_url": NATS_URL} if bus == "nats" else {"redis_url": REDIS_URL}
        service = make_service(store, urls, **bus_settings)

        async def run() -> None:
            async with service.running_buses(), service.running_workers():
                emitted = await asyncio.to_thread(thread.emit_initial)
                await asyncio.to_thread(thread.flush)
                loop = asyncio.get_running_loop()
                deadline = loop.time() + 90
                while loop.time() < deadline:
                    stats = await asyncio.to_thread(service.inbox.stats)
                    if stats.done >= emitted and stats.pending == stats.processing == 0:
                        return
                    await asyncio.sleep(0.1)
                raise TimeoutError(f"{bus}: {stats} after emitting {emitted}")

        asyncio.run(run())
        assert_store_matches_sources(store, service.connectors)
