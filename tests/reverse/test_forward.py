"""Forward search's query for each atom accepts exactly what the predicate accepts.

The percolator property test covers the DSL over a small vocabulary; here the
values are arbitrary text (any Unicode, newlines, regular-expression
characters, the separator itself) and arbitrary CONTAINS / LIKE arguments, the
cases an escaping mistake would get wrong.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
import tantivy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlgraph.catalog import load_schema
from mlgraph.reverse import DslError, document_mapping
from mlgraph.reverse.forward import escape, like, parse_filter, to_query
from mlgraph.reverse.predicate import check_of
from mlgraph.reverse.query import Atom, Node, Op
from mlgraph.search.filter_index import SEP, add_filters, prepare_for_index
from mlgraph.search.index import open_index, writer
from mlgraph.search.mapping import index_fields
from mlgraph.search.query import QueryError

SCHEMA = load_schema()
MAPPING = document_mapping(SCHEMA)
NOW = 1_750_000_000.0

# Any character tantivy can hold (no surrogates), regular-expression syntax and the separator often.
CHARS = st.characters(exclude_categories=["Cs"]) | st.sampled_from(list(".*?+()[]{}|^$\\\n" + SEP))
TEXT = st.text(CHARS, max_size=8)


def found(docs: list[dict[str, Any]], nodes: list[Node]) -> list[list[int]]:
    """Per node, the documents its forward query finds in an index of ``docs``."""
    with tempfile.TemporaryDirectory() as tmp:
        index = open_index(Path(tmp), index_fields(SCHEMA))
        w = writer(index)
        for i, d in enumerate(docs):
            built = tantivy.Document()
            built.add_text("uri", str(i))
            add_filters(built, prepare_for_index(MAPPING, d))
            w.add_document(built)
        w.commit()
        w.wait_merging_threads()
        index.reload()
        searcher = index.searcher()
        out = []
        for node in nodes:
            hits = searcher.search(to_query(node, index.schema, NOW), max(1, len(docs))).hits
            out.append(sorted(int(searcher.doc(a)["uri"][0]) for _, a in hits))
        return out


def accepted(docs: list[dict[str, Any]], nodes: list[Node]) -> list[list[int]]:
    out = []
    for node in nodes:
        check = check_of(node)
        out.append([i for i, d in enumerate(docs) if check(prepare_for_index(MAPPING, d), NOW)])
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.lists(TEXT, max_size=3), min_size=1, max_size=6),
    st.lists(TEXT, min_size=1, max_size=4),
    st.lists(st.text(st.sampled_from("ab*?.\né" + SEP), max_size=5), min_size=1, max_size=4),
)
def test_text_atoms_agree_on_any_text(
    values: list[list[str]], substrings: list[str], patterns: list[str]
) -> None:
    docs = [{"description": v, "owners.name": v} for v in values]
    nodes: list[Node] = []
    for field in ("description", "owners.name"):
        nodes += [Atom(field, Op.CONTAINS, (s.lower(),)) for s in substrings]
        nodes += [Atom(field, Op.LIKE, (p.lower(),)) for p in patterns]
        nodes.append(Atom(field, Op.EXISTS))
    nodes += [Atom("owners.name", Op.EQ, (v.lower(),)) for v in values[0]]
    assert found(docs, nodes) == accepted(docs, nodes)


def test_escaping_leaves_letters_and_digits_alone() -> None:
    assert escape("ab1") == "ab1"
    assert escape("a.b") == "a\\x{2e}b"
    assert escape("é") == "\\x{e9}"
    assert like("r?n*") == "r(?s:.)n(?s:.*)"


def test_a_filter_with_a_mistake_points_at_it() -> None:
    with pytest.raises(DslError) as caught:
        parse_filter("type == 'Model' AND ownrs.id == 'alice'", MAPPING)
    assert "owners" in str(caught.value)  # the suggestion
    assert caught.value.span is not None and caught.value.span.start == 20


def test_a_text_too_long_for_the_index_is_refused_not_answered_differently() -> None:
    schema = open_index_schema()
    with pytest.raises(QueryError, match="more than the search index can match"):
        to_query(Atom("description", Op.CONTAINS, ("ab" * 600,)), schema, NOW)
    with pytest.raises(QueryError, match="fewer"):
        to_query(Atom("description", Op.LIKE, ("?" * 200,)), schema, NOW)
    to_query(Atom("description", Op.CONTAINS, ("ab" * 100,)), schema, NOW)  # a long one is fine


def open_index_schema() -> tantivy.Schema:
    with tempfile.TemporaryDirectory() as tmp:
        return open_index(Path(tmp), index_fields(SCHEMA)).schema


def test_relative_dates_resolve_against_the_given_now() -> None:
    day = 86_400.0
    docs = [{"updated_at": NOW - 3 * day}, {"updated_at": NOW - 10 * day}]
    nodes: list[Node] = [Atom("updated_at", Op.GT, (-7 * day,), relative=True)]
    assert found(docs, nodes) == accepted(docs, nodes) == [[0]]


def test_a_number_no_float_can_hold_is_an_error_not_a_crash() -> None:
    with pytest.raises(DslError, match="not a finite number"):
        parse_filter("row_count > 1" + "0" * 400, MAPPING)
