"""The FastAPI application: health and a summary of the store, for now."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from mlgraph import __version__
from mlgraph.errors import LimitExceeded, NotFound, ValidationError
from mlgraph.store import Store


def create_app(store: Store) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        store.close()

    app = FastAPI(title="mlgraph", version=__version__, lifespan=lifespan)
    app.state.store = store

    @app.exception_handler(NotFound)
    async def _not_found(_request: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=404)

    @app.exception_handler(ValidationError)
    @app.exception_handler(LimitExceeded)
    async def _bad_request(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=422)

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

    @app.get("/v1/summary", tags=["store"])
    async def summary() -> dict[str, Any]:
        """Entities by type and state, edges, the last transaction and feed cursors."""
        return await run_in_threadpool(store.summary)

    return app
