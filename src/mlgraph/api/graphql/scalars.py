"""Scalars beyond GraphQL's own: 64-bit integers and JSON values."""

from __future__ import annotations

from typing import Any, NewType

import strawberry
from pydantic_core import to_jsonable_python
from strawberry.scalars import JSON
from strawberry.types.scalar import ScalarDefinition

from mlgraph.catalog.fields import FieldType

__all__ = ["JSON", "SCALARS", "BigInt", "graphql_type_of", "jsonable"]


def _parse_bigint(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"BigInt cannot represent {value!r}")
    return int(value)


# GraphQL's Int is 32 bits; sizes and row counts are not.
BigInt = NewType("BigInt", int)
SCALARS: dict[object, ScalarDefinition] = {
    BigInt: strawberry.scalar(
        name="BigInt",
        serialize=int,
        parse_value=_parse_bigint,
        description="An integer of up to 64 bits (GraphQL's Int has 32).",
    )
}


def graphql_type_of(field_type: FieldType) -> Any:
    """The GraphQL type of an entity field of ``field_type`` (always nullable)."""
    from datetime import datetime

    inner: Any = {
        FieldType.STRING: str,
        FieldType.TEXT: str,
        FieldType.INTEGER: BigInt,
        FieldType.NUMBER: float,
        FieldType.BOOLEAN: bool,
        FieldType.DATETIME: datetime,
        FieldType.JSON: JSON,
        FieldType.STRINGS: list[str],
    }[field_type]
    return inner | None


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON data (datetimes as ISO 8601, tuples as lists)."""
    return to_jsonable_python(value)
