"""Thin events through real buses (NATS JetStream, Redis Streams) and Kafka's test broker."""

from __future__ import annotations

import asyncio
import json
import uuid

import nats
import pytest
import redis.asyncio as aioredis
from faststream.kafka import TestKafkaBroker

from mlgraph.config import Settings
from mlgraph.connectors import load_connectors
from mlgraph.ingest.buses import KAFKA_TOPIC, REDIS_STREAM, BusHandler, kafka_broker
from mlgraph.runtime import Service
from mlgraph.store import Store
from tests.conftest import service_missing

pytestmark = pytest.mark.anyio

NATS_URL = "nats://127.0.0.1:4222"
REDIS_URL = "redis://127.0.0.1:6379"


def event() -> dict[str, str]:
    return {"event_type": "feature_updated", "feature_id": "ctr_7d", "event_id": uuid.uuid4().hex}


async def arrived(service: Service, event_id: str, timeout_s: float = 10.0) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        claims = await asyncio.to_thread(service.inbox.claim, 100)
        if any(event_id in c.event_ids for c in claims):
            return True
        await asyncio.sleep(0.05)
    return False


def make_service(
    store: Store, nats_url: str | None = None, redis_url: str | None = None
) -> Service:
    settings = Settings(workers=False, nats_url=nats_url, redis_url=redis_url)
    return Service(settings, store, load_connectors(store.schema))


async def test_nats_jetstream_durable_consumer(store: Store) -> None:
    try:
        client = await nats.connect(NATS_URL, connect_timeout=2, max_reconnect_attempts=0)
    except Exception:
        service_missing(f"NATS at {NATS_URL}")
    service = make_service(store, nats_url=NATS_URL)
    sent = event()
    async with service.running_buses():
        js = client.jetstream()
        await js.publish("mlgraph.events.featurestore", json.dumps(sent).encode())
        assert await arrived(service, sent["event_id"])
    await client.close()


async def test_redis_stream_consumer_group(store: Store) -> None:
    client = aioredis.from_url(REDIS_URL)
    try:
        await client.ping()
    except Exception:
        service_missing(f"Redis at {REDIS_URL}")
    service = make_service(store, redis_url=REDIS_URL)
    sent = event()
    async with service.running_buses():
        await client.xadd(REDIS_STREAM, {"event": json.dumps(sent)})
        assert await arrived(service, sent["event_id"])
    await client.aclose()


async def test_kafka_through_the_same_handler(store: Store) -> None:
    # No Kafka broker can run on this machine: FastStream's in-memory test broker
    # stands in for it, and the handler and inbox under it are the real ones.
    service = make_service(store)
    handler = BusHandler(service.accept, service.bury)
    broker = kafka_broker("localhost:9092", handler)
    sent = event()
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(sent, topic=KAFKA_TOPIC)
    assert await arrived(service, sent["event_id"], timeout_s=2)


async def test_a_malformed_bus_message_is_dead_lettered_not_redelivered(store: Store) -> None:
    service = make_service(store)
    handler = BusHandler(service.accept, service.bury)
    await handler(b'{"event_type": "feature_updated"}')  # no feature_id
    await handler(b"not json at all")
    letters = service.inbox.dead_letters()
    assert len(letters) == 2
    assert "must carry 'feature_id'" in letters[0].reason
    assert "expected a JSON object, got str" in letters[1].reason
