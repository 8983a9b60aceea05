"""The admin API of a source: change objects (each change emits its event), set faults, health.

Admin routes are never subject to faults, so a test or the demo can always
reach them. Admin writes do not check references: creating an object that
points at a missing one is allowed, as it is in real source systems.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from mlgraph.sources.editor import Editor
from mlgraph.sources.faults import FaultConfig, SourceFaults
from mlgraph.sources.org import Organisation
from mlgraph.sources.resources import Resource, resources_of

JsonObject = Annotated[dict[str, Any], Body()]
MAX_BATCH_UPDATES = 1000


class FieldChanges(BaseModel):
    """One object's update in a batch: its id and the fields to replace."""

    model_config = ConfigDict(extra="forbid")

    id: str
    fields: dict[str, Any]


def admin_routes(res: Resource, editor: Editor) -> APIRouter:
    router = APIRouter(prefix=f"/admin/{res.collection}", tags=["admin"])

    # The objects are already validated in their read shape: a JSONResponse spares
    # FastAPI checking and encoding them again.
    @router.post(
        "",
        status_code=201,
        summary=f"Create a {res.collection} object",
        responses={201: {"model": res.shape}},
    )
    async def create_object(body: JsonObject) -> JSONResponse:
        """The body is the object in its read shape; ``updated_at`` is set by the source."""
        return JSONResponse(await editor.create(res.collection, body), status_code=201)

    @router.put(
        "/{object_id}",
        summary=f"Replace fields of a {res.collection} object",
        responses={200: {"model": res.shape}},
    )
    async def update_object(object_id: str, body: JsonObject) -> JSONResponse:
        """Fields not in the body keep their values."""
        return JSONResponse(await editor.update(res.collection, object_id, body))

    @router.post(
        ":batchUpdate",
        summary=f"Replace fields of many {res.collection} objects",
        description=f"Each update is checked first: one that names a missing object or "
        f"breaks the shape changes nothing. At most {MAX_BATCH_UPDATES} updates.",
    )
    async def batch_update(
        body: Annotated[list[FieldChanges], Body(min_length=1, max_length=MAX_BATCH_UPDATES)],
    ) -> JSONResponse:
        updates = [(u.id, u.fields) for u in body]
        return JSONResponse({"objects": await editor.update_many(res.collection, updates)})

    @router.delete("/{object_id}", status_code=204, summary=f"Delete a {res.collection} object")
    async def delete_object(object_id: str) -> Response:
        await editor.delete(res.collection, object_id)
        return Response(status_code=204)

    return router


def control_routes(source: str, org: Organisation, faults: SourceFaults) -> APIRouter:
    router = APIRouter(prefix="/admin", tags=["admin"])

    @router.get("/health")
    async def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "source": source,
            "objects": {r.collection: org.count(r.collection) for r in resources_of(source)},
            "faults_injected": dict(faults.injected),
        }

    @router.get("/faults")
    async def get_faults() -> FaultConfig:
        return faults.config

    @router.put("/faults")
    async def set_faults(config: FaultConfig) -> FaultConfig:
        """Replace the whole fault config (``{}`` turns every fault off) and re-seed it."""
        faults.configure(config)
        return faults.config

    return router
