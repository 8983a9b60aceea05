"""Field types of the schema and how a value is checked and stored as JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from mlgraph.errors import ValidationError


class FieldType(StrEnum):
    STRING = "string"
    TEXT = "text"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATETIME = "datetime"
    JSON = "json"
    STRINGS = "strings"


def to_utc(value: datetime) -> datetime:
    """An aware UTC datetime; a naive one is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def parse_datetime(value: Any, where: str) -> datetime:
    if isinstance(value, datetime):
        return to_utc(value)
    if isinstance(value, str):
        try:
            return to_utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            pass
    raise ValidationError(f"{where}: expected an ISO-8601 datetime, got {value!r}")


@dataclass(frozen=True, slots=True)
class Field:
    """A typed attribute of an entity type."""

    name: str
    type: FieldType
    description: str = ""

    def coerce(self, value: Any, where: str) -> Any:
        """``value`` checked against the field type, in its canonical Python form."""
        kind = self.type
        if kind in (FieldType.STRING, FieldType.TEXT):
            if isinstance(value, str):
                return value
        elif kind is FieldType.INTEGER:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        elif kind is FieldType.NUMBER:
            if isinstance(value, int | float) and not isinstance(value, bool):
                return value
        elif kind is FieldType.BOOLEAN:
            if isinstance(value, bool):
                return value
        elif kind is FieldType.DATETIME:
            return parse_datetime(value, where)
        elif kind is FieldType.STRINGS:
            if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
                return list(value)
        elif kind is FieldType.JSON:
            try:
                json.dumps(value, allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise ValidationError(f"{where}: value is not JSON ({exc})") from None
            return value
        raise ValidationError(
            f"{where}: expected {kind.value}, got {type(value).__name__} {value!r}"
        )

    def to_json(self, value: Any) -> Any:
        if self.type is FieldType.DATETIME:
            return value.isoformat()
        return value

    def from_json(self, value: Any) -> Any:
        if self.type is FieldType.DATETIME:
            return datetime.fromisoformat(value)
        return value
