"""What a compiled search means over a document, its normal form and its stored form."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from mlgraph.catalog import load_schema
from mlgraph.reverse import COMPILER_VERSION, compile_search, document_mapping
from mlgraph.reverse.compiler import StaleCompilation, load_compiled
from mlgraph.reverse.normal import disjunctive
from mlgraph.reverse.query import Atom, Op

MAPPING = document_mapping(load_schema())
NOW = datetime(2025, 6, 1, tzinfo=UTC).timestamp()


def matches(text: str, doc: dict[str, Any]) -> bool:
    return compile_search(text, MAPPING).matches(doc, NOW)


@pytest.mark.parametrize(
    ("text", "doc", "expected"),
    [
        ("type == 'Model'", {"type": "model"}, True),  # keywords ignore case
        ("status != 'failed'", {}, True),  # a missing field is not 'failed'
        ("status == 'failed'", {}, False),
        ("owners.id == 'bob'", {"owners.id": ["alice", "bob"]}, True),  # any value
        ("owners.id != 'bob'", {"owners.id": ["alice", "bob"]}, False),
        ("owners ANY ['bob', 'carol']", {"owners.id": ["alice", "bob"]}, True),
        ("owners == 'aip://user/x/bob'", {"owners": ["aip://user/x/bob"]}, True),
        ("tags == 'team::ads'", {"tags": ["team::ads", "env::prod"]}, True),
        ("row_count > 10", {"row_count": [1, 11]}, True),
        ("row_count > 10 AND row_count < 5", {"row_count": [1, 11]}, True),  # two values
        ("row_count > 10 AND row_count < 5", {"row_count": 7}, False),
        ("row_count == 3", {"row_count": 3.0}, True),
        ("row_count > 1", {"row_count": "many"}, False),  # wrong kind: no value
        ("updated_at > now-7d", {"updated_at": datetime(2025, 5, 30, tzinfo=UTC)}, True),
        ("updated_at > now-1d", {"updated_at": datetime(2025, 5, 30, tzinfo=UTC)}, False),
        ("updated_at >= 2025-05-30", {"updated_at": "2025-05-30T00:00:00+00:00"}, True),
        ("updated_at == 2025-05-30", {"updated_at": datetime(2025, 5, 30)}, True),  # naive: UTC
        ("name LIKE 'rank*v?'", {"name": "Ranking-V2"}, True),
        ("name LIKE 'rank*v?'", {"name": "ranking-v21"}, False),
        ("name LIKE 'a.c'", {"name": "abc"}, False),  # only * and ? are wild
        ("description CONTAINS 'CHURN'", {"description": "Predicts churn."}, True),
        ("description NOT CONTAINS 'churn'", {}, True),
        ("owners EXISTS", {"owners": []}, False),  # an empty list is no value
        ("active == false", {"active": False}, True),
        ("active == false", {"active": 0}, False),
        ("version == '2'", {"version": 2}, True),  # the conflicting field holds text
    ],
)
def test_meaning(text: str, doc: dict[str, Any], expected: bool) -> None:
    assert matches(text, doc) is expected


def test_the_normal_form_distributes_and_simplifies() -> None:
    compiled = compile_search(
        "(type == 'a' OR type == 'b') AND (status == 'x' OR NOT status == 'x')", MAPPING
    )
    assert compiled.conjunctions is not None
    assert len(compiled.conjunctions) == 4  # contradictions and duplicates dropped
    absorbed = compile_search("type == 'a' OR (type == 'a' AND status == 'x')", MAPPING)
    assert absorbed.conjunctions == (((Atom("type", Op.EQ, ("a",)), True),),)
    de_morgan = compile_search("NOT (type == 'a' OR status == 'x')", MAPPING)
    assert de_morgan.conjunctions == (
        ((Atom("status", Op.EQ, ("x",)), False), (Atom("type", Op.EQ, ("a",)), False)),
    )


def test_a_search_too_large_to_split_is_still_correct() -> None:
    text = " AND ".join(f"(row_count == {i} OR status == 's{i}')" for i in range(8))
    compiled = compile_search(text, MAPPING)
    assert compiled.conjunctions is None
    assert disjunctive(compiled.tree, limit=1000) is not None
    assert compiled.matches({"row_count": 0, "status": ["s1", "s2", "s3", "s4", "s5", "s6", "s7"]})


def test_the_stored_form_round_trips_and_knows_its_version() -> None:
    compiled = compile_search("type IN ['Model'] AND updated_at > now-7d", MAPPING)
    stored = compiled.to_json()
    assert stored["version"] == COMPILER_VERSION
    loaded = load_compiled(compiled.text, stored)
    assert loaded.tree == compiled.tree and loaded.kinds == compiled.kinds
    with pytest.raises(StaleCompilation):
        load_compiled(compiled.text, {**stored, "version": COMPILER_VERSION - 1})
