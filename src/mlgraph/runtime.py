"""Turning settings into the running parts: store, connectors, inbox, workers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from faststream.kafka import KafkaBroker
from faststream.nats import NatsBroker
from faststream.redis import RedisBroker

from mlgraph.catalog.schema import Schema, load_schema
from mlgraph.config import Settings
from mlgraph.connectors import Connectors, load_connectors
from mlgraph.enrich.enricher import Enricher, EnrichStats
from mlgraph.ingest.buses import BusHandler, kafka_broker, nats_broker, redis_broker
from mlgraph.ingest.fetcher import Fetcher, FetchPolicy, client_session
from mlgraph.ingest.hydrator import Hydrator, RetryPolicy
from mlgraph.ingest.inbox import Accepted, Inbox, Rejected
from mlgraph.ingest.intake import Intake
from mlgraph.ingest.reconcile import Reconciler, ReconcileReport
from mlgraph.ingest.stub_requests import stub_entries
from mlgraph.ingest.worker import Worker, WorkerPolicy
from mlgraph.reverse import ReverseFollower
from mlgraph.reverse.recompile import cut_over_hook, recompile_if_stale
from mlgraph.search import Discovery
from mlgraph.store import Store

log = logging.getLogger("mlgraph")
Broker = NatsBroker | RedisBroker | KafkaBroker


def open_schema(settings: Settings) -> Schema:
    return load_schema(settings.schema_file, scheme=settings.uri_scheme)


def open_store(settings: Settings) -> Store:
    return Store.open(
        settings.resolved_store_url,
        open_schema(settings),
        graph_cache="background" if settings.traversal_cache else "off",
    )


class Service:
    """The store and everything that feeds it, as one process runs them."""

    def __init__(self, settings: Settings, store: Store, connectors: Connectors) -> None:
        self.settings = settings
        self.store = store
        self.connectors = connectors
        self.inbox = Inbox(store.engine)
        self.intake = Intake(self.inbox, connectors)
        self.worker: Worker | None = None
        self.enricher: Enricher | None = None
        self.reverse: ReverseFollower | None = None  # saved searches, while workers run
        self._search: Discovery | None = None

    @classmethod
    def open(cls, settings: Settings) -> Service:
        store = open_store(settings)
        connectors = load_connectors(store.schema, settings.sources, settings.connectors_dir)
        # Saved searches compiled against another mapping are compiled again
        # before anything matches with them (docs/reverse.md#index-versions).
        recompile_if_stale(store)
        return cls(settings, store, connectors)

    @property
    def search(self) -> Discovery:
        """The discovery index in the data directory (opened on first use)."""
        if self._search is None:
            self._search = Discovery(self.settings.data_dir / "search", self.store)
            self._search.versions.before_cut_over = cut_over_hook(self.store)
        return self._search

    def close(self) -> None:
        self.store.close()

    def accept(self, body: Any) -> Accepted:
        """Durably accept events (blocking: call it from a thread in async code)."""
        return self.intake.accept(body)

    def wake_workers(self) -> None:
        """Tell the worker new events wait (call from the event loop's thread)."""
        if self.worker is not None:
            self.worker.wake.set()

    def fetch_policy(self) -> FetchPolicy:
        s = self.settings
        return FetchPolicy(
            concurrency=s.source_concurrency, rate_per_s=s.source_rate_per_s,
            timeout_s=s.source_timeout_s,
        )  # fmt: skip

    @asynccontextmanager
    async def fetching(self) -> AsyncIterator[Fetcher]:
        policy = self.fetch_policy()
        async with client_session(policy) as http:
            yield Fetcher(http, policy)

    def request_hydration(self, stubs: Sequence[tuple[str, str]]) -> dict[str, str]:
        """Enqueue hydrations of stubs ((uri, type) pairs); why the others cannot be."""
        entries, unroutable = stub_entries(self.connectors, stubs, uuid.uuid4().hex[:12])
        if entries:
            self.inbox.accept(entries)
        return unroutable

    def make_enricher(self) -> Enricher:
        return Enricher(self.store, self.request_hydration, infer=self.settings.infer)

    async def enrich(self, *, hydrate: bool = True, timeout_s: float = 600.0) -> EnrichStats:
        """Follow the feed to its end; with ``hydrate``, also hydrate the stubs it asks
        for, and enrich what that brings, until nothing is left to do."""
        enricher = self.make_enricher()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        async with self.fetching() as fetcher:
            worker = self.make_worker(fetcher)
            while loop.time() < deadline:
                await asyncio.to_thread(enricher.catch_up)
                if not hydrate or await asyncio.to_thread(lambda: self.inbox.stats().pending == 0):
                    return enricher.stats
                await worker.drain(max(0.0, deadline - loop.time()))
        raise TimeoutError(f"enrichment did not settle within {timeout_s:g} s")

    def bury(self, rejected: list[Rejected]) -> None:
        self.inbox.accept([], rejected)

    def brokers(self) -> list[Broker]:
        """A FastStream broker for every bus the settings name, all with one handler."""
        handler = BusHandler(self.accept, self.bury, self.wake_workers)
        s = self.settings
        found: list[Broker] = []
        if s.nats_url:
            found.append(nats_broker(s.nats_url, handler))
        if s.redis_url:
            found.append(redis_broker(s.redis_url, handler))
        if s.kafka_bootstrap:
            found.append(kafka_broker(s.kafka_bootstrap, handler))
        return found

    @asynccontextmanager
    async def running_buses(self) -> AsyncIterator[list[Broker]]:
        """Consume every configured bus until the block ends."""
        brokers = self.brokers()
        started: list[Broker] = []
        try:
            for broker in brokers:
                await broker.start()
                started.append(broker)
            yield brokers
        finally:
            for broker in reversed(started):
                await broker.stop()

    def make_worker(self, fetcher: Fetcher) -> Worker:
        policy = WorkerPolicy(retry=RetryPolicy(max_attempts=self.settings.max_attempts))
        return Worker(self.inbox, Hydrator(self.store, self.connectors, fetcher), policy)

    @property
    def follows_feed(self) -> bool:
        """Whether any follower of the change feed is switched on."""
        return self.settings.enrich or self.settings.search or self.settings.reverse

    @asynccontextmanager
    async def running_followers(self) -> AsyncIterator[None]:
        """The change feed's followers (enricher, search indexer, reverse follower) in this
        event loop, for the block: each switched on in the settings."""
        stop = asyncio.Event()
        tasks = []
        if self.settings.enrich:
            self.enricher = self.make_enricher()
            tasks.append(asyncio.create_task(self.enricher.run(stop)))
        if self.settings.search:
            tasks.append(asyncio.create_task(self.search.indexer().run(stop)))
        if self.settings.reverse:
            self.reverse = ReverseFollower(self.store)
            tasks.append(asyncio.create_task(self.reverse.run(stop)))
        try:
            yield
        finally:
            stop.set()
            await asyncio.gather(*tasks)
            self.enricher = None
            self.reverse = None

    @asynccontextmanager
    async def running_workers(self, *, followers: bool = True) -> AsyncIterator[Worker]:
        """Hydration workers (and scheduled reconciliation) in this event loop, for the
        block; with ``followers``, the feed's followers too (else another process runs them)."""
        async with AsyncExitStack() as stack:
            fetcher = await stack.enter_async_context(self.fetching())
            if followers:
                await stack.enter_async_context(self.running_followers())
            worker = self.make_worker(fetcher)
            stop = asyncio.Event()
            tasks = [asyncio.create_task(worker.run(stop))]
            if self.settings.reconcile_every_s:
                tasks.append(asyncio.create_task(self._reconcile_every(fetcher, stop)))
            self.worker = worker
            try:
                yield worker
            finally:
                stop.set()
                await asyncio.gather(*tasks)
                self.worker = None

    async def _reconcile_every(self, fetcher: Fetcher, stop: asyncio.Event) -> None:
        reconciler = Reconciler(self.store, self.inbox, self.connectors, fetcher)
        period = float(self.settings.reconcile_every_s or 0)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=period)
            if stop.is_set():
                return
            try:
                report = await reconciler.run()
                log.info("reconciliation enqueued %d subjects", report.enqueued)
                self.wake_workers()
            except Exception:  # a failing source must not stop the schedule
                log.exception("scheduled reconciliation failed")

    async def reconcile(
        self, source: str | None = None, *, hydrate: bool = True, timeout_s: float = 600.0
    ) -> ReconcileReport:
        """Sweep sources now; with ``hydrate``, also work the inbox until it is empty."""
        async with self.fetching() as fetcher:
            report = await Reconciler(self.store, self.inbox, self.connectors, fetcher).run(source)
            if hydrate:
                await self.make_worker(fetcher).drain(timeout_s)
        return report
