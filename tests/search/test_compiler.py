"""The compiled query finds words through ``any_words`` and scores them per field: the
same hits, in the same order with the same scores, as asking each field in turn."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import pytest
import tantivy
from hypothesis import given, settings
from hypothesis import strategies as st

from mlgraph.catalog import Entity, Schema
from mlgraph.search import analysis, ranking
from mlgraph.search.compiler import TEXT_FIELDS, Compiler, _any, _boost
from mlgraph.search.documents import Related, Subject, build
from mlgraph.search.index import open_index, writer
from mlgraph.search.mapping import ANY_WORDS, index_fields
from mlgraph.search.query import QueryParser

Occur, Q = tantivy.Occur, tantivy.Query
VOCABULARY = ("ranking", "rankng", "model", "models", "team", "run", "pipeline", "v5", "weekly")
TYPES = ("Model", "Dataset", "PipelineRun", "Feature")


def _entity(rng: random.Random, i: int) -> Subject:
    def words(n: int) -> str:
        return "-".join(rng.choice(VOCABULARY) for _ in range(rng.randint(1, n)))

    kind = rng.choice(TYPES)
    entity = Entity(
        uri=f"aip://x/test/e{i}",
        type=kind,
        name=words(3),
        description=" ".join(words(2) for _ in range(rng.randint(0, 4))) or None,
        tags={"team": words(1)} if rng.random() < 0.5 else {},
    )
    owners = (Related("owners", f"aip://user/ldap/{words(1)}", "User", words(2)),)
    return Subject(entity, owners if rng.random() < 0.7 else ())


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory, schema: Schema) -> tantivy.Index:
    """300 documents built by the service's code from words of a small vocabulary."""
    rng = random.Random(5)
    index = open_index(Path(tmp_path_factory.mktemp("compiler")), index_fields(schema))
    w = writer(index)
    for i in range(300):
        w.add_document(build(schema, _entity(rng, i), now=0).to_tantivy())
    w.commit()
    w.wait_merging_threads()
    index.reload()
    return index


def _per_field(compiler: Compiler, terms: Sequence[str], prefix: str | None) -> tantivy.Query:
    """The reference: each word a required union of its boosted fields (and the prefix),
    every word as typed asked of each field."""
    scale = ranking.TEXT_SCALE
    words = []
    for i, term in enumerate(terms):
        options = [Q.boost_query(compiler.term(f, term), _boost(f)) for f in TEXT_FIELDS]
        if prefix is not None and i == len(terms) - 1:
            starts = Q.fuzzy_term_query(
                compiler.schema, "name_words", prefix, distance=0, prefix=True
            )
            options.append(Q.const_score_query(starts, ranking.PREFIX_MATCH * scale))
        words.append((Occur.Must, _any(options)))
    every = Q.boolean_query(
        [(Occur.Must, _any([compiler.term(f, t) for f in TEXT_FIELDS])) for t in terms]
    )
    return Q.boolean_query(
        [
            (Occur.Must, Q.boolean_query(words)),
            (Occur.Should, Q.const_score_query(every, ranking.ALL_TERMS)),
        ]
    )


def _hits(searcher: tantivy.Searcher, query: tantivy.Query) -> dict[int, float]:
    found = searcher.search(query, 1000).hits
    return {address.doc: score for score, address in found}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(VOCABULARY), min_size=1, max_size=3))
def test_any_words_finds_and_scores_as_the_fields_do(
    index: tantivy.Index, schema: Schema, words: list[str]
) -> None:
    searcher, compiler = index.searcher(), Compiler(index.schema)
    text = " ".join(words)
    compiled = compiler.compile(QueryParser(schema).parse(text))
    # Told the searcher, it leaves out the words a field never holds and scores the words
    # in more than `dense` documents on the hits only: same hits, same scores.
    for dense in (0, 20, 10_000):
        told = Compiler(index.schema, searcher=searcher, dense=dense)
        pruned = told.compile(QueryParser(schema).parse(text))
        assert _hits(searcher, pruned.ranked) == pytest.approx(_hits(searcher, compiled.ranked))
    terms = analysis.terms(text)
    prefix = terms[-1] if len(terms[-1]) >= ranking.MIN_PREFIX else None
    for term in terms:  # one posting list holds what the seven do
        assert (
            _hits(searcher, compiler.term(ANY_WORDS, term)).keys()
            == _hits(searcher, _any([compiler.term(f, term) for f in TEXT_FIELDS])).keys()
        )
    reference = _hits(searcher, _per_field(compiler, terms, prefix))
    # The compiled query adds the name tiers: compare where they do not apply.
    tierless = Q.boolean_query(
        [(Occur.Must, compiled.ranked), (Occur.MustNot, name_tiers(compiler, text))]
    )
    got = _hits(searcher, tierless)
    plain = {d: s for d, s in reference.items() if d in got}
    assert got.keys() == plain.keys()
    assert set(reference) >= set(got)
    for doc, score in got.items():
        assert score == pytest.approx(plain[doc], rel=1e-4)
    assert _hits(searcher, compiled.match).keys() == reference.keys()


def name_tiers(compiler: Compiler, text: str) -> tantivy.Query:
    """Documents whose name starts with the query's terms (the exact and prefix tiers)."""
    key = analysis.name_key(text)
    return Q.fuzzy_term_query(compiler.schema, "name_key", key, distance=0, prefix=True)
