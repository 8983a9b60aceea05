"""The filter document's fields and their kinds, derived from the type schema.

This is the mapping saved searches are checked against (``reverse/checker.py``)
and the search index's filter fields follow (``filter_index.py``).

A document is a plain dict from a field path to a value or a list of values.
Every document has the base fields; each declared field of any entity type is
a field of the same name; each relationship name, declared, inverse or
inferred, gives three: ``rel`` (the related entities' URIs), ``rel.id`` (the
id part of those URIs) and ``rel.name`` (their names). ``tags.<key>`` is the
value of one tag; ``tags`` lists them all as ``key::value``.

Two types may declare one field name with different types (``version`` is a
string on model instances and an integer on features). Such a field becomes a
list of text values, as it is in a search index that has one mapping for all
types; the disagreement is kept in ``conflicts`` so the docs can say so.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from mlgraph.catalog.fields import FieldType
from mlgraph.catalog.schema import Schema
from mlgraph.errors import SchemaError

TAG_PREFIX = "tags."


class Kind(StrEnum):
    """What a field holds, which decides the operators and literals it takes."""

    KEYWORD = "keyword"  # one exact value, compared without regard to case
    TEXT = "text"  # prose: searched by CONTAINS and LIKE, not compared whole
    NUMBER = "number"
    DATE = "date"
    BOOLEAN = "boolean"
    KEYWORDS = "keyword-list"  # several exact values (owners, tags, related entities)

    @property
    def textual(self) -> bool:
        # Identity tests: preparing a document asks this for every field (a hot path).
        return self is Kind.KEYWORD or self is Kind.KEYWORDS or self is Kind.TEXT


FIELD_KINDS: Mapping[FieldType, Kind] = {
    FieldType.STRING: Kind.KEYWORD,
    FieldType.TEXT: Kind.TEXT,
    FieldType.INTEGER: Kind.NUMBER,
    FieldType.NUMBER: Kind.NUMBER,
    FieldType.BOOLEAN: Kind.BOOLEAN,
    FieldType.DATETIME: Kind.DATE,
    FieldType.STRINGS: Kind.KEYWORDS,
    # JSON fields (a model's metrics) have no fixed shape to filter on: left out.
}

BASE_FIELDS: Mapping[str, Kind] = {
    "uri": Kind.KEYWORD,
    "type": Kind.KEYWORD,
    "name": Kind.KEYWORD,  # the name, or the URI's id when the entity has none
    "description": Kind.TEXT,
    "state": Kind.KEYWORD,  # lifecycle state: hydrated | stub
    "updated_at": Kind.DATE,  # when the source last changed it (or created it)
    "tags": Kind.KEYWORDS,  # key::value
}


@dataclass(frozen=True, slots=True)
class FieldInfo:
    path: str
    kind: Kind
    origin: str  # base | field | relationship | tag
    declared_by: tuple[str, ...] = ()  # entity types that declare it

    @property
    def is_reference(self) -> bool:
        """A relationship's URI list: bare ids compare with the URIs' id part."""
        return self.origin == "relationship" and not self.path.endswith((".id", ".name"))


@dataclass(frozen=True)
class DocumentMapping:
    fields: Mapping[str, FieldInfo]
    conflicts: Mapping[str, tuple[str, ...]]  # path -> "Type.field (type)" that disagree

    def lookup(self, path: str) -> FieldInfo | None:
        found = self.fields.get(path)
        if found is None and path.startswith(TAG_PREFIX) and len(path) > len(TAG_PREFIX):
            return FieldInfo(path, Kind.KEYWORD, "tag")
        return found

    def suggest(self, path: str) -> str | None:
        """The known path closest to a misspelt one."""
        known = list(self.fields)
        head, dot, rest = path.partition(".")
        if dot:
            known.append(TAG_PREFIX + rest)  # `tagz.team` -> `tags.team`
            # `owner.name` -> `owners.name`: the closest root with the same tail.
            roots = {p.partition(".")[0] for p in self.fields}
            for root in difflib.get_close_matches(head, roots, n=2):
                known.append(f"{root}.{rest}")
        close = difflib.get_close_matches(path, known, n=1, cutoff=0.6)
        return close[0] if close else None

    @property
    def relationships(self) -> tuple[str, ...]:
        return tuple(p for p, f in self.fields.items() if f.is_reference)

    @property
    def digest(self) -> str:
        """A short hash of the mapping: a saved search compiled against another needs a look."""
        spec = sorted((p, f.kind.value) for p, f in self.fields.items())
        return hashlib.sha256(json.dumps(spec).encode()).hexdigest()[:16]


def document_mapping(schema: Schema) -> DocumentMapping:
    """Every field path a reverse-search document can have, with its kind."""
    fields: dict[str, FieldInfo] = {p: FieldInfo(p, k, "base") for p, k in BASE_FIELDS.items()}
    seen: dict[str, list[str]] = {}
    conflicts: dict[str, tuple[str, ...]] = {}

    def add(path: str, kind: Kind, origin: str, declared_by: str, what: str) -> None:
        seen.setdefault(path, []).append(f"{what} ({kind.value})")
        current = fields.get(path)
        if current is not None and current.origin == "base":
            raise SchemaError(
                f"{what}: {path!r} is a field every search document has; choose another name"
            )
        if current is None:
            fields[path] = FieldInfo(path, kind, origin, (declared_by,))
            return
        types = tuple(dict.fromkeys((*current.declared_by, declared_by)))
        if current.kind != kind:
            conflicts[path] = tuple(seen[path])
            kind = Kind.KEYWORDS
        fields[path] = FieldInfo(path, kind, current.origin, types)

    for etype in schema.types.values():
        for fname, spec in etype.fields.items():
            kind = FIELD_KINDS.get(spec.type)
            if kind is not None:
                add(fname, kind, "field", etype.name, f"{etype.name}.{fname}")
        for rname in etype.relationships:
            if rname.startswith("~"):
                continue  # an inverse nobody named cannot be written in a search
            for path in _relationship_paths(rname):
                add(path, Kind.KEYWORDS, "relationship", etype.name, f"{etype.name}.{rname}")
    return DocumentMapping(dict(sorted(fields.items())), conflicts)


def _relationship_paths(name: str) -> Iterable[str]:
    return (name, f"{name}.id", f"{name}.name")
