"""Serving the six sources: one process, one event loop, six uvicorn servers.

``Sources`` wires one organisation to six apps, their faults, their event
paths and one sink. Then, to serve them:

- ``run_sources(org, sink)`` serves on fixed ports until SIGINT/SIGTERM (a CLI);
- ``serve_sources(sources)`` is an async context manager for code already in a
  loop (the demo): it yields the base URLs once every source answers;
- ``SourcesThread(sources)`` runs that loop in a background thread, for
  synchronous code (tests, benchmarks): ``start()`` returns the URLs,
  ``stop()`` shuts everything down and joins the thread.

Ports are bound before the servers start (port 0 = a free one, chosen by the
kernel), so there is no window in which another process can take them.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import threading
from collections.abc import AsyncIterator, Coroutine, Generator, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import httpx
import uvicorn
from fastapi import FastAPI

from mlgraph.sources.apps import create_source_app
from mlgraph.sources.churn import Churn
from mlgraph.sources.editor import Editor
from mlgraph.sources.events import initial_events
from mlgraph.sources.faults import EventFaults, FaultConfig, SourceFaults
from mlgraph.sources.org import Organisation
from mlgraph.sources.resources import RESOURCES, SOURCES
from mlgraph.sources.sinks import EventSink, NullSink

DEFAULT_BASE_PORT = 9101
T = TypeVar("T")


class Sources:
    """The six sources over one organisation: apps, faults, event paths, editor, churn.

    Every event of a source passes its ``EventFaults`` stage and then the one
    shared sink. The sources own the sink: it is closed when they stop.
    """

    def __init__(
        self,
        org: Organisation,
        sink: EventSink | None = None,
        faults: FaultConfig | Mapping[str, FaultConfig] | None = None,
    ) -> None:
        self.org = org
        self.sink: EventSink = sink or NullSink()
        configs = faults if isinstance(faults, Mapping) else dict.fromkeys(SOURCES, faults)
        self.faults = {s: SourceFaults(s, configs.get(s)) for s in SOURCES}
        self.event_paths = {s: EventFaults(self.faults[s], self.sink) for s in SOURCES}
        self.editor = Editor(org, self.event_paths)
        self.apps: dict[str, FastAPI] = {
            s: create_source_app(s, org, self.editor, self.faults[s]) for s in SOURCES
        }
        self.churns: list[Churn] = []

    def attach_sink(self, sink: EventSink) -> None:
        """Send events to ``sink`` from now on (the previous one is not closed)."""
        self.sink = sink
        for path in self.event_paths.values():
            path.target = sink

    def set_faults(self, config: FaultConfig, source: str | None = None) -> None:
        """Set the faults of one source, or of all six (same as ``PUT /admin/faults``)."""
        for name in [source] if source else SOURCES:
            self.faults[name].configure(config)

    async def emit_initial(self) -> int:
        """A ``*_created`` event per object, collection by collection in load order."""
        events = initial_events(self.org)
        for res in RESOURCES:
            batch = [e for e in events if e["event_type"] == res.event_type("created")]
            if batch:
                await self.event_paths[res.source].emit(batch)
        return len(events)

    def churn(self, rate: float = 10.0, seed: int = 0) -> Churn:
        """A churn over these sources' organisation (start it with ``await churn.start()``)."""
        churn = Churn(self.editor, rate=rate, seed=seed)
        self.churns.append(churn)
        return churn

    async def flush(self) -> None:
        """Deliver every event held back for reordering."""
        for path in self.event_paths.values():
            await path.flush()

    async def close(self) -> None:
        for churn in self.churns:
            await churn.stop()
        for path in self.event_paths.values():
            await path.close()
        await self.sink.close()


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals alone: six share one loop, and the
    owner of the loop decides when they stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def quiet_server(app: FastAPI, host: str, port: int, log_level: str = "warning") -> uvicorn.Server:
    """A uvicorn server for a loop that others share: signals stay with the loop's owner."""
    config = uvicorn.Config(
        app, host=host, port=port, log_config=None, log_level=log_level, access_log=False,
        timeout_graceful_shutdown=1,
    )  # fmt: skip
    return _Server(config)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must be IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted
    # connections only then, and without it every response waits ~40 ms for
    # the client's delayed ACK (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def base_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@asynccontextmanager
async def serve_sources(
    sources: Sources,
    host: str = "127.0.0.1",
    base_port: int | None = None,
    *,
    log_level: str = "warning",
    startup_timeout_s: float = 10.0,
) -> AsyncIterator[dict[str, str]]:
    """Serve the six apps in this loop; yields their base URLs keyed by source name.

    ``base_port`` None picks free ports; otherwise the sources listen on
    ``base_port``, ``base_port + 1``, ... in ``SOURCES`` order. On exit the
    servers stop (hanging requests are cut after a second), held-back events
    are flushed and the sink is closed.
    """
    sockets: dict[str, socket.socket] = {}
    servers: dict[str, _Server] = {}
    tasks: list[asyncio.Task[None]] = []
    try:
        for i, name in enumerate(SOURCES):
            sockets[name] = _bind(host, 0 if base_port is None else base_port + i)
        for name, app in sources.apps.items():
            config = uvicorn.Config(
                app,
                log_config=None,  # leave the process's logging alone
                log_level=log_level,
                access_log=False,
                lifespan="off",
                timeout_graceful_shutdown=1,
            )
            servers[name] = _Server(config)
            tasks.append(
                asyncio.create_task(servers[name].serve(sockets=[sockets[name]]), name=name)
            )
        urls = {name: base_url(host, sock.getsockname()[1]) for name, sock in sockets.items()}
        await _wait_until_answering(urls, tasks, startup_timeout_s)
        yield urls
    finally:
        # Changes stop first, then requests, then the events still held are sent.
        for churn in sources.churns:
            await churn.stop()
        for server in servers.values():
            server.should_exit = True
        await asyncio.gather(*tasks, return_exceptions=True)
        for sock in sockets.values():
            sock.close()
        await sources.close()


async def _wait_until_answering(
    urls: Mapping[str, str], tasks: list[asyncio.Task[None]], timeout_s: float
) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    async with httpx.AsyncClient(timeout=1.0, verify=False, trust_env=False) as client:
        for name, url in urls.items():
            while True:
                failed = next((t for t in tasks if t.done()), None)
                if failed is not None:
                    raise RuntimeError(f"source {failed.get_name()} stopped while starting")
                try:
                    if (await client.get(f"{url}/admin/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if asyncio.get_running_loop().time() > deadline:
                    raise TimeoutError(f"source {name} at {url} did not answer in {timeout_s} s")
                await asyncio.sleep(0.02)


async def run_sources(
    org: Organisation,
    sink: EventSink | None = None,
    host: str = "127.0.0.1",
    base_port: int = DEFAULT_BASE_PORT,
    *,
    faults: FaultConfig | Mapping[str, FaultConfig] | None = None,
    churn_rate: float | None = None,
    churn_seed: int = 0,
    emit_initial: bool = False,
    log_level: str = "info",
) -> None:
    """Serve the six sources on consecutive ports until SIGINT or SIGTERM (or cancellation).

    With ``emit_initial`` every object's ``*_created`` event is sent first;
    with ``churn_rate`` the organisation keeps changing at that many changes
    a second.
    """
    sources = Sources(org, sink, faults)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
    try:
        async with serve_sources(sources, host, base_port, log_level=log_level):
            if emit_initial:
                await sources.emit_initial()
            if churn_rate:
                await sources.churn(churn_rate, churn_seed).start()
            await stop.wait()
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)


class SourcesThread:
    """The six sources served from a background thread with its own event loop.

    For synchronous callers::

        with SourcesThread(Sources(generate(1), CollectingSink())) as urls:
            httpx.get(f"{urls['registry']}/api/v1/models/ranking-model")

    ``call`` runs a coroutine in the sources' loop (to emit the initial events,
    start churn, flush), since the sink and churn live there.
    """

    def __init__(
        self, sources: Sources, host: str = "127.0.0.1", base_port: int | None = None
    ) -> None:
        self.sources = sources
        self.host = host
        self.base_port = base_port
        self.urls: dict[str, str] = {}
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self, timeout_s: float = 15.0) -> dict[str, str]:
        """Start serving; the base URLs by source name once all six answer."""
        if self._thread is not None:
            raise RuntimeError("already started")
        self._thread = threading.Thread(target=self._main, name="mlgraph-sources", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise TimeoutError(f"sources did not start in {timeout_s} s")
        if self._error is not None:
            self._thread.join()
            self._thread = None
            raise RuntimeError("sources failed to start") from self._error
        return self.urls

    def stop(self, timeout_s: float = 15.0) -> None:
        """Stop churn and servers, flush held-back events, close the sink, join the thread."""
        thread, loop, stop = self._thread, self._loop, self._stop
        if thread is None:
            return
        if loop is not None and stop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)
        thread.join(timeout_s)
        if thread.is_alive():
            raise TimeoutError(f"sources did not stop in {timeout_s} s")
        self._thread = None

    def call(self, coro: Coroutine[Any, Any, T], timeout_s: float = 60.0) -> T:
        """Run ``coro`` in the sources' event loop and return its result."""
        if self._loop is None:
            coro.close()
            raise RuntimeError("sources are not running")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout_s)

    def emit_initial(self) -> int:
        return self.call(self.sources.emit_initial())

    def start_churn(self, rate: float = 10.0, seed: int = 0) -> Churn:
        churn = self.sources.churn(rate, seed)
        self.call(churn.start())
        return churn

    def stop_churn(self, churn: Churn) -> None:
        self.call(churn.stop())

    def flush(self) -> None:
        self.call(self.sources.flush())

    def __enter__(self) -> dict[str, str]:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to start(), which re-raises it
            self._error = exc
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            async with serve_sources(self.sources, self.host, self.base_port) as urls:
                self.urls = urls
                self._ready.set()
                await self._stop.wait()
        finally:
            self._loop = None
