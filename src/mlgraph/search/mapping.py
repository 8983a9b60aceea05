"""The search document's fields in tantivy, and the hash that says when they changed.

Every index version records the hash it was built with. When the code's hash
differs (a field, an analyzer, how documents are derived, or the type schema
changed), the index no longer means what the code thinks it means: the
indexer rebuilds it from the store and cuts over (see ``versions.py``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Literal

from mlgraph.catalog.fields import FieldType
from mlgraph.catalog.schema import Schema
from mlgraph.search import filter_index
from mlgraph.search.analysis import ANALYZERS, KEYWORD, SPLITTER, WORDS
from mlgraph.search.filter_fields import DocumentMapping, document_mapping

# Bump when documents.py (or filter_document.py) derives different values from the same entity.
DOCUMENT_VERSION = 3

Kind = Literal["text", "integer", "float", "bytes"]
# What a text field's postings hold: positions (phrases), term frequencies (BM25), or
# only which documents have the term (matching, no scoring).
IndexOption = Literal["position", "freq", "basic"]


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    kind: Kind
    tokenizer: str = "raw"
    stored: bool = False
    fast: bool = False
    indexed: bool = True
    index_option: IndexOption = "position"


# Every word of the text fields a search matches words in (ranking.FIELD_BOOSTS), in
# one field: which documents have a word is one posting list instead of seven, so
# matching, counting and facets walk one list per word; the per-field lists only
# score the hits (compiler.py). Documents only: no frequencies, no positions.
ANY_WORDS = "any_words"


FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("uri", "text", "raw", stored=True),  # the document's key
    FieldSpec("type", "text", "raw", stored=True, fast=True),
    FieldSpec("name_key", "text", KEYWORD),  # the name (and the id) as one term: exact, prefix
    FieldSpec("name_words", "text", WORDS),
    FieldSpec("type_words", "text", WORDS),
    FieldSpec("description_words", "text", WORDS),
    FieldSpec("owner_words", "text", WORDS),
    FieldSpec("owner_keys", "text", KEYWORD),  # URI, id, name, email: `owner:` filters
    FieldSpec("owner_ids", "text", KEYWORD, fast=True),  # the facet
    FieldSpec("tags", "text", KEYWORD, fast=True),  # key::value
    FieldSpec("tag_keys", "text", KEYWORD),
    FieldSpec("tag_words", "text", WORDS),
    FieldSpec("related_words", "text", WORDS),
    FieldSpec("links", "text", "raw"),  # URIs of owners and related: whose name it shows
    FieldSpec("attribute_words", "text", WORDS),
    FieldSpec(ANY_WORDS, "text", WORDS, index_option="basic"),
    FieldSpec("state", "text", KEYWORD),  # lifecycle state and status
    FieldSpec("updated_ts", "integer", fast=True),  # seconds since the epoch
    FieldSpec("demote", "float", fast=True, indexed=False),  # the static rank factor
    FieldSpec("card", "bytes", stored=True, indexed=False),  # what a hit shows, as JSON
    # The filter document (see filter_index.py); one float field per number or date path.
    FieldSpec(filter_index.TERMS, "text", "raw"),
    FieldSpec(filter_index.HAS, "text", "raw"),
)

# Field types whose values are words worth finding an entity by.
SEARCHABLE_FIELD_TYPES = frozenset({FieldType.STRING, FieldType.TEXT, FieldType.STRINGS})


def schema_digest(schema: Schema) -> list[object]:
    """The parts of the type schema documents are derived from."""
    return [
        [
            t.name,
            t.kind,
            sorted(f.name for f in t.fields.values() if f.type in SEARCHABLE_FIELD_TYPES),
            sorted(t.relationships),
        ]
        for t in sorted(schema.types.values(), key=lambda t: t.name)
    ]


_MAPPINGS: dict[int, tuple[Schema, DocumentMapping]] = {}


def filter_mapping(schema: Schema) -> DocumentMapping:
    """``document_mapping(schema)``, computed once per schema object."""
    found = _MAPPINGS.get(id(schema))
    if found is None or found[0] is not schema:
        found = _MAPPINGS[id(schema)] = (schema, document_mapping(schema))
    return found[1]


def index_fields(schema: Schema) -> tuple[FieldSpec, ...]:
    """Every field of an index built for ``schema``: the fixed ones and the numeric filters."""
    numeric = filter_index.numeric_paths(filter_mapping(schema))
    return FIELDS + tuple(
        FieldSpec(filter_index.numeric_field(p), "float", fast=True) for p in numeric
    )


def mapping_hash(schema: Schema) -> str:
    """A short hash of everything that decides what the index holds."""
    spec = {
        "fields": [asdict(f) for f in index_fields(schema)],
        "filters": filter_mapping(schema).digest,
        "analyzers": ANALYZERS,
        "splitter": SPLITTER,
        "documents": DOCUMENT_VERSION,
        "schema": schema_digest(schema),
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
