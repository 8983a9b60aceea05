"""The search document of an entity, derived from the entity and the type schema.

Nothing here names a type: the searchable attributes are the type's string
and text fields as ``types.yaml`` declares them, related entities are whatever
its relationships lead to. A new type is searchable as soon as it is declared.

Besides the words it is found by, a document carries its *filter document*
(``filter_document.py``, the one reverse search checks saved searches against,
prepared), so a saved-search filter runs on the index with the same meaning.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import tantivy

from mlgraph.catalog.entity import Entity
from mlgraph.catalog.schema import Schema
from mlgraph.catalog.validation import OWNERS
from mlgraph.search import analysis, filter_document, ranking
from mlgraph.search.filter_document import Prepared
from mlgraph.search.filter_index import add_filters, prepare_for_index
from mlgraph.search.mapping import ANY_WORDS, SEARCHABLE_FIELD_TYPES, filter_mapping

MAX_RELATED = 64  # names of related entities per document: enough to find it, bounded
MAX_DESCRIPTION = 2000  # characters of description indexed and shown
OWNER_TYPES = frozenset({"User", "Group"})  # what the owners index holds


@dataclass(frozen=True, slots=True)
class Related:
    """An entity one edge away, named as seen from the document's entity."""

    relationship: str
    uri: str
    type: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Subject:
    """What the index is told about one entity: the entity and its neighbours' names.

    ``related`` are the ends of its outgoing edges (what the words and the
    ranking use); ``incoming`` the starts of its incoming edges under the
    relationships' inverse names (only the filter document uses them).
    """

    entity: Entity
    related: tuple[Related, ...] = ()
    incoming: tuple[Related, ...] = ()


@dataclass(frozen=True, slots=True)
class SearchDocument:
    uri: str
    type: str
    name: str
    name_keys: tuple[str, ...]
    name_words: str
    type_words: str
    description: str
    owner_words: str
    owner_keys: tuple[str, ...]
    owner_ids: tuple[str, ...]
    tags: tuple[str, ...]
    tag_keys: tuple[str, ...]
    tag_words: str
    related_words: str
    links: tuple[str, ...]
    attribute_words: str
    states: tuple[str, ...]
    updated_ts: int | None
    demote: float  # the rank factor (see ranking.py)
    card: dict[str, Any] = field(default_factory=dict)
    filters: Prepared = field(default_factory=dict)  # the prepared filter document

    def to_tantivy(self) -> tantivy.Document:
        doc = tantivy.Document()
        doc.add_text("uri", self.uri)
        doc.add_text("type", self.type)
        for key in self.name_keys:
            doc.add_text("name_key", key)
        words = {
            "name_words": self.name_words,
            "type_words": self.type_words,
            "description_words": analysis.split(self.description),
            "owner_words": self.owner_words,
            "tag_words": self.tag_words,
            "related_words": self.related_words,
            "attribute_words": self.attribute_words,
        }
        for name, text in words.items():
            doc.add_text(name, text)
            if name in ranking.FIELD_BOOSTS:  # the fields words are matched in
                doc.add_text(ANY_WORDS, text)
        for values, name in (
            (self.owner_keys, "owner_keys"),
            (self.owner_ids, "owner_ids"),
            (self.tags, "tags"),
            (self.tag_keys, "tag_keys"),
            (self.states, "state"),
        ):
            for value in values:
                doc.add_text(name, value)
        for uri in self.links:
            doc.add_text("links", uri)
        if self.updated_ts is not None:
            doc.add_integer("updated_ts", self.updated_ts)
        doc.add_float("demote", ranking.weight(self.demote))
        doc.add_bytes("card", json.dumps(self.card, separators=(",", ":")).encode())
        add_filters(doc, self.filters)
        return doc


def uri_id(uri: str) -> str:
    """The id part of ``{scheme}://{kind}/{source}/{id}``."""
    found = uri.partition("://")[2].split("/", 2)[-1]
    return unquote(found) if "%" in found else found


def _words(values: Iterable[str | None]) -> str:
    return " ".join(analysis.split(v) for v in values if v)


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if v))


def _attribute_values(schema: Schema, entity: Entity) -> list[str]:
    etype = schema.types.get(entity.type)
    if etype is None:
        return []
    found: list[str] = []
    for name, spec in etype.fields.items():
        value = entity.attributes.get(name)
        if spec.type not in SEARCHABLE_FIELD_TYPES or value is None:
            continue
        found.extend(value if isinstance(value, list | tuple) else [str(value)])
    return found


def filter_values(schema: Schema, subject: Subject) -> filter_document.Document:
    """The subject's filter document: what reverse search checks saved searches against."""
    neighbours = (
        filter_document.Related(r.relationship, r.uri, r.name)
        for r in (*subject.related, *subject.incoming)
    )
    return filter_document.build_document(schema, subject.entity, neighbours)


def prepared_filters(schema: Schema, subject: Subject) -> Prepared:
    return prepare_for_index(filter_mapping(schema), filter_values(schema, subject))


def build(schema: Schema, subject: Subject, now: float | None = None) -> SearchDocument:
    """The document for ``subject`` as of ``now`` (seconds since the epoch; it decides
    staleness): the same input always gives the same document."""
    entity = subject.entity
    etype = schema.types.get(entity.type)
    own_id = uri_id(entity.uri)
    name = entity.name or own_id
    owners = sorted((r for r in subject.related if r.relationship == OWNERS), key=lambda r: r.uri)
    related = sorted(
        (r for r in subject.related if r.relationship != OWNERS),
        key=lambda r: (r.relationship, r.uri),
    )[:MAX_RELATED]
    owner_ids = [uri_id(o.uri) for o in owners]
    tags = sorted(entity.tags.items())
    deprecated = ranking.is_deprecated(entity)
    updated = entity.source_updated_at or entity.source_created_at
    updated_ts = None if updated is None else int(updated.timestamp())
    stale = ranking.is_stale(updated_ts, time.time() if now is None else now)
    description = (entity.description or "")[:MAX_DESCRIPTION]
    name_key, id_key = analysis.name_key(name), analysis.name_key(own_id)
    # The id is worth finding by when it is not just the name spelled another way.
    names = [name] if id_key == name_key else [name, own_id]
    return SearchDocument(
        uri=entity.uri,
        type=entity.type,
        name=name,
        name_keys=_unique([name_key, id_key]),
        name_words=_words(names),
        type_words=_words([entity.type, etype.kind if etype else None]),
        description=description,
        owner_words=_words(v for o in owners for v in (o.name, uri_id(o.uri))),
        owner_keys=_unique(
            k.lower()
            for o, oid in zip(owners, owner_ids, strict=True)
            for k in (o.uri, oid, o.name or "")
        ),
        owner_ids=_unique(i.lower() for i in owner_ids),
        tags=_unique(f"{k}::{v}".lower() for k, v in tags),
        tag_keys=_unique(k.lower() for k, _ in tags),
        tag_words=_words(v for pair in tags for v in pair),
        related_words=_words(r.name or uri_id(r.uri) for r in related),
        # Every neighbour, both ways: its name is in the filter document (``rel.name``).
        links=_unique(r.uri for r in (*subject.related, *subject.incoming)),
        attribute_words=_words(_attribute_values(schema, entity)),
        states=(
            entity.state.value,
            "deprecated" if deprecated else "active",
            "stale" if stale else "fresh",
        ),
        updated_ts=updated_ts,
        demote=ranking.factor(entity, stale, name_key.count(" ") + 1),
        card={
            "uri": entity.uri,
            "type": entity.type,
            "name": name,
            "description": description,
            "owners": [{"uri": o.uri, "name": o.name or uri_id(o.uri)} for o in owners],
            "tags": dict(tags),
            "state": entity.state.value,
            "deprecated": deprecated,
            "stale": stale,
            "updated_at": None if updated is None else updated.isoformat(),
        },
        filters=prepared_filters(schema, subject),
    )
