"""Sinks deliver to real endpoints: an HTTP server, NATS JetStream, Redis Streams."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from mlgraph.sources import (
    CollectingSink,
    FanoutSink,
    HttpSink,
    NatsSink,
    RedisStreamSink,
    Sources,
    SourcesThread,
    generate,
)
from mlgraph.sources.events import Event
from tests.conftest import service_missing


class Receiver(ThreadingHTTPServer):
    """Records POSTed JSON bodies; answers the first ``fail_first`` posts with 503."""

    def __init__(self, fail_first: int = 0) -> None:
        self.bodies: list[Any] = []
        self.fail_first = fail_first
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1/events"


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.server.fail_first > 0:
            self.server.fail_first -= 1
            self.send_response(503)
        else:
            self.server.bodies.append(body)
            self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver(request: pytest.FixtureRequest) -> Iterator[Receiver]:
    server = Receiver(getattr(request, "param", 0))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def events(n: int, source: str = "registry") -> list[Event]:
    return [
        {
            "event_type": "model_updated",
            "model_id": f"m{i}",
            "event_id": uuid.uuid4().hex,
            "source": source,
        }
        for i in range(n)
    ]


def emit(sink: Any, batch: list[Event]) -> None:
    async def go() -> None:
        await sink.emit(batch)
        await sink.close()

    asyncio.run(go())


def test_http_sink_posts_one_event_as_an_object_and_several_as_an_array(receiver: Receiver) -> None:
    sink = HttpSink(receiver.url, batch_size=3)
    one, five = events(1), events(5)
    emit(sink, one)
    emit(sink, five)
    assert receiver.bodies == [one[0], five[:3], five[3:]]
    assert (sink.sent, sink.failed) == (6, 0)


@pytest.mark.parametrize("receiver", [2], indirect=True)
def test_http_sink_retries_a_refusing_endpoint(receiver: Receiver) -> None:
    sink = HttpSink(receiver.url, retries=3, backoff_s=0.01)
    batch = events(2)
    emit(sink, batch)
    assert receiver.bodies == [batch]
    assert sink.sent == 2


def test_http_sink_counts_what_it_could_not_deliver() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once closed
    sink = HttpSink(f"http://127.0.0.1:{port}/v1/events", retries=2, backoff_s=0.01)
    emit(sink, events(3))
    assert (sink.sent, sink.failed) == (0, 3)


def test_sources_send_their_events_to_an_http_endpoint(receiver: Receiver) -> None:
    org = generate(1)
    with SourcesThread(Sources(org, HttpSink(receiver.url))) as urls:
        httpx.put(f"{urls['registry']}/admin/models/ranking-model", json={"description": "x"})
    assert [body["event_type"] for body in receiver.bodies] == ["model_updated"]


def test_fanout_sends_to_every_sink() -> None:
    first, second = CollectingSink(), CollectingSink()
    batch = events(2)
    emit(FanoutSink(first, second), batch)
    assert first.events == second.events == batch


def reachable(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


def test_nats_sink_publishes_to_jetstream() -> None:
    if not reachable(4222):
        service_missing("NATS at 127.0.0.1:4222")
    import nats

    run = uuid.uuid4().hex[:8]
    stream, prefix = f"MLGRAPH_TEST_{run}", f"mlgraph.test{run}"
    batch = events(3, "registry") + events(2, "identity")

    async def go() -> list[tuple[str, Event]]:
        sink = NatsSink("nats://127.0.0.1:4222", stream=stream, subject_prefix=prefix)
        await sink.emit(batch)
        await sink.close()
        nc = await nats.connect("nats://127.0.0.1:4222")
        js = nc.jetstream()
        try:
            info = await js.stream_info(stream)
            got = []
            for seq in range(1, info.state.messages + 1):
                msg = await js.get_msg(stream, seq)
                assert msg.subject is not None and msg.data is not None
                got.append((msg.subject, json.loads(msg.data)))
            return got
        finally:
            await js.delete_stream(stream)
            await nc.close()

    got = asyncio.run(go())
    assert [event for _, event in got] == batch
    assert [subject for subject, _ in got] == [f"{prefix}.registry"] * 3 + [
        f"{prefix}.identity"
    ] * 2


def test_redis_sink_appends_to_a_stream() -> None:
    if not reachable(6379):
        service_missing("Redis at 127.0.0.1:6379")
    import redis.asyncio

    stream = f"mlgraph:test:{uuid.uuid4().hex[:8]}"
    batch = events(4)

    async def go() -> list[Event]:
        sink = RedisStreamSink("redis://127.0.0.1:6379/0", stream=stream)
        await sink.emit(batch)
        await sink.close()
        client = redis.asyncio.Redis.from_url("redis://127.0.0.1:6379/0")
        try:
            entries: list[tuple[bytes, dict[bytes, bytes]]] = await client.xrange(stream)  # type: ignore[assignment]
            return [json.loads(fields[b"event"]) for _, fields in entries]
        finally:
            await client.delete(stream)
            await client.aclose()

    assert asyncio.run(go()) == batch
