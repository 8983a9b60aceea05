"""Event intake over HTTP: ``POST /v1/events``."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from mlgraph.runtime import Service

router = APIRouter(tags=["intake"])


@router.post(
    "/v1/events",
    status_code=202,
    responses={
        400: {"description": "The body is not JSON."},
        422: {"description": "Malformed events; each problem is listed with its position."},
    },
)
async def post_events(request: Request) -> JSONResponse:
    """Accept one thin event or a batch (a JSON array).

    Each event is a CloudEvent 1.0 in structured JSON (`specversion`, `id`,
    `source`, `type`, `data` with the changed object's id) or a source's native
    thin event (`{"event_type": "model_instance_created", "instance_id": "…"}`).
    The answer comes only once every event is durably in the inbox. Unknown
    event types are accepted into the dead-letter table with the reason.
    """
    service: Service = request.app.state.service
    body: Any = json.loads(await request.body())
    if _unstorable(body):
        # PostgreSQL cannot store U+0000 or a lone surrogate in text or JSON (and JSON
        # parsers accept both): refuse them here, with a reason.
        return JSONResponse(
            {"error": "malformed events: text may not contain the NUL character (\\u0000) "
                      "or an unpaired surrogate (\\ud800-\\udfff)"},
            status_code=422,
        )  # fmt: skip
    accepted = await run_in_threadpool(service.accept, body)
    service.wake_workers()
    return JSONResponse(
        {"accepted": accepted.accepted, "duplicates": accepted.duplicates,
         "dead_lettered": accepted.dead_lettered},
        status_code=202,
    )  # fmt: skip


def _unstorable(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value or (not value.isascii() and _has_surrogate(value))
    if isinstance(value, dict):
        return any(_unstorable(k) or _unstorable(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_unstorable(v) for v in value)
    return False


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")  # a lone surrogate is the one thing UTF-8 cannot encode
    except UnicodeEncodeError:
        return True
    return False
