"""The filter document of an entity: a plain dict, field path -> value(s), and its prepared form.

It follows ``filter_fields.py``: the base fields, the entity's declared fields,
its tags one by one and as ``key::value``, and for each relationship (declared,
inverse or inferred) the related entities' URIs, ids and names. Names follow
the search document (``documents.py``): an entity without a name goes by the
id part of its URI, and descriptions are cut at the same length.

Saved searches are checked against this document (reverse search) and the
search index holds its *prepared* form (forward search): one piece of code
decides what a document says, so the two cannot drift apart.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from mlgraph.catalog.entity import Entity
from mlgraph.catalog.schema import Schema
from mlgraph.search.filter_fields import FIELD_KINDS, Kind

MAX_DESCRIPTION = 2000  # characters, as the search index keeps

Document = dict[str, Any]
Prepared = dict[str, tuple[Any, ...]]
KindOf = Callable[[str], Kind | None]


@dataclass(frozen=True, slots=True)
class Related:
    """An entity one edge away, under the relationship's name as seen from the document's."""

    relationship: str
    uri: str
    name: str | None = None


def uri_id(uri: str) -> str:
    """The id part of ``{scheme}://{kind}/{source}/{id}``."""
    found = uri.partition("://")[2].split("/", 2)[-1]
    return unquote(found) if "%" in found else found


def build_document(schema: Schema, entity: Entity, related: Iterable[Related]) -> Document:
    doc: Document = {
        "uri": entity.uri,
        "type": entity.type,
        "name": entity.name or uri_id(entity.uri),
        "state": entity.state.value,
    }
    if entity.description:
        doc["description"] = entity.description[:MAX_DESCRIPTION]
    updated = entity.source_updated_at or entity.source_created_at
    if updated is not None:
        doc["updated_at"] = updated
    if entity.tags:
        doc["tags"] = [f"{k}::{v}" for k, v in sorted(entity.tags.items())]
        for key, value in entity.tags.items():
            doc[f"tags.{key}"] = value
    etype = schema.types.get(entity.type)
    for name, value in entity.attributes.items():
        spec = None if etype is None else etype.fields.get(name)
        if spec is not None and spec.type in FIELD_KINDS and value is not None:
            doc[name] = value
    for r in sorted(related, key=lambda r: (r.relationship, r.uri)):
        if r.relationship.startswith("~"):
            continue  # an inverse without a name: not addressable in a search
        rid = uri_id(r.uri)
        doc.setdefault(r.relationship, []).append(r.uri)
        doc.setdefault(f"{r.relationship}.id", []).append(rid)
        doc.setdefault(f"{r.relationship}.name", []).append(r.name or rid)
    return doc


# -- prepared: the values as searches compare them ----------------------------------------


def prepare(document: Mapping[str, Any], kind_of: KindOf) -> Prepared:
    """The document's values per field, normalized; fields ``kind_of`` does not know left out.

    Text is lowercased; numbers are 64-bit floats (as the search index holds
    them, so forward and reverse search compare the same values); dates are
    epoch seconds; values of the wrong kind are dropped, and a field left with
    no value does not exist.
    """
    out: Prepared = {}
    for path, raw in document.items():
        kind = kind_of(path)
        if kind is None or raw is None:
            continue
        if raw.__class__ is str and kind.textual:  # the common case, made cheap
            out[path] = (raw.lower(),)
            continue
        items: Iterable[Any] = raw if isinstance(raw, list | tuple | set | frozenset) else (raw,)
        values = _normalize(items, kind)
        if values:
            out[path] = values
    return out


def _normalize(items: Iterable[Any], kind: Kind) -> tuple[Any, ...]:
    if kind.textual:
        return tuple(
            {(v.lower() if v.__class__ is str else _text(v)): None for v in items if v is not None}
        )
    if kind is Kind.NUMBER:
        # ``+ 0.0``: -0.0 and 0.0 are one number (the index would order them apart).
        return tuple(
            float(v) + 0.0
            for v in items
            if isinstance(v, int | float) and not isinstance(v, bool) and _finite(v)
        )
    if kind is Kind.BOOLEAN:
        return tuple(v for v in items if isinstance(v, bool))
    found = (_epoch(v) for v in items)
    return tuple(v + 0.0 for v in found if v is not None)


def _finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value.lower()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat().lower()
    return str(value).lower()


def _epoch(value: Any) -> float | None:
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return moment.timestamp()
    if isinstance(value, str):
        return parse_date(value)
    if isinstance(value, int | float) and not isinstance(value, bool) and _finite(value):
        return float(value)
    return None


def parse_date(text: str) -> float | None:
    """Epoch seconds of an ISO-8601 date or time (UTC unless it says otherwise)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
