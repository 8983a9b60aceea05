"""The query language: what parses, and the errors that say what is wrong."""

from __future__ import annotations

import re

import pytest

from mlgraph.catalog import Schema
from mlgraph.search.highlight import Highlighter, edit_distance
from mlgraph.search.query import Filter, QueryError, QueryParser, Text


@pytest.fixture
def parser(schema: Schema) -> QueryParser:
    return QueryParser(schema)


def test_words_filters_phrases_and_negation(parser: QueryParser) -> None:
    parsed = parser.parse(
        'ranking "weekly trainer" type:dataset-version,Dataset owner:Alice tag:team=Perso '
        'tag:env -type:JobAttempt -draft state:deprecated owner:"Alice Chen"'
    )
    assert parsed.texts == (
        Text("ranking"),
        Text("weekly trainer", phrase=True),
        Text("draft", negated=True),
    )
    assert parsed.filters == (
        Filter("type", ("DatasetVersion", "Dataset")),
        Filter("owner", ("alice",)),
        Filter("tag", ("team::perso",)),
        Filter("tag", ("env",)),
        Filter("type", ("JobAttempt",), negated=True),
        Filter("state", ("deprecated",)),
        Filter("owner", ("alice chen",)),
    )
    assert parsed.positive_text == "ranking weekly trainer"


def test_a_uri_is_a_uri_not_a_filter(parser: QueryParser) -> None:
    parsed = parser.parse("aip://model/registry/ranking-model")
    assert parsed.uris == ("aip://model/registry/ranking-model",) and not parsed.filters


def test_quoted_text_with_a_colon_is_text(parser: QueryParser) -> None:
    assert parser.parse('"ndcg@10:0.5"').texts == (Text("ndcg@10:0.5"),)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("typ:Model", "unknown filter 'typ:' at character 1 (did you mean 'type'?)"),
        ("ranking colour:red", "unknown filter 'colour:' at character 9"),
        ("type:Modle", "type:Modle: no such type (did you mean 'Model'?)"),
        ("state:gone", "state:gone: no such state"),
        ("owner:", "owner: needs a value, e.g. owner:alice"),
        ("tag:=x", "tag:=x: the tag key is missing"),
        ("tag:team=", "the value after '=' is missing"),
        ('"unterminated', "unterminated quote at character 1"),
        ("x" * 501, "at most 500"),
    ],
)
def test_bad_queries_say_what_is_wrong(parser: QueryParser, query: str, message: str) -> None:
    with pytest.raises(QueryError, match=re.escape(message)):
        parser.parse(query)


def test_edit_distance_counts_a_swap_as_one() -> None:
    assert edit_distance("alcie", "alice", 2) == 1
    assert edit_distance("rankng", "ranking", 2) == 1
    assert edit_distance("abc", "xyz", 1) == 2  # capped at limit + 1


def test_highlights_mark_words_prefixes_and_typos() -> None:
    marker = Highlighter(("ranking", "model"), prefix="mod")
    assert marker.snippet("rankingModelV5") == "<b>ranking</b><b>Model</b>V5"
    typo = Highlighter(("rankng",), prefix=None)
    assert typo.snippet("the ranking-model <script>") == ("the <b>ranking</b>-model &lt;script&gt;")
    long = "word " * 60 + "ranking model " + "tail " * 60
    snippet = marker.snippet(long)
    assert snippet is not None and snippet.startswith("…") and snippet.endswith("…")
    assert "<b>ranking</b> <b>model</b>" in snippet and len(snippet) < 220
    assert marker.snippet("nothing here") is None
