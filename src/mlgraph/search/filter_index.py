"""How the search index holds each document's filter values, so a saved-search filter
can run as an index query that means exactly what the predicate means.

A document's *prepared* filter document (``filter_document.prepare``) goes in as:

- ``filter``: one raw term ``path<SEP>value`` per text, keyword or boolean value
  (already lowercased; booleans as ``true`` / ``false``). Equality is a term
  query; CONTAINS and LIKE are regular expressions over the terms of one path.
- ``filter_has``: the path of every field that has a value: ``EXISTS``.
- ``num_<path>``: a float field for every number or date path of the mapping
  (dates as epoch seconds): equality and ranges are range queries.

The numeric fields follow the type schema (``numeric_paths``), so they are part
of the mapping hash: a schema that adds a number field rebuilds the index.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import tantivy

from mlgraph.search.filter_document import Prepared, prepare
from mlgraph.search.filter_fields import DocumentMapping, Kind

TERMS = "filter"
HAS = "filter_has"
SEP = "\x1f"  # between a path and its value: no path holds it


def term(path: str, value: str | bool) -> str:
    """The ``filter`` term for one prepared value of ``path``."""
    if isinstance(value, bool):
        return f"{path}{SEP}{'true' if value else 'false'}"
    return f"{path}{SEP}{value}"


def numeric_field(path: str) -> str:
    return f"num_{path}"


def numeric_paths(mapping: DocumentMapping) -> tuple[str, ...]:
    """The paths that hold numbers or dates: one float field each."""
    return tuple(sorted(p for p, f in mapping.fields.items() if f.kind in (Kind.NUMBER, Kind.DATE)))


def prepare_for_index(mapping: DocumentMapping, document: Mapping[str, Any]) -> Prepared:
    """A filter document's values as the index holds them: prepared by each field's kind
    in the mapping (a search prepares a document by the same kinds: see ``checker.py``)."""

    def kind_of(path: str) -> Kind | None:
        info = mapping.lookup(path)
        return None if info is None else info.kind

    return prepare(document, kind_of)


def add_filters(doc: tantivy.Document, prepared: Prepared) -> None:
    """Add a prepared filter document's values to a tantivy document.

    Preparing made every number and date a float and nothing else one, so the
    value's type says where it goes.
    """
    for path, values in prepared.items():
        doc.add_text(HAS, path)
        for v in values:
            if isinstance(v, float):
                doc.add_float(numeric_field(path), v)
            else:
                doc.add_text(TERMS, term(path, v))
