"""Where thin events go: an HTTP endpoint, a bus (NATS JetStream, Redis Streams), a list.

Every sink has one method that matters, ``async emit(events)``. Sinks never
raise on delivery failure: an event is a notification of change, and a
consumer repairs a lost one by its next event or a reconciliation sweep. They
log and count instead, so a broken consumer cannot stop the sources or churn.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import Any

import httpx
import nats
import redis.asyncio
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from mlgraph.sources.events import Event

log = logging.getLogger(__name__)


class EventSink(ABC):
    """Receives batches of thin events, in the order they should be delivered."""

    @abstractmethod
    async def emit(self, events: list[Event]) -> None: ...

    async def close(self) -> None:  # noqa: B027 - most sinks hold nothing to release
        """Release connections; the sink may not be used afterwards."""


class NullSink(EventSink):
    """Discards events: sources that only answer reads."""

    async def emit(self, events: list[Event]) -> None:
        return None


class CollectingSink(EventSink):
    """Keeps every event in memory, in delivery order; for tests.

    Readable from any thread: ``wait_for`` blocks a test thread until the
    sources' event loop has delivered enough events.
    """

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._changed = threading.Condition()

    async def emit(self, events: list[Event]) -> None:
        with self._changed:
            self.events.extend(events)
            self._changed.notify_all()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Event]:
        """Block until at least ``count`` events arrived; a copy of all of them."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.events) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(self.events)} of {count} events after {timeout} s")
                self._changed.wait(left)
            return list(self.events)

    def clear(self) -> None:
        with self._changed:
            self.events.clear()


class FanoutSink(EventSink):
    """Sends every batch to each of several sinks (an HTTP endpoint and a bus, say)."""

    def __init__(self, *sinks: EventSink) -> None:
        self.sinks = sinks

    async def emit(self, events: list[Event]) -> None:
        await asyncio.gather(*(sink.emit(events) for sink in self.sinks))

    async def close(self) -> None:
        await asyncio.gather(*(sink.close() for sink in self.sinks))


def _chunks(events: Sequence[Event], size: int) -> Iterable[Sequence[Event]]:
    return (events[i : i + size] for i in range(0, len(events), size))


class HttpSink(EventSink):
    """POSTs events as JSON to ``url``: one event as an object, several as an array.

    Connection errors, timeouts, 5xx and 429 are retried ``retries`` times with
    doubling backoff (a 429's ``Retry-After`` is honoured, up to 5 s). A batch
    still refused after that, or refused with another 4xx, is logged and
    counted in ``failed``.
    """

    def __init__(
        self,
        url: str,
        *,
        batch_size: int = 100,
        retries: int = 3,
        backoff_s: float = 0.2,
        timeout_s: float = 10.0,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.url = url
        self.batch_size = batch_size
        self.retries = retries
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self.headers = headers or {}
        self.sent = 0
        self.failed = 0
        # Created on first use, inside the loop that will use it.
        self._client: httpx.AsyncClient | None = None

    async def emit(self, events: list[Event]) -> None:
        for chunk in _chunks(events, self.batch_size):
            body: Any = chunk[0] if len(chunk) == 1 else list(chunk)
            if await self._post(body):
                self.sent += len(chunk)
            else:
                self.failed += len(chunk)

    async def _post(self, body: Any) -> bool:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout_s, headers=self.headers)
        delay = self.backoff_s
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = await self._client.post(self.url, json=body)
            except httpx.TransportError as exc:
                if last:
                    log.warning("event POST to %s failed: %r", self.url, exc)
                    return False
            else:
                if response.status_code < 300:
                    return True
                retryable = response.status_code == 429 or response.status_code >= 500
                if last or not retryable:
                    log.warning(
                        "event POST to %s refused: %s %s",
                        self.url,
                        response.status_code,
                        response.text[:200],
                    )
                    return False
                if response.status_code == 429:
                    delay = max(delay, _retry_after(response))
            await asyncio.sleep(delay)
            delay *= 2
        return False  # pragma: no cover - the loop always returns

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _retry_after(response: httpx.Response) -> float:
    try:
        return min(5.0, float(response.headers.get("retry-after", "0")))
    except ValueError:
        return 0.0


def encode(event: Event) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode()


class NatsSink(EventSink):
    """Publishes each event to JetStream subject ``{subject_prefix}.{source}``.

    The stream (``MLGRAPH_EVENTS`` over ``{subject_prefix}.>``) is created if
    it does not exist; an existing stream is left as it is. No ``Nats-Msg-Id``
    header is set, so duplicates injected by the fault layer reach the
    consumer instead of being removed by JetStream's own deduplication.
    """

    def __init__(
        self,
        servers: str | list[str] = "nats://127.0.0.1:4222",
        *,
        stream: str = "MLGRAPH_EVENTS",
        subject_prefix: str = "mlgraph.events",
        connect_timeout_s: float = 2.0,
    ) -> None:
        self.servers = servers
        self.stream = stream
        self.subject_prefix = subject_prefix
        self.connect_timeout_s = connect_timeout_s
        self.published = 0
        self._nc: NatsClient | None = None
        self._js: JetStreamContext | None = None

    def subject_for(self, event: Event) -> str:
        return f"{self.subject_prefix}.{event['source']}"

    async def connect(self) -> JetStreamContext:
        if self._js is None:
            self._nc = await nats.connect(
                self.servers, connect_timeout=self.connect_timeout_s, max_reconnect_attempts=3
            )
            js = self._nc.jetstream()
            try:
                await js.stream_info(self.stream)
            except NotFoundError:
                await js.add_stream(name=self.stream, subjects=[f"{self.subject_prefix}.>"])
            self._js = js
        return self._js

    async def emit(self, events: list[Event]) -> None:
        js = await self.connect()
        # publish_async pipelines the publishes; the acks are awaited per chunk
        # so a large initial load keeps a bounded number in flight.
        for chunk in _chunks(events, 500):
            acks = [
                await js.publish_async(self.subject_for(e), encode(e), stream=self.stream)
                for e in chunk
            ]
            await asyncio.gather(*acks)
            self.published += len(chunk)

    async def close(self) -> None:
        if self._nc is not None:
            await self._nc.close()
            self._nc = self._js = None


class RedisStreamSink(EventSink):
    """Appends each event to a Redis stream (``mlgraph:events``) as field ``event`` = JSON.

    ``maxlen`` trims the stream approximately; by default nothing is trimmed,
    so a consumer that falls behind loses nothing.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        stream: str = "mlgraph:events",
        maxlen: int | None = None,
    ) -> None:
        self.url = url
        self.stream = stream
        self.maxlen = maxlen
        self.published = 0
        self._client: redis.asyncio.Redis | None = None

    async def connect(self) -> redis.asyncio.Redis:
        if self._client is None:
            client = redis.asyncio.Redis.from_url(self.url)
            await client.ping()
            self._client = client
        return self._client

    async def emit(self, events: list[Event]) -> None:
        client = await self.connect()
        for chunk in _chunks(events, 500):
            async with client.pipeline(transaction=False) as pipe:
                for event in chunk:
                    pipe.xadd(
                        self.stream,
                        {"event": encode(event)},
                        maxlen=self.maxlen,
                        approximate=self.maxlen is not None,
                    )
                await pipe.execute()
            self.published += len(chunk)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
