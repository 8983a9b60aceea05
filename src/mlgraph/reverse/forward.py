"""Forward search with a saved-search filter: a checked DSL tree as a tantivy query.

The search index holds each entity's prepared filter document (see
``search/filter_index.py``), so every atom becomes a query that accepts exactly
the documents the predicate (``predicate.py``) accepts:

- ``==`` / ``IN`` / ``ANY`` on text, keywords and booleans: ``path<SEP>value`` terms;
  on numbers and dates: a one-point range on the path's float field (a number
  a float cannot hold exactly equals no prepared value, so it matches nothing).
- ``>``, ``>=``, ``<``, ``<=``: a range on the float field, a relative bound
  (``now-7d``) resolved against the ``now`` given.
- ``CONTAINS`` / ``LIKE``: a regular expression over the path's terms, with
  every literal character escaped (the predicate compares lowercased text, and
  the terms are lowercased already).
- ``EXISTS``: the path among the document's ``filter_has`` terms.

tantivy compiles a regular expression into an automaton of at most 1000
states: a CONTAINS text of more than about 450 characters, or a LIKE pattern
with more than about 50 ``?`` or ``*`` in it, is refused with a QueryError (a
400) rather than answered differently.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import tantivy

from mlgraph.catalog.schema import Schema
from mlgraph.reverse.compiler import CompiledSearch, compile_search
from mlgraph.reverse.query import All, Atom, Node, Not, Op, Scalar
from mlgraph.search.engine import Where
from mlgraph.search.filter_fields import DocumentMapping
from mlgraph.search.filter_index import HAS, SEP, TERMS, numeric_field, term
from mlgraph.search.mapping import filter_mapping
from mlgraph.search.query import QueryError

Q = tantivy.Query
Occur = tantivy.Occur
FLOAT = tantivy.FieldType.Float
ANY_TEXT = "(?s:.*)"


def to_query(node: Node, schema: tantivy.Schema, now: float) -> tantivy.Query:
    """The tantivy query meaning ``node``, with relative dates as of ``now`` (epoch seconds)."""
    if isinstance(node, Atom):
        return atom_query(node, schema, now)
    if isinstance(node, Not):
        inner = to_query(node.item, schema, now)
        return Q.boolean_query([(Occur.Must, Q.all_query()), (Occur.MustNot, inner)])
    occur = Occur.Must if isinstance(node, All) else Occur.Should
    return Q.boolean_query([(occur, to_query(i, schema, now)) for i in node.items])


def atom_query(atom: Atom, schema: tantivy.Schema, now: float) -> tantivy.Query:
    path = atom.field
    if atom.op is Op.EXISTS:
        return Q.term_query(schema, HAS, path)
    if atom.op is Op.EQ:
        return _equal(path, atom.values, schema)
    if atom.op.is_range:
        bound = float(atom.values[0]) + (now if atom.relative else 0.0)
        return _range(schema, path, atom.op, bound)
    text = str(atom.values[0])
    pattern = f"{ANY_TEXT}{escape(text)}{ANY_TEXT}" if atom.op is Op.CONTAINS else like(text)
    try:
        return Q.regex_query(schema, TERMS, escape(path + SEP) + pattern)
    except ValueError as exc:  # the automaton is too large
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise QueryError(
            f"{path} {atom.op.value.upper()} '{shown}' ({len(text)} characters) is more than "
            "the search index can match: shorten it, or use fewer * and ?"
        ) from exc


def _equal(path: str, values: Sequence[Scalar], schema: tantivy.Schema) -> tantivy.Query:
    terms = [term(path, v) for v in values if isinstance(v, str | bool)]
    options: list[tantivy.Query] = []
    if terms:
        options.append(
            Q.term_query(schema, TERMS, terms[0])
            if len(terms) == 1
            else Q.term_set_query(schema, TERMS, terms)
        )
    for v in values:
        if isinstance(v, bool | str):
            continue
        try:
            point = float(v)
        except OverflowError:  # no float equals it
            continue
        if point == v:  # else no float equals it: the predicate compares exactly
            point += 0.0  # -0.0 is 0.0, as prepared values are
            options.append(Q.range_query(schema, numeric_field(path), FLOAT, point, point))
    if not options:
        return Q.empty_query()
    if len(options) == 1:
        return options[0]
    return Q.boolean_query([(Occur.Should, q) for q in options])


def _range(schema: tantivy.Schema, path: str, op: Op, bound: float) -> tantivy.Query:
    bound += 0.0
    field = numeric_field(path)
    if op in (Op.GT, Op.GE):
        return Q.range_query(schema, field, FLOAT, bound, None, include_lower=op is Op.GE)
    return Q.range_query(schema, field, FLOAT, None, bound, include_upper=op is Op.LE)


def escape(text: str) -> str:
    """``text`` as a regular expression matching just it (tantivy's regex syntax):
    anything but an ASCII letter or digit written as ``\\x{hex}``."""
    return "".join(ch if ch.isascii() and ch.isalnum() else f"\\x{{{ord(ch):x}}}" for ch in text)


def like(pattern: str) -> str:
    """A LIKE pattern (``*`` any run, ``?`` any one character) as a regular expression."""
    return "".join(
        "(?s:.)" if ch == "?" else ANY_TEXT if ch == "*" else escape(ch) for ch in pattern
    )


def where(compiled: CompiledSearch, now: float | None = None) -> Where:
    """A compiled search as a filter for ``Discovery.search`` (relative dates as of ``now``)."""
    moment = time.time() if now is None else now
    tree = compiled.tree
    return Where(compiled.text, lambda schema: to_query(tree, schema, moment))


def parse_filter(text: str, mapping: DocumentMapping, now: float | None = None) -> Where:
    """The filter written ``text`` in the DSL; raises DslError pointing at the problem."""
    return where(compile_search(text, mapping), now)


def search_filter(schema: Schema, text: str | None, now: float | None = None) -> Where | None:
    """The filter ``text`` (blank: none) checked against ``schema``'s search-document mapping,
    for ``Discovery.search(where=...)``; raises DslError pointing at the problem."""
    if text is None or not text.strip():
        return None
    return parse_filter(text, filter_mapping(schema), now)
