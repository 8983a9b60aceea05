"""Starting and stopping the six sources, and the initial load."""

from __future__ import annotations

import asyncio
import socket
import threading

import httpx
import pytest

from mlgraph.sources import (
    RESOURCES,
    SOURCES,
    CollectingSink,
    FaultConfig,
    Sources,
    SourcesThread,
    generate,
    run_sources,
)
from tests.sources.conftest import Running


def free_port_block(count: int) -> int:
    """A port p with p .. p+count-1 all free right now."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base: int = probe.getsockname()[1]
        if base + count > 65535:
            continue
        socks = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                socks.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError("no block of free ports")


def test_stop_is_clean_and_leaves_no_threads() -> None:
    before = set(threading.enumerate())
    thread = SourcesThread(Sources(generate(1)))
    urls = thread.start()
    assert sorted(urls) == sorted(SOURCES)
    assert len(set(urls.values())) == 6
    thread.stop()
    assert set(threading.enumerate()) <= before, "every thread it started has ended"
    for url in urls.values():
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/admin/health")


def test_sources_listen_on_consecutive_ports_from_a_base() -> None:
    base = free_port_block(6)
    with SourcesThread(Sources(generate(1)), base_port=base) as urls:
        assert urls == {name: f"http://127.0.0.1:{base + i}" for i, name in enumerate(SOURCES)}
        assert httpx.get(f"{urls['identity']}/api/v1/users/alice").status_code == 200


def test_a_taken_port_fails_start_with_the_reason() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        thread = SourcesThread(Sources(generate(1)), base_port=port)
        with pytest.raises(RuntimeError, match="failed to start") as info:
            thread.start()
        assert isinstance(info.value.__cause__, OSError)


def test_initial_events_announce_every_object_in_load_order(running: Running) -> None:
    count = running.thread.emit_initial()
    events = running.sink.events
    assert count == len(events) == running.org.total()
    collections: list[str] = []
    for event in events:
        res = next(r for r in RESOURCES if event["event_type"] == r.event_type("created"))
        if not collections or collections[-1] != res.collection:
            collections.append(res.collection)
        assert event["source"] == res.source
    assert collections == [r.collection for r in RESOURCES]
    assert collections[:3] == ["teams", "users", "datasets"]


def test_initial_events_pass_the_event_faults() -> None:
    sink = CollectingSink()
    org = generate(1)
    thread = SourcesThread(Sources(org, sink, FaultConfig(drop_rate=1.0)))
    with thread:
        assert thread.emit_initial() == org.total()
    assert sink.events == []


def test_run_sources_serves_until_cancelled() -> None:
    base = free_port_block(6)
    sink = CollectingSink()

    async def go() -> tuple[int, int]:
        task = asyncio.create_task(
            run_sources(generate(1), sink, base_port=base, emit_initial=True, log_level="warning")
        )
        async with httpx.AsyncClient() as client:
            for _ in range(200):
                try:
                    response = await client.get(
                        f"http://127.0.0.1:{base}/api/v1/models/ranking-model"
                    )
                    break
                except httpx.ConnectError:
                    await asyncio.sleep(0.02)
            for _ in range(250):  # the initial events follow once the sources answer
                if sink.events:
                    break
                await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return response.status_code, len(sink.events)

    status, emitted = asyncio.run(go())
    assert status == 200
    assert emitted > 0
