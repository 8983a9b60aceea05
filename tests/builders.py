"""Small constructors for entities in tests."""

from __future__ import annotations

from typing import Any

from mlgraph.catalog import Entity, format_uri, load_schema

_SCHEMA = load_schema()


def uri(type_name: str, id: str, source: str = "test") -> str:
    return format_uri(_SCHEMA.type(type_name).kind, source, id)


def entity(type_name: str, id: str, *, source: str = "test", **fields: Any) -> Entity:
    """A hydrated entity of ``type_name``; references may be given as single URIs."""
    refs = {
        k: (v,) if isinstance(v, str) else tuple(v) for k, v in fields.pop("references", {}).items()
    }
    owners = tuple(fields.pop("owners", ()))
    fields.setdefault("name", id)
    return Entity(
        uri=uri(type_name, id, source), type=type_name, owners=owners, references=refs, **fields
    )
