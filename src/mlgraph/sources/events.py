"""Thin events: the sources' native "this object changed" notifications (seed 000)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from mlgraph.sources.org import Organisation, isoformat
from mlgraph.sources.resources import RESOURCES, Resource

Event = dict[str, Any]
Action = Literal["created", "updated", "deleted"]


def make_event(res: Resource, object_id: str, action: Action) -> Event:
    """``{"event_type", "<id field>", "event_id", "source", "occurred_at"}``.

    ``event_id`` is random, not counted: a restarted source must never reuse an
    id that a consumer has already seen and would drop as a duplicate.
    """
    return {
        "event_type": res.event_type(action),
        res.event_id_field: object_id,
        "event_id": uuid.uuid4().hex,
        "source": res.source,
        "occurred_at": isoformat(datetime.now(UTC)),
    }


def initial_events(org: Organisation) -> list[Event]:
    """A ``*_created`` event for every object, in load order (teams, users, datasets, ...)."""
    return [
        make_event(res, object_id, "created")
        for res in RESOURCES
        for object_id in org.ids(res.collection)
    ]
