"""Running a search: parse, compile, rank, page, count facets, highlight.

Pages are cursors: an opaque token carrying the offset of the next page and a
digest of the query (and filter), so a cursor cannot be replayed against another.

A search may carry a ``Where``: a filter compiled elsewhere (reverse search
compiles the saved-search DSL, ``reverse/forward.py``) against the snapshot's
tantivy schema. It narrows the hits without changing their order.
Like any offset it sees a live index: a document committed between two pages
may shift what the next page starts with.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import tantivy

from mlgraph.catalog.schema import Schema
from mlgraph.search import ranking
from mlgraph.search.compiler import NAME_FIELDS, TEXT_FIELDS, Compiled, Compiler
from mlgraph.search.highlight import Highlighter
from mlgraph.search.query import ParsedQuery, QueryError, QueryParser
from mlgraph.search.reader import Reader

IndexName = Literal["entities", "owners"]
MAX_LIMIT = 100
MAX_DEPTH = 1000  # results reachable by paging: past that, narrow the query
FACET_SIZE = 20
FACETS: Mapping[str, str] = {"type": "type", "owner": "owner_ids", "tag": "tags"}


@dataclass(frozen=True, slots=True)
class Where:
    """A filter on the hits: ``text`` as written (cursors are tied to it), ``query`` builds
    the tantivy query from the index's schema."""

    text: str
    query: Callable[[tantivy.Schema], tantivy.Query]


@dataclass(frozen=True, slots=True)
class Hit:
    uri: str
    type: str
    name: str
    score: float
    description: str | None
    owners: list[dict[str, str]]
    tags: dict[str, str]
    state: str
    deprecated: bool
    updated_at: str | None
    highlights: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SearchPage:
    query: str
    total: int
    hits: list[Hit]
    facets: dict[str, dict[str, int]]
    next_cursor: str | None
    version: str


@dataclass(frozen=True, slots=True)
class Suggestion:
    uri: str
    type: str
    name: str
    highlight: str | None


def _digest(index: str, text: str) -> str:
    return hashlib.sha256(f"{index}\0{text}".encode()).hexdigest()[:12]


def encode_cursor(index: str, text: str, offset: int) -> str:
    raw = json.dumps({"o": offset, "q": _digest(index, text)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, index: str, text: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        offset, digest = int(data["o"]), str(data["q"])
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise QueryError("the cursor is not one this service handed out") from None
    if digest != _digest(index, text):
        raise QueryError("the cursor belongs to another query: page with the same q")
    if not 0 <= offset <= MAX_DEPTH:
        raise QueryError(f"the cursor points past the first {MAX_DEPTH} results")
    return offset


def hit_count(result: tantivy.SearchResult) -> int:
    # tantivy's type stub leaves out ``count`` (the number of matches when counted).
    return int(getattr(result, "count", None) or 0)


def _facets(aggregated: dict[str, Any]) -> dict[str, dict[str, int]]:
    found: dict[str, dict[str, int]] = {}
    for name in FACETS:
        buckets = aggregated.get(name, {}).get("buckets", [])
        found[name] = {str(b["key"]): int(b["doc_count"]) for b in buckets}
    return found


class Engine:
    def __init__(self, reader: Reader, schema: Schema) -> None:
        self.reader = reader
        self.parser = QueryParser(schema)

    def _ranked(
        self, searcher: tantivy.Searcher, compiled: Compiled, limit: int, offset: int
    ) -> tuple[list[tuple[float, tantivy.DocAddress]], int]:
        if compiled.browse:  # filters only: the most recently updated first
            result = searcher.search(
                compiled.match, limit, offset=offset, order_by_field="updated_ts"
            )
            return [(0.0, a) for _, a in result.hits], hit_count(result)
        result = searcher.search(compiled.ranked, limit, offset=offset, weight_by_field="demote")
        hits = [(float(s) / ranking.WEIGHT_BITS, a) for s, a in result.hits]
        return hits, hit_count(result)

    def _run(
        self,
        schema: tantivy.Schema,
        parsed: ParsedQuery,
        searcher: tantivy.Searcher,
        limit: int,
        offset: int,
        fields: Sequence[str] = TEXT_FIELDS,
        where: tantivy.Query | None = None,
    ) -> tuple[Compiled, list[tuple[float, tantivy.DocAddress]], int]:
        """The words as typed first; near misses too when that finds little."""
        compiler = Compiler(schema, searcher=searcher)
        compiled = compiler.compile(parsed, fields=fields, where=where)
        hits, total = self._ranked(searcher, compiled, limit, offset)
        if total < ranking.FUZZY_BELOW and compiled.could_be_fuzzy:
            compiler = Compiler(schema, fuzzy=True, searcher=searcher)
            compiled = compiler.compile(parsed, fields=fields, where=where)
            hits, total = self._ranked(searcher, compiled, limit, offset)
        return compiled, hits, total

    def search(
        self,
        text: str,
        *,
        limit: int = 20,
        cursor: str | None = None,
        facets: bool = True,
        index: IndexName = "entities",
        where: Where | None = None,
    ) -> SearchPage:
        """``text`` may be empty when ``where`` is given: every hit of the filter, newest first."""
        if not 1 <= limit <= MAX_LIMIT:
            raise QueryError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
        key = text if where is None else f"{text}\0{where.text}"
        offset = 0 if cursor is None else decode_cursor(cursor, index, key)
        parsed = self.parser.parse(text)
        snap = self.reader.snapshot()
        searcher = snap.entities if index == "entities" else snap.owners
        narrow = None if where is None else where.query(snap.schema)
        compiled, hits, total = self._run(
            snap.schema, parsed, searcher, limit, offset, where=narrow
        )
        counted: dict[str, dict[str, int]] = {}
        if facets:
            aggregation = {
                name: {"terms": {"field": f, "size": FACET_SIZE}} for name, f in FACETS.items()
            }
            counted = _facets(searcher.aggregate(compiled.match, aggregation))
        marker = Highlighter(compiled.terms, compiled.prefix, compiled.fuzzy)
        page = [self._hit(searcher, address, score, marker) for score, address in hits]
        end = offset + len(page)
        more = end < min(total, MAX_DEPTH) and len(page) == limit
        return SearchPage(
            text,
            total,
            page,
            counted,
            encode_cursor(index, key, end) if more else None,
            snap.version.name,
        )

    def _hit(
        self, searcher: tantivy.Searcher, address: tantivy.DocAddress, score: float,
        marker: Highlighter,
    ) -> Hit:  # fmt: skip
        card = json.loads(searcher.doc(address)["card"][0])
        highlights = {}
        for key in ("name", "description"):
            snippet = marker.snippet(card.get(key))
            if snippet is not None:
                highlights[key] = snippet
        return Hit(
            uri=card["uri"],
            type=card["type"],
            name=card["name"],
            score=round(score, 4),
            description=card.get("description") or None,
            owners=card.get("owners", []),
            tags=card.get("tags", {}),
            state=card.get("state", ""),
            deprecated=bool(card.get("deprecated")),
            updated_at=card.get("updated_at"),
            highlights=highlights,
        )

    def typeahead(
        self, prefix: str, *, limit: int = 10, index: IndexName = "entities"
    ) -> list[Suggestion]:
        """Entities whose name starts with, or has words starting with, what was typed."""
        if not 1 <= limit <= MAX_LIMIT:
            raise QueryError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
        parsed = self.parser.parse(prefix)
        if not parsed.positive_text.strip():
            raise QueryError("typeahead needs the start of a name, e.g. prefix=rank")
        snap = self.reader.snapshot()
        searcher = snap.entities if index == "entities" else snap.owners
        compiled, hits, _ = self._run(snap.schema, parsed, searcher, limit, 0, fields=NAME_FIELDS)
        marker = Highlighter(compiled.terms, compiled.prefix, compiled.fuzzy)
        found = []
        for _, address in hits:
            card = json.loads(searcher.doc(address)["card"][0])
            found.append(
                Suggestion(card["uri"], card["type"], card["name"], marker.snippet(card["name"]))
            )
        return found


__all__ = ["TEXT_FIELDS", "Engine", "Hit", "SearchPage", "Suggestion", "Where"]
