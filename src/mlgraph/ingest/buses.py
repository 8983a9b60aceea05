"""Event buses through FastStream: NATS JetStream, Redis Streams, Kafka — one handler.

Every bus delivers to the same function, which puts the events in the inbox
before it returns; the message is acknowledged only then (``NACK_ON_ERROR``:
if the store cannot take it, the bus redelivers). A message that is not a
well-formed event cannot be answered with a 4xx, so it goes to the
dead-letter table with the reason and is acknowledged.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from faststream.kafka import KafkaBroker
from faststream.middlewares.acknowledgement.config import AckPolicy
from faststream.nats import JStream, NatsBroker, PullSub
from faststream.redis import RedisBroker, StreamSub

from mlgraph.ingest.envelope import MalformedEvents
from mlgraph.ingest.inbox import Accepted, Rejected

NATS_STREAM = "MLGRAPH_EVENTS"
NATS_SUBJECTS = "mlgraph.events.>"
REDIS_STREAM = "mlgraph:events"
KAFKA_TOPIC = "mlgraph-events"
GROUP = "mlgraph"  # durable consumer / consumer group name

Accept = Callable[[Any], Accepted]  # blocking: Service.accept
Bury = Callable[[list[Rejected]], None]


@dataclass(frozen=True)
class BusHandler:
    """The one handler every bus calls."""

    accept: Accept
    bury: Bury
    on_accepted: Callable[[], None] = lambda: None

    async def __call__(self, body: Any) -> None:
        body = _decode(body)
        try:
            await asyncio.to_thread(self.accept, body)
        except MalformedEvents as exc:
            raw = body if isinstance(body, dict) else {"body": body}
            await asyncio.to_thread(self.bury, [Rejected(
                str(raw.get("id") or raw.get("event_id") or uuid.uuid4()),
                None, None, raw, f"malformed event from a bus: {exc}",
            )])  # fmt: skip
            return
        self.on_accepted()


def _decode(body: Any) -> Any:
    # Publishers differ: some send JSON objects, some bytes or a Redis field map.
    if isinstance(body, bytes | bytearray):
        body = body.decode("utf-8", errors="replace")
    if isinstance(body, str):
        try:
            return json.loads(body)
        except json.JSONDecodeError:
            return body
    if isinstance(body, dict) and set(body) == {"event"}:
        return _decode(body["event"])
    return body


def nats_broker(url: str, handler: BusHandler) -> NatsBroker:
    """A durable JetStream pull consumer on ``mlgraph.events.>`` (stream MLGRAPH_EVENTS)."""
    broker = NatsBroker(url)
    broker.subscriber(
        NATS_SUBJECTS,
        stream=JStream(NATS_STREAM, subjects=[NATS_SUBJECTS]),
        durable=GROUP,
        pull_sub=PullSub(batch_size=100, timeout=1.0),  # a pull consumer scales across processes
        ack_policy=AckPolicy.NACK_ON_ERROR,
    )(_bound(handler))
    return broker


def redis_broker(url: str, handler: BusHandler, consumer: str = "mlgraph-1") -> RedisBroker:
    """A consumer group on the Redis stream ``mlgraph:events``."""
    broker = RedisBroker(url)
    broker.subscriber(
        stream=StreamSub(REDIS_STREAM, group=GROUP, consumer=consumer),
        ack_policy=AckPolicy.NACK_ON_ERROR,
    )(_bound(handler))
    return broker


def kafka_broker(bootstrap: str, handler: BusHandler) -> KafkaBroker:
    """A consumer group on the Kafka topic ``mlgraph-events``."""
    broker = KafkaBroker(bootstrap)
    broker.subscriber(
        KAFKA_TOPIC, group_id=GROUP, auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
    )(_bound(handler))  # fmt: skip
    return broker


def _bound(handler: BusHandler) -> Callable[[Any], Awaitable[None]]:
    # FastStream inspects the signature to decode the body; give it a plain one.
    async def handle(body: Any) -> None:
        await handler(body)

    return handle
