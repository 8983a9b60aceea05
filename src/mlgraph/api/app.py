"""The FastAPI application."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from mlgraph import __version__
from mlgraph.api import auth, notify
from mlgraph.api.dlq import router as dlq_router
from mlgraph.api.events import router as events_router
from mlgraph.api.graphql import graphql_router
from mlgraph.api.limits import Limits
from mlgraph.api.metrics import Metrics, MetricsMiddleware
from mlgraph.api.metrics import router as metrics_router
from mlgraph.api.rest import router as rest_router
from mlgraph.api.saved import router as saved_router
from mlgraph.api.search import router as search_router
from mlgraph.api.tokens import Scope, Tokens
from mlgraph.errors import LimitExceeded, NotFound, ValidationError
from mlgraph.ingest.envelope import MalformedEvents
from mlgraph.runtime import Service
from mlgraph.supervisor import FollowerProcess


def create_app(
    service: Service,
    *,
    workers: bool | None = None,
    followers: bool = True,
    follower_process: FollowerProcess | None = None,
) -> FastAPI:
    """The API over ``service``.

    Hydration workers run inside it unless ``workers`` is False, and with them
    the feed's followers, unless ``followers`` is False: then another process
    runs them, ``follower_process`` if given, started and stopped with the app.
    """
    run_workers = service.settings.workers if workers is None else workers

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            # Lineage walks an in-memory graph; building it at 1M entities takes about a
            # minute, so it starts now, beside the server (SQL answers until it is there).
            service.store.warm_traversals()
            if follower_process is not None:
                follower_process.start()
                stack.push_async_callback(asyncio.to_thread, follower_process.stop)
            if run_workers:
                await stack.enter_async_context(service.running_workers(followers=followers))
            await stack.enter_async_context(service.running_buses())
            # Streams wait on its bell; it dispatches webhooks where the workers run.
            await stack.enter_async_context(app.state.notifier.running(dispatch=run_workers))
            yield
        service.close()

    app = FastAPI(title="mlgraph", version=__version__, lifespan=lifespan)
    app.state.service = service
    store = service.store
    settings = service.settings
    auth.install(
        app, auth.Authenticator(Tokens(store.engine), settings.auth,
                                anonymous_read=settings.anonymous_read)
    )  # fmt: skip
    app.state.metrics = Metrics(service)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    read, write, admin = (Depends(auth.require(s)) for s in (Scope.READ, Scope.WRITE, Scope.ADMIN))

    @app.exception_handler(NotFound)
    async def _not_found(_request: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=404)

    @app.exception_handler(ValidationError)
    @app.exception_handler(LimitExceeded)
    async def _bad_request(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=422)

    @app.exception_handler(MalformedEvents)
    async def _malformed(_request: Request, exc: MalformedEvents) -> JSONResponse:
        return JSONResponse(
            {"error": "malformed events: nothing was accepted", "problems": exc.problems},
            status_code=422,
        )

    @app.exception_handler(json.JSONDecodeError)
    async def _not_json(_request: Request, exc: json.JSONDecodeError) -> JSONResponse:
        return JSONResponse(
            {"error": f"the request body is not JSON: {exc.msg} at line {exc.lineno} "
                      f"column {exc.colno}"},
            status_code=400,
        )  # fmt: skip

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok", "version": __version__}

    @app.get("/readyz", tags=["operations"])
    async def readyz() -> JSONResponse:
        """The store answers."""
        try:
            last = await run_in_threadpool(store.last_tx)
        except Exception as exc:  # any failure to reach the store means not ready
            return JSONResponse({"status": "unavailable", "error": str(exc)}, status_code=503)
        return JSONResponse({"status": "ready", "last_tx": last})

    @app.get("/v1/summary", tags=["store"], dependencies=[read])
    async def summary() -> dict[str, Any]:
        """Entities by type and state, edges, the last transaction, feed cursors, the inbox."""
        data = await run_in_threadpool(store.summary)
        stats = await run_in_threadpool(service.inbox.stats)
        data["inbox"] = {"pending": stats.pending, "processing": stats.processing,
                         "dead_letters": stats.dead_letters}  # fmt: skip
        return data

    app.include_router(events_router, dependencies=[write])
    app.include_router(dlq_router, dependencies=[admin])
    app.include_router(search_router, dependencies=[read])
    app.include_router(rest_router)
    app.include_router(saved_router)  # its routes check scopes and ownership themselves
    notify.install(app, service)  # SSE and webhooks; they check scopes and ownership too
    app.include_router(graphql_router(service, Limits.from_settings(settings)))
    app.include_router(metrics_router)
    return app
