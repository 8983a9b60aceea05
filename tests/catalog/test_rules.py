"""Inference rules: declared on relationships as paths, compiled and checked at load time."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlgraph.catalog import Entity, Schema, load_schema
from mlgraph.catalog.rules import parse_path
from mlgraph.catalog.validation import validate_entity
from mlgraph.errors import SchemaError, ValidationError


def test_the_builtin_rules_compile_in_dependency_order(schema: Schema) -> None:
    order = [rule.label for rule in schema.rules]
    assert order.index("ModelInstance.associated_ab_tests") < order.index(
        "Model.associated_ab_tests"
    )
    by_label = {rule.label: rule for rule in schema.rules}
    instance = by_label["ModelInstance.associated_ab_tests"]
    assert [sorted(h.out) for h in instance.hops] == [
        ["ModelInstance.pipeline_run"], ["PipelineRun.ab_test_cells"], ["AbTestCell.test"]
    ]  # fmt: skip
    model = by_label["Model.associated_ab_tests"]  # `instances` is an inverse: walked inwards
    assert [sorted(h.inward) for h in model.hops] == [["ModelInstance.model"], []]
    feature = by_label["Feature.consuming_models"]  # `~features` walks features backwards
    assert sorted(feature.hops[0].inward) == ["ModelInstance.features"]
    assert feature.targets == {"Model"}
    assert schema.type("AbTest").relationship("models").declarations[0].inferred


def test_paths_parse_with_backward_steps() -> None:
    steps = parse_path(" ~features /model ")
    assert [(s.name, s.backwards) for s in steps] == [("features", True), ("model", False)]


def write(tmp_path: Path, relationships: str) -> Path:
    path = tmp_path / "types.yaml"
    path.write_text(
        "types:\n"
        "  A:\n    kind: a\n    relationships:\n      b: {target: B, inverse: as}\n"
        f"{relationships}"
        "  B:\n    kind: b\n    relationships:\n      c: {target: C}\n"
        "  C: {kind: c}\n"
    )
    return path


def test_a_rule_adds_a_relationship_with_no_code(tmp_path: Path) -> None:
    schema = load_schema(write(tmp_path, "      cs: {target: C, inverse: as_, rule: b / c}\n"))
    (rule,) = schema.rules
    assert str(rule) == "A.cs := b / c"
    assert schema.type("C").relationship("as_").labels == ("A.cs",)


@pytest.mark.parametrize(
    ("declaration", "message"),
    [
        ("      cs: {target: C, rule: b / zz}\n", "A.cs: rule 'b / zz': step 2 'zz' is not a "
         "relationship of B"),
        ("      cs: {target: B, rule: b / c}\n", "the path ends on C, but the relationship "
         "targets B"),
        ("      cs: {target: C, rule: b // c}\n", "step 2 '' is not a relationship name"),
        ("      cs: {target: C, rule: ~zz}\n", "step 1 '~zz' is not a relationship of A"),
        ("      x: {target: A, rule: y}\n      y: {target: A, rule: x}\n",
         "rules depend on each other in a cycle"),
        ("      cs: {target: C, rule: 3}\n", "'rule' must be a relationship path"),
    ],
)  # fmt: skip
def test_a_bad_rule_is_a_clear_error(tmp_path: Path, declaration: str, message: str) -> None:
    with pytest.raises(SchemaError) as err:
        load_schema(write(tmp_path, declaration))
    assert message in str(err.value)


def test_no_source_may_state_an_inferred_relationship(schema: Schema) -> None:
    instance = Entity(
        uri="aip://model/registry/i1",
        type="ModelInstance",
        references={"associated_ab_tests": ("aip://ab-test/experimentation/1",)},
    )
    with pytest.raises(ValidationError, match="is inferred .* no source states it"):
        validate_entity(schema, instance)
