"""The saved-search DSL: what parses, what it means, and errors that point at the fault."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlgraph.catalog import load_schema
from mlgraph.reverse import DslError, compile_search, document_mapping
from mlgraph.reverse.query import All, Atom, Either, Not, Op
from mlgraph.reverse.syntax import Comparison, Junction, parse

MAPPING = document_mapping(load_schema())


def tree(text: str) -> object:
    return compile_search(text, MAPPING).tree


def test_the_design_example_compiles_to_one_conjunction() -> None:
    compiled = compile_search(
        "type == 'Model' AND tags.team == 'personalization' AND owners ANY ['alice', 'bob']",
        MAPPING,
    )
    assert compiled.tree == All(
        (
            Atom("type", Op.EQ, ("model",)),
            Atom("tags.team", Op.EQ, ("personalization",)),
            Atom("owners.id", Op.EQ, ("alice", "bob")),
        )
    )
    assert compiled.conjunctions is not None and len(compiled.conjunctions) == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("status != 'failed'", Not(Atom("status", Op.EQ, ("failed",)))),
        ("NOT status == 'failed'", Not(Atom("status", Op.EQ, ("failed",)))),
        ("NOT NOT status == 'ok'", Atom("status", Op.EQ, ("ok",))),
        ("type IN ['Model', 'model', 'Dataset']", Atom("type", Op.EQ, ("dataset", "model"))),
        ("type NOT IN ['Model']", Not(Atom("type", Op.EQ, ("model",)))),
        ("row_count >= 10", Atom("row_count", Op.GE, (10.0,))),
        ("run_number < 2.5e3", Atom("run_number", Op.LT, (2500.0,))),
        ("updated_at > now-7d", Atom("updated_at", Op.GT, (-7 * 86400.0,), relative=True)),
        ("updated_at <= now + 2h", Atom("updated_at", Op.LE, (7200.0,), relative=True)),
        ("updated_at > 1970-01-02", Atom("updated_at", Op.GT, (86400.0,))),
        ("updated_at > '1970-01-01T01:00:00Z'", Atom("updated_at", Op.GT, (3600.0,))),
        ("name LIKE 'Ranking*'", Atom("name", Op.LIKE, ("ranking*",))),
        ("description CONTAINS 'Churn'", Atom("description", Op.CONTAINS, ("churn",))),
        ("owners NOT EXISTS", Not(Atom("owners", Op.EXISTS))),
        ("active == TRUE", Atom("active", Op.EQ, (True,))),
        ("pipeline.name == 'train'", Atom("pipeline.name", Op.EQ, ("train",))),
        ("tags.`cost center` == 'x'", Atom("tags.cost center", Op.EQ, ("x",))),
        (
            "owners == 'aip://user/identity/alice'",
            Atom("owners", Op.EQ, ("aip://user/identity/alice",)),
        ),
        (
            "owners ANY ['aip://user/identity/alice', 'bob']",
            Either(
                (
                    Atom("owners", Op.EQ, ("aip://user/identity/alice",)),
                    Atom("owners.id", Op.EQ, ("bob",)),
                )
            ),
        ),
        (
            "a_or_b == 1 OR (status == 'x' and stage == 'y')".replace("a_or_b", "row_count"),
            Either(
                (
                    Atom("row_count", Op.EQ, (1,)),
                    All((Atom("status", Op.EQ, ("x",)), Atom("stage", Op.EQ, ("y",)))),
                )
            ),
        ),
        ("status == 'it\\'s'  # a comment\n", Atom("status", Op.EQ, ("it's",))),
    ],
)
def test_texts_compile_to_their_meaning(text: str, expected: object) -> None:
    assert tree(text) == expected


def test_keywords_are_case_insensitive_and_whitespace_free() -> None:
    assert tree("type=='Model'and not(status=='x')") == tree(
        "type == 'Model' AND NOT (status == 'x')"
    )


@pytest.mark.parametrize(
    ("text", "reason", "line", "column"),
    [
        # syntax
        ("", "the search is empty", 1, 1),
        ("# only a comment", "the search is empty", 1, 1),
        ("type = 'Model'", "'=' is not an operator: did you mean '=='?", 1, 6),
        ("type == Model", "'Model' is not a value: quote text", 1, 9),
        ("type == 'Model", "unterminated text", 1, 9),
        ("type == 'Model' AND", "the search ends too early", 1, 20),
        ("(type == 'Model'", "the search ends too early: expected ')'", 1, 17),
        ("type 'Model'", "expected an operator", 1, 6),
        ("type == 'Model' status == 'x'", "unexpected the word 'status'", 1, 17),
        ("type == 'a' AND\n  AND status == 'x'", "unexpected 'AND'", 2, 3),
        ("owners ANY ['a' 'b']", "unexpected the value 'b'", 1, 17),
        ("type == 'a' ) ", "unexpected ')'", 1, 13),
        ("row_count > 1 $", "unexpected character '$'", 1, 15),
        ("row_count > 1e999", "1e999 is not a finite number", 1, 13),
        ("tags.`team == 'x'", "unterminated field name", 1, 6),
        # fields
        ("tagz.team == 'x'", "unknown field 'tagz.team' (did you mean 'tags.team'?)", 1, 1),
        ("typ == 'Model'", "unknown field 'typ' (did you mean 'type'?)", 1, 1),
        ("owner.name == 'x'", "did you mean 'owners.name'?", 1, 1),
        ("type == 'a' OR\n  pipelin.name == 'x'", "did you mean 'pipeline.name'?", 2, 3),
        ("zzzzzz == 'x'", "unknown field 'zzzzzz'", 1, 1),
        # operators
        ("description == 'x'", "== does not apply to 'description', a text field", 1, 13),
        ("status > 'a'", "only numbers and dates are ordered", 1, 8),
        ("type ANY ['Model']", "use IN to give one field several values", 1, 6),
        ("row_count CONTAINS '1'", "CONTAINS does not apply to 'row_count'", 1, 11),
        ("updated_at IN [2025-01-01]", "IN does not apply to 'updated_at', a date field", 1, 12),
        ("active > true", "> does not apply to 'active', a boolean field", 1, 8),
        ("row_count IN []", "IN needs at least one value", 1, 11),
        # literals
        ("row_count > 'many'", "'row_count' is a number field; got the text 'many'", 1, 13),
        ("status == 5", "'status' holds text: write it in quotes, e.g. '5'", 1, 11),
        ("active == 'yes'", "'active' is a boolean field", 1, 11),
        ("updated_at > '2025-13-01'", "is not a date", 1, 14),
        ("updated_at > 42", "'updated_at' is a date field", 1, 14),
        ("updated_at == now-1d", "a relative date (now-7d) moves", 1, 15),
        ("row_count > now", "'row_count' is a number field; got a relative date", 1, 13),
        ("name LIKE 3", "LIKE takes text in quotes", 1, 11),
        ("type IN ['Model', 3]", "'type' holds text", 1, 19),
        ("version > 3", "> does not apply to 'version', a keyword-list field", 1, 9),
    ],
)
def test_errors_say_what_and_where(text: str, reason: str, line: int, column: int) -> None:
    with pytest.raises(DslError) as caught:
        compile_search(text, MAPPING)
    error = caught.value
    assert reason in error.reason
    assert (error.line, error.column) == (line, column)
    # The excerpt shows the line at fault, indented by two, and a caret under the column.
    source_line, carets = error.excerpt.split("\n")
    assert source_line[2:] == (text.splitlines() or [""])[line - 1]
    assert carets.index("^") == 2 + column - 1


def test_excerpt_marks_the_whole_fault() -> None:
    with pytest.raises(DslError) as caught:
        compile_search("type == 'Model' AND tagz.team == 'x'", MAPPING)
    assert caught.value.excerpt == (
        "  type == 'Model' AND tagz.team == 'x'\n                      ^^^^^^^^^"
    )
    assert "(line 1, column 21)" in str(caught.value)


def test_a_very_long_search_is_refused() -> None:
    with pytest.raises(DslError, match="at most"):
        parse("type == 'x' OR " * 2000 + "type == 'y'")


def test_syntax_tree_keeps_positions() -> None:
    parsed = parse("type == 'Model'\n  AND owners EXISTS")
    assert isinstance(parsed, Junction)
    second = parsed.items[1]
    assert isinstance(second, Comparison)
    assert (second.path.span.line, second.path.span.column) == (2, 7)


def test_the_examples_in_the_docs_compile() -> None:
    docs = Path(__file__).parents[2] / "docs" / "dsl.md"
    examples = docs.read_text().split("## Examples", 1)[1].split("```")[1]
    searches = [s for s in examples.split("\n\n") if s.strip()]
    assert len(searches) >= 6
    for text in searches:
        compile_search(text, MAPPING)
