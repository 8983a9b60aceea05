"""kill -9 of the service mid-stream loses no accepted event."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import sqlalchemy as sa

from mlgraph.connectors import Subject, load_connectors
from mlgraph.ingest.tables import inbox
from mlgraph.sources import FaultConfig, initial_events
from mlgraph.store import Store
from tests.e2e.harness import running_sources


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(store_url: str, urls: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "MLGRAPH_STORE_URL": store_url, "MLGRAPH_SOURCES": json.dumps(urls)}
    env.pop("MLGRAPH_CONFIG", None)
    return subprocess.Popen(
        [sys.executable, "-m", "mlgraph.cli", "serve", "--port", str(port)],
        env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
    )  # fmt: skip


def wait_until_up(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 90  # generous: CI machines are shared and slow to import
    while time.monotonic() < deadline:
        assert process.poll() is None, "mlgraph serve exited"
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise TimeoutError("mlgraph serve did not start")


def test_kill_9_mid_stream_loses_no_accepted_event(tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    log = tmp_path / "serve.log"
    # Slow reads keep hydration behind intake, so the kill finds work in flight.
    with running_sources(faults=FaultConfig(latency_ms=30)) as (sources, _, urls):
        events = initial_events(sources.org)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = serve(store_url, urls, port, log)
        accepted: list[dict[str, object]] = []
        try:
            wait_until_up(base, server)
            with httpx.Client(timeout=10) as client:
                for start in range(0, len(events), 10):
                    batch = events[start : start + 10]
                    if client.post(f"{base}/v1/events", json=batch).status_code == 202:
                        accepted += batch
            server.send_signal(signal.SIGKILL)
            server.wait(timeout=10)
        finally:
            if server.poll() is None:
                server.kill()
        engine = sa.create_engine(store_url)
        with engine.connect() as conn:
            unfinished = conn.execute(
                sa.select(sa.func.count()).where(inbox.c.status.in_(["pending", "processing"]))
            ).scalar_one()
        engine.dispose()
        assert unfinished > 0, "the kill should have found events not yet hydrated"

        server = serve(store_url, urls, port, log)
        try:
            wait_until_up(base, server)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                queue = httpx.get(f"{base}/v1/summary", timeout=5).json()["inbox"]
                if queue["pending"] == 0 and queue["processing"] == 0:
                    break
                time.sleep(0.2)
            assert queue == {"pending": 0, "processing": 0, "dead_letters": 0}, queue
        finally:
            server.terminate()
            server.wait(timeout=20)

    with Store.open(store_url) as store:
        connectors = load_connectors(store.schema, urls)
        for event in accepted:
            route = connectors.route(str(event["event_type"]))
            assert route is not None
            connector, resource, rule = route
            subject = Subject(connector.name, resource.name, str(event[rule.id_field]))
            entity = store.get(connector.subject_uri(subject))
            assert entity is not None and entity.state == "hydrated", subject.key
