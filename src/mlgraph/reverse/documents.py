"""The reverse-search document of an entity: a plain dict, field path -> value(s).

It follows ``mapping.py``: the base fields, the entity's declared fields, its
tags one by one and as ``key::value``, and for each relationship (declared,
inverse or inferred) the related entities' URIs, ids and names. Names follow
the search index's document (``search/documents.py``): an entity without a
name goes by the id part of its URI, and descriptions are cut at the same
length, so a forward search and a reverse search see the same text.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from mlgraph.catalog.entity import Entity
from mlgraph.catalog.schema import Schema
from mlgraph.reverse.mapping import FIELD_KINDS

MAX_DESCRIPTION = 2000  # characters, as the search index keeps

Document = dict[str, Any]


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
