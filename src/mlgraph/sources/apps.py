"""The six source apps, each derived from its rows of the resource table.

Per resource: ``GET /api/v1/{collection}/{id}``, ``GET
/api/v1/{collection}:batchGet?ids=…`` and the paged ``GET /api/v1/{collection}``
(docs/sources.md), plus the admin routes from
``admin.py``. Request faults wrap ``/api/v1`` only.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse

from mlgraph import __version__
from mlgraph.sources.admin import admin_routes, control_routes
from mlgraph.sources.editor import Editor, InvalidObject, ObjectExists, ObjectNotFound
from mlgraph.sources.faults import FaultMiddleware, SourceFaults
from mlgraph.sources.org import InvalidPageToken, Organisation
from mlgraph.sources.resources import Resource, resources_of

DEFAULT_PAGE_SIZE = 500
MAX_PAGE_SIZE = 5000
MAX_BATCH_IDS = 500

TITLES = {
    "registry": "Model Registry",
    "orchestrator": "Pipeline Orchestrator",
    "featurestore": "Feature Store",
    "experimentation": "Experimentation Platform",
    "datasets": "Datasets",
    "identity": "Identity",
}


def read_routes(res: Resource, org: Organisation) -> APIRouter:
    router = APIRouter(prefix=f"/api/v1/{res.collection}", tags=[res.collection])

    # AIP-231's custom method: no slash, so it never competes with /{object_id}.
    @router.get(
        ":batchGet",
        summary=f"Many {res.collection} objects in one request",
        description=(
            f"Every object named by `ids` that exists, in the order asked. An id left "
            f"out of `items` is one the source does not have. At most {MAX_BATCH_IDS} ids."
        ),
    )
    async def batch_get(
        ids: Annotated[list[str], Query(min_length=1, max_length=MAX_BATCH_IDS)],
    ) -> JSONResponse:
        return JSONResponse({"items": org.get_many(res.collection, ids)})

    @router.get(
        "/{object_id}",
        summary=f"One {res.collection} object",
        responses={200: {"model": res.shape}, 404: {"description": "No such object"}},
    )
    async def get_object(object_id: str) -> JSONResponse:
        found = org.get(res.collection, object_id)
        if found is None:
            raise HTTPException(404, f"{res.collection} {object_id!r} not found")
        return JSONResponse(found)

    @router.get("", summary=f"Ids and update times of every {res.collection} object, paged")
    async def list_objects(
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
        page_token: str | None = None,
    ) -> JSONResponse:
        try:
            items, next_token = org.page(res.collection, limit, page_token)
        except InvalidPageToken as exc:
            raise HTTPException(400, str(exc)) from None
        return JSONResponse({"items": items, "next_page_token": next_token})

    return router


def create_source_app(
    source: str, org: Organisation, editor: Editor, faults: SourceFaults
) -> FastAPI:
    """The HTTP app of one source over ``org``; its changes go through ``editor``."""
    app = FastAPI(
        title=f"mlgraph reference source: {TITLES[source]} ({source})", version=__version__
    )
    app.add_middleware(FaultMiddleware, faults=faults)
    for res in resources_of(source):
        app.include_router(read_routes(res, org))
        app.include_router(admin_routes(res, editor))
    app.include_router(control_routes(source, org, faults))

    @app.exception_handler(ObjectNotFound)
    async def _not_found(_request: Request, exc: ObjectNotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(ObjectExists)
    async def _exists(_request: Request, exc: ObjectExists) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(InvalidObject)
    async def _invalid(_request: Request, exc: InvalidObject) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    return app
