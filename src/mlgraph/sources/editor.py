"""The one way the organisation changes: validate, apply, stamp ``updated_at``, emit the event.

The admin API and churn both call ``Editor``, so every change - whoever makes
it - emits exactly one thin event through its source's event path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pydantic

from mlgraph.sources.events import Action, make_event
from mlgraph.sources.org import Object, Organisation
from mlgraph.sources.resources import Resource, resource
from mlgraph.sources.sinks import EventSink


class ObjectNotFound(LookupError):
    pass


class ObjectExists(ValueError):
    pass


class InvalidObject(ValueError):
    pass


def validated(res: Resource, obj: Mapping[str, Any]) -> Object:
    """``obj`` checked against the read shape, with the shape's defaults filled in."""
    try:
        shaped = res.shape.model_validate(dict(obj)).model_dump()
    except pydantic.ValidationError as exc:
        raise InvalidObject(f"invalid {res.collection} object: {exc}") from None
    shaped.pop("updated_at")  # the organisation stamps it; keep it last in the object
    return shaped


class Editor:
    """Changes ``org`` and sends each change's event to the sink of the object's source."""

    def __init__(self, org: Organisation, sinks: Mapping[str, EventSink]) -> None:
        self.org = org
        self.sinks = sinks

    async def create(self, collection: str, obj: Mapping[str, Any]) -> Object:
        res = resource(collection)
        shaped = validated(res, obj)
        try:
            stored = self.org.create(collection, shaped)
        except KeyError:
            raise ObjectExists(f"{collection}/{shaped[res.id_field]} already exists") from None
        await self._emit(res, shaped[res.id_field], "created")
        return stored

    async def update(self, collection: str, id: str, changes: Mapping[str, Any]) -> Object:
        """Replace the given top-level fields; the id and ``updated_at`` cannot be set."""
        (stored,) = await self.update_many(collection, [(id, changes)])
        return stored

    async def update_many(
        self, collection: str, updates: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> list[Object]:
        """``update`` each, once all are checked: one bad update changes nothing. All are
        written before any event is sent, so no other change can slip in between."""
        res = resource(collection)
        ids = [id for id, _ in updates]
        if len(set(ids)) < len(ids):
            raise InvalidObject("an object may be updated once in a batch; give its fields once")
        shaped = [self._updated(res, id, changes) for id, changes in updates]
        stored = []
        for id, obj in zip(ids, shaped, strict=True):
            try:
                stored.append(self.org.update(collection, id, obj))
            except KeyError:  # deleted meanwhile by another thread
                raise ObjectNotFound(f"{collection}/{id} does not exist") from None
        for id in ids:
            await self._emit(res, id, "updated")
        return stored

    def _updated(self, res: Resource, id: str, changes: Mapping[str, Any]) -> Object:
        changes = {k: v for k, v in changes.items() if k != "updated_at"}
        if changes.get(res.id_field, id) != id:
            raise InvalidObject(
                f"{res.id_field} cannot change ({id!r} to {changes[res.id_field]!r})"
            )
        current = self.org.get(res.collection, id)
        if current is None:
            raise ObjectNotFound(f"{res.collection}/{id} does not exist")
        return validated(res, {**current, **changes})

    async def delete(self, collection: str, id: str) -> Object:
        res = resource(collection)
        try:
            removed = self.org.delete(collection, id)
        except KeyError:
            raise ObjectNotFound(f"{collection}/{id} does not exist") from None
        await self._emit(res, id, "deleted")
        return removed

    async def _emit(self, res: Resource, object_id: str, action: Action) -> None:
        await self.sinks[res.source].emit([make_event(res, object_id, action)])
