"""Prometheus metrics at ``/metrics``: requests by route and status, latency, the inbox.

Each app has its own registry (tests make many apps in one process). Routes
are labelled by their template (``/v1/entities/{uri:path}``), never by the
path asked for, so the number of series stays bounded.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mlgraph.runtime import Service

router = APIRouter(tags=["operations"])
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _StoreCollector(Collector):
    """Read at scrape time: the inbox and the last transaction."""

    def __init__(self, service: Service) -> None:
        self.service = service

    def collect(self) -> Iterator[GaugeMetricFamily]:
        stats = self.service.inbox.stats()
        inbox = GaugeMetricFamily("mlgraph_inbox_events", "Events in the inbox", labels=["status"])
        inbox.add_metric(["pending"], stats.pending)
        inbox.add_metric(["processing"], stats.processing)
        yield inbox
        yield GaugeMetricFamily(
            "mlgraph_dead_letters", "Events that could not be hydrated", value=stats.dead_letters
        )
        yield GaugeMetricFamily(
            "mlgraph_last_tx", "The last committed transaction", value=self.service.store.last_tx()
        )


class Metrics:
    def __init__(self, service: Service) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "mlgraph_http_requests",
            "HTTP requests answered, by route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "mlgraph_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_StoreCollector(service))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Counts and times every HTTP request (a plain ASGI middleware: no body buffering)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app fails before answering

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = str(scope.get("method", ""))
            self.metrics.requests.labels(method, template, str(status)).inc()
            self.metrics.latency.labels(method, template).observe(time.perf_counter() - started)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Metrics."}},
)
async def metrics(request: Request) -> Response:
    """Prometheus metrics (text exposition format)."""
    registry: Metrics = request.app.state.metrics
    body = await run_in_threadpool(registry.exposition)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
