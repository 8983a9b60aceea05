"""Reading incoming events: CloudEvents 1.0 (structured JSON) or the sources' thin shape.

Both say only *which* object changed. Everything wrong with a batch is
reported at once, each problem with its position, and nothing of a batch is
accepted unless all of it is well-formed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mlgraph.catalog.fields import parse_datetime
from mlgraph.errors import MlgraphError, ValidationError

MAX_BATCH = 5000


class MalformedEvents(MlgraphError):
    """A request's events are not well-formed; ``problems`` lists each one with its position."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems[:20]) + (" …" if len(problems) > 20 else ""))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class ThinEvent:
    event_id: str
    event_type: str
    source: str | None
    data: dict[str, Any]  # the thin payload: carries the changed object's id
    occurred_at: datetime | None
    raw: dict[str, Any]


def parse_events(body: Any) -> list[ThinEvent]:
    """One event or a batch (a JSON array) → events, or MalformedEvents."""
    if isinstance(body, list):
        if not body:
            raise MalformedEvents(["the batch is empty"])
        if len(body) > MAX_BATCH:
            raise MalformedEvents([f"a batch holds at most {MAX_BATCH} events, got {len(body)}"])
        items = [(f"events[{i}]", item) for i, item in enumerate(body)]
    else:
        items = [("event", body)]
    events: list[ThinEvent] = []
    problems: list[str] = []
    for where, item in items:
        try:
            events.append(parse_event(item, where))
        except ValidationError as exc:
            problems.append(str(exc))
    if problems:
        raise MalformedEvents(problems)
    return events


def parse_event(item: Any, where: str = "event") -> ThinEvent:
    if not isinstance(item, dict):
        raise ValidationError(f"{where}: expected a JSON object, got {type(item).__name__}")
    if "specversion" in item:
        return _cloud_event(item, where)
    if "event_type" in item:
        return _thin_event(item, where)
    raise ValidationError(
        f"{where}: neither a CloudEvent (no 'specversion') nor a thin event (no 'event_type')"
    )


def _text(item: dict[str, Any], key: str, where: str, *, required: bool = True) -> str | None:
    value = item.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{where}: '{key}' must be a non-empty string, got {value!r}")
    return value


def _time(item: dict[str, Any], key: str, where: str) -> datetime | None:
    value = item.get(key)
    return None if value is None else parse_datetime(value, f"{where}: '{key}'")


def _cloud_event(item: dict[str, Any], where: str) -> ThinEvent:
    if item["specversion"] != "1.0":
        raise ValidationError(f"{where}: specversion must be '1.0', got {item['specversion']!r}")
    event_id = _text(item, "id", where)
    source = _text(item, "source", where)
    event_type = _text(item, "type", where)
    data = item.get("data", {})
    if not isinstance(data, dict):
        raise ValidationError(f"{where}: 'data' must be a JSON object with the changed id")
    assert event_id and event_type
    return ThinEvent(event_id, event_type, source, data, _time(item, "time", where), item)


def _thin_event(item: dict[str, Any], where: str) -> ThinEvent:
    event_type = _text(item, "event_type", where)
    event_id = _text(item, "event_id", where, required=False) or str(uuid.uuid4())
    source = _text(item, "source", where, required=False)
    assert event_type
    return ThinEvent(event_id, event_type, source, item, _time(item, "occurred_at", where), item)
