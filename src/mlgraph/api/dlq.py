"""The dead-letter table over HTTP: list, show, replay."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from mlgraph.errors import NotFound
from mlgraph.runtime import Service

router = APIRouter(tags=["dead letters"])

# Ids are 64-bit in the database; a larger number would fail in the driver, not as a 4xx.
LetterId = Annotated[int, Field(ge=1, le=2**63 - 1)]


class ReplayRequest(BaseModel):
    ids: Annotated[list[LetterId], Field(max_length=10_000)] | None = None  # None: all


@router.get("/v1/dlq")
async def list_dead_letters(
    request: Request, limit: int = Query(100, ge=1, le=10_000)
) -> list[dict[str, Any]]:
    """Events that could not be hydrated, oldest first, with the reason."""
    service: Service = request.app.state.service
    letters = await run_in_threadpool(service.inbox.dead_letters, limit)
    return [asdict(dl) for dl in letters]


@router.get("/v1/dlq/{letter_id}")
async def show_dead_letter(
    request: Request, letter_id: Annotated[int, Path(ge=1, le=2**63 - 1)]
) -> dict[str, Any]:
    service: Service = request.app.state.service
    letter = await run_in_threadpool(service.inbox.dead_letter, letter_id)
    if letter is None:
        raise NotFound(f"no dead letter {letter_id}")
    return asdict(letter)


@router.post("/v1/dlq/replay")
async def replay_dead_letters(request: Request, body: ReplayRequest) -> dict[str, int]:
    """Put dead letters back into the inbox (e.g. once a failing source recovers)."""
    service: Service = request.app.state.service
    replayed, stuck = await run_in_threadpool(service.intake.replay, body.ids)
    service.wake_workers()
    return {"replayed": replayed, "still_unroutable": stuck}
