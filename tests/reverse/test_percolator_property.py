"""Differential test: the percolator answers exactly what checking every search would,
and forward search over an index of the same documents answers the same.

Random documents and random searches (written as DSL text, so the parser and
the checker are exercised too) over a small vocabulary, so that values,
prefixes, trigrams and range buckets collide often. The percolator, with no
statistics and again after observing the documents and re-choosing its keys,
must give the same search ids as brute force: each compiled search's
predicate on each document. Removing searches must not disturb the others.

Forward search: the documents go into a tantivy index created by the search
package's own code (its schema, with the numeric filter fields the type schema
gives, and each document's prepared filter values), and every search, compiled
to a tantivy query (``reverse/forward.py``), must find exactly the documents
the predicate accepts.
"""

from __future__ import annotations

import hashlib
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import tantivy
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mlgraph.catalog import load_schema
from mlgraph.reverse import CompiledSearch, Percolator, compile_search, document_mapping
from mlgraph.reverse.forward import to_query
from mlgraph.reverse.keys import Key
from mlgraph.reverse.normal import MAX_CONJUNCTIONS
from mlgraph.reverse.stats import Statistics
from mlgraph.search.filter_fields import Kind
from mlgraph.search.filter_index import add_filters, prepare_for_index
from mlgraph.search.index import open_index, writer
from mlgraph.search.mapping import index_fields

SCHEMA = load_schema()
MAPPING = document_mapping(SCHEMA)
NOW = datetime(2025, 6, 1, tzinfo=UTC)

TEXT_POOL = ["ranking", "Ranking-v1", "rank", "ranking-v2", "churn", "churn model", "v1", "", "a"]
FIELDS: dict[str, list[Any]] = {
    "type": ["Model", "Dataset", "PipelineRun", "model"],
    "status": ["failed", "success", "running"],
    "name": TEXT_POOL,
    "tags.team": ["personalization", "ads", "Ads"],
    "tags": ["team::ads", "env::prod", "team::personalization"],
    "owners.id": ["alice", "bob", "carol"],
    "pipeline.name": TEXT_POOL,
    "description": ["a ranking model for churn", "churn", "Nothing here", "rank v1"],
    "row_count": [-1, 0, 0.5, 3, 7, 1_000_000, 2**53 + 1, -0.0],
    "allocation": [0.1, 0.5, 1.0],
    "updated_at": [NOW - timedelta(days=d) for d in (0, 1, 6, 8, 30, 400)],
    "started_at": [NOW - timedelta(hours=h) for h in (1, 30)],
    "active": [True, False],
}
NUMBERS = ["-1", "0", "0.5", "3", "7", "1e6", "9007199254740993", "-0.0"]
DATES = ["now-7d", "now", "now-2d", "2025-05-01", "'2025-05-31T00:00:00Z'", "2024-01-01"]
PATTERNS = ["rank*", "*ing*", "r?nk*", "churn", "*v1", "*", "?", "Ranking-v?", "ch*rn*l"]
SUBSTRINGS = ["ank", "ra", "v1", "", "model", "churn m", "x"]


def kind(field: str) -> Kind:
    info = MAPPING.lookup(field)
    assert info is not None, field
    return info.kind


def literal(field: str, draw: st.DrawFn) -> str:
    k = kind(field)
    if k is Kind.NUMBER:
        return draw(st.sampled_from(NUMBERS))
    if k is Kind.DATE:
        return draw(st.sampled_from(DATES))
    if k is Kind.BOOLEAN:
        return draw(st.sampled_from(["true", "false"]))
    value = str(draw(st.sampled_from(FIELDS[field])))
    return "'" + value.replace("'", "\\'") + "'"


@st.composite
def comparison(draw: st.DrawFn) -> str:
    field = draw(st.sampled_from(sorted(FIELDS)))
    k = kind(field)
    ops = ["EXISTS"]
    if k is not Kind.TEXT:
        ops += ["==", "!="]
    if k in (Kind.NUMBER, Kind.DATE):
        ops += [">", ">=", "<", "<="]
    if k in (Kind.KEYWORD, Kind.KEYWORDS, Kind.NUMBER, Kind.BOOLEAN):
        ops.append("IN")
    if k is Kind.KEYWORDS:
        ops.append("ANY")
    if k.textual:
        ops += ["CONTAINS", "LIKE"]
    op = draw(st.sampled_from(ops))
    if k is Kind.DATE and op in ("==", "!="):
        value = draw(st.sampled_from([d for d in DATES if not d.startswith("now")]))
        return f"{field} {op} {value}"
    not_ = "NOT " if draw(st.booleans()) and op in ("IN", "ANY", "CONTAINS", "LIKE") else ""
    if op == "EXISTS":
        return f"{field} {'NOT ' if draw(st.booleans()) else ''}EXISTS"
    if op in ("IN", "ANY"):
        values = [literal(field, draw) for _ in range(draw(st.integers(1, 3)))]
        return f"{field} {not_}{op} [{', '.join(values)}]"
    if op == "LIKE":
        return f"{field} {not_}LIKE '{draw(st.sampled_from(PATTERNS))}'"
    if op == "CONTAINS":
        return f"{field} {not_}CONTAINS '{draw(st.sampled_from(SUBSTRINGS))}'"
    return f"{field} {op} {literal(field, draw)}"


def searches() -> st.SearchStrategy[str]:
    def combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        pair = st.tuples(children, children)
        return st.one_of(
            pair.map(lambda p: f"({p[0]} AND {p[1]})"),
            pair.map(lambda p: f"({p[0]} OR {p[1]})"),
            children.map(lambda c: f"NOT ({c})"),
        )

    return st.recursive(comparison(), combine, max_leaves=8)


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for field, pool in FIELDS.items():
        if not draw(st.booleans()):
            continue
        values = draw(st.lists(st.sampled_from(pool), min_size=0, max_size=3))
        doc[field] = values if len(values) != 1 or draw(st.booleans()) else values[0]
    if draw(st.integers(0, 9)) == 0:  # values of the wrong kind are ignored, not fatal
        doc["row_count"] = "many"
        doc["active"] = "yes"
    return doc


def wide_search() -> str:
    """A search whose normal form is too large to split: it is checked whole."""
    clauses = [f"(row_count == {i} OR status == 's{i}')" for i in range(7)]
    assert MAX_CONJUNCTIONS < 2**7
    return " AND ".join(clauses)


class ShuffledStatistics(Statistics):
    """Made-up frequencies that favour one kind of key: each kind gets to be the anchor."""

    FAMILIES = ("=", "r", "^", "3", "?")

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.seed = seed
        self.favoured = self.FAMILIES[seed % len(self.FAMILIES)]

    def frequency(self, key: Key) -> float:
        digest = hashlib.blake2b(repr((self.seed, key)).encode(), digest_size=4).digest()
        share = int.from_bytes(digest) / 2**32
        return share * 1e-6 if key[1] == self.favoured else share


def brute_force(compiled: list[CompiledSearch], doc: dict[str, Any], now: float) -> list[int]:
    return [i for i, c in enumerate(compiled) if c.matches(doc, now)]


def forward(
    compiled: list[CompiledSearch], docs: list[dict[str, Any]], now: float
) -> list[list[int]]:
    """Per document, the searches whose forward query finds it in an index of ``docs``."""
    found: list[list[int]] = [[] for _ in docs]
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
        for s, c in enumerate(compiled):
            query = to_query(c.tree, index.schema, now)
            for _, address in searcher.search(query, max(1, len(docs))).hits:
                found[int(searcher.doc(address)["uri"][0])].append(s)
    return [sorted(ids) for ids in found]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(searches(), min_size=1, max_size=25),
    st.lists(documents(), max_size=12),
    st.integers(0, 2**16),
)
@example(  # numbers at the edge of what a float holds, and -0.0
    ["row_count == 9007199254740993", "row_count > 9007199254740993", "row_count >= 0"],
    [{"row_count": 2**53 + 1}, {"row_count": -0.0}, {"row_count": [2**53, 0.5]}],
    0,
)
def test_percolator_and_forward_search_agree_with_brute_force(
    texts: list[str], docs: list[dict[str, Any]], seed: int
) -> None:
    now = NOW.timestamp()
    compiled = [compile_search(t, MAPPING) for t in [*texts, wide_search()]]
    expected = [brute_force(compiled, d, now) for d in docs]

    # Forward search over an index of the documents finds what the predicate accepts.
    assert forward(compiled, docs, now) == expected

    # Anchors picked at random among each conjunction's options.
    shuffled = Percolator(MAPPING, ShuffledStatistics(seed))
    for i, c in enumerate(compiled):
        shuffled.add(i, c)
    assert [shuffled.match(d, now) for d in docs] == expected

    percolator = Percolator(MAPPING)
    for i, c in enumerate(compiled):
        percolator.add(i, c)
    assert [percolator.match(d, now) for d in docs] == expected

    # Keys chosen again from what the documents look like: the same answers.
    for d in docs:
        percolator.observe(d)
    percolator.rebalance()
    assert [percolator.match(d, now) for d in docs] == expected

    # Dropping every other search leaves the rest answering as before.
    for i in range(0, len(compiled), 2):
        percolator.remove(i)
    assert [percolator.match(d, now) for d in docs] == [
        [i for i in ids if i % 2] for ids in expected
    ]


def test_a_search_added_twice_counts_once_and_can_be_replaced() -> None:
    percolator = Percolator(MAPPING)
    percolator.add(1, compile_search("type == 'Model'", MAPPING))
    percolator.add(1, compile_search("type == 'Dataset'", MAPPING))
    percolator.add(2, compile_search("type == 'Dataset'", MAPPING))
    assert percolator.conjunctions == 1  # shared by both searches
    assert percolator.match({"type": "Dataset"}) == [1, 2]
    assert percolator.match({"type": "Model"}) == []
    assert percolator.remove(1) and not percolator.remove(1)
    assert percolator.match({"type": "Dataset"}) == [2]
    assert len(percolator) == 1


def test_only_candidates_are_checked() -> None:
    percolator = Percolator(MAPPING)
    for i in range(1000):
        percolator.add(i, compile_search(f"name == 'model-{i}' AND type == 'Model'", MAPPING))
    percolator.add(5000, compile_search("NOT status == 'failed'", MAPPING))
    assert percolator.always_checked == 1
    assert percolator.match({"name": "model-7", "type": "Model", "status": "ok"}) == [7, 5000]
    assert percolator.last_candidates == 2


def test_a_contradiction_never_matches() -> None:
    compiled = compile_search("type == 'Model' AND NOT type == 'Model'", MAPPING)
    assert compiled.conjunctions == ()
    percolator = Percolator(MAPPING)
    percolator.add(1, compiled)
    assert percolator.match({"type": "Model"}) == [] and percolator.conjunctions == 0
