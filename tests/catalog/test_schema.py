from __future__ import annotations

from pathlib import Path

import pytest

from mlgraph.catalog import Flow, Schema, load_schema
from mlgraph.errors import SchemaError, ValidationError

TYPES = [
    "User", "Group", "Dataset", "DatasetVersion", "Feature", "Pipeline", "PipelineRun",
    "JobAttempt", "Model", "ModelInstance", "AbTest", "AbTestCell",
]  # fmt: skip


def test_the_builtin_schema_declares_every_type(schema: Schema) -> None:
    assert sorted(schema.types) == sorted(TYPES)


def test_relationships_have_their_inverses(schema: Schema) -> None:
    run = schema.type("ModelInstance").relationship("pipeline_run")
    assert (run.direction, run.cardinality, run.targets) == ("out", "one", ("PipelineRun",))
    back = schema.type("PipelineRun").relationship("model_instances")
    assert back.direction == "in"
    assert back.labels == ("ModelInstance.pipeline_run",)
    assert back.targets == ("ModelInstance",)
    assert back.cardinality == "many"


def test_inverse_of_agrees_with_the_declaration(schema: Schema) -> None:
    cells = schema.type("AbTest").relationship("cells")
    assert cells.direction == "in"
    assert cells.labels == ("AbTestCell.test",)


def test_every_type_has_owners_and_people_own_things(schema: Schema) -> None:
    for t in schema.types.values():
        assert t.relationship("owners").targets == ("User", "Group")
    owns = schema.type("Group").relationship("owns")
    assert set(owns.targets) == set(TYPES)


def test_lineage_labels_follow_the_declared_flow(schema: Schema) -> None:
    out, inward = schema.lineage_labels("upstream")
    assert "ModelInstance.features" in out
    assert "PipelineRun.ab_test_cells" in inward
    assert schema.edge("ModelInstance.features").flow is Flow.UPSTREAM
    every = out | inward
    assert not any(label.endswith(".owners") for label in every)


def test_unknown_names_suggest_the_closest(schema: Schema) -> None:
    with pytest.raises(ValidationError, match="did you mean 'ModelInstance'"):
        schema.type("ModelInstanc")
    with pytest.raises(ValidationError, match="did you mean 'pipeline_run'"):
        schema.type("ModelInstance").relationship("pipelinerun")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "types.yaml"
    path.write_text(text)
    return path


def test_adding_a_type_is_adding_a_declaration(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
types:
  User: {kind: user}
  Dashboard:
    kind: dashboard
    fields: {url: string, views: integer}
    relationships:
      author: {target: User, cardinality: one, inverse: dashboards}
""",
    )
    schema = load_schema(path)
    assert schema.type("Dashboard").field("views").type == "integer"
    assert schema.type("User").relationship("dashboards").labels == ("Dashboard.author",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "types:\n  A:\n    kind: a\n    relationships:\n      b: {target: Bee}\n",
            "types.yaml: A.b: unknown target type 'Bee'",
        ),
        (
            "types:\n  A: {kind: a}\n  A: {kind: b}\n",
            "duplicate name 'A' at line 3",
        ),
        (
            "types:\n  A:\n    kind: a\n    fields: {x: string}\n    relationships:\n"
            "      x: {target: A}\n",
            "A.x: duplicate name: A has a field 'x'",
        ),
        (
            "types:\n  A:\n    kind: a\n    relationships:\n      b: {target: B, inverse: a}\n"
            "  B:\n    kind: b\n    relationships:\n      a: {target: A}\n",
            "B.a: duplicate name: B declares 'a' itself",
        ),
        (
            "types:\n  A:\n    kind: a\n    relationships:\n      b: {target: B, inverse: as}\n"
            "  B:\n    kind: b\n    relationships:\n      a_list: {inverse_of: A.b}\n",
            "B.a_list: inverse mismatch: this is declared the inverse of A.b, "
            "but A.b names its inverse 'as'",
        ),
        (
            "types:\n  A:\n    kind: a\n    relationships:\n      b: {target: A}\n"
            "  B:\n    kind: b\n    relationships:\n      a_list: {inverse_of: A.b}\n",
            "B.a_list: inverse mismatch: A.b targets ['A'], not B",
        ),
        (
            "types:\n  A:\n    kind: a\n    relationships:\n"
            "      b: {target: A, inverse: c, inverse_cardinality: one}\n"
            "      d: {target: A, inverse: c}\n",
            "A.c: inverse mismatch: A.b, A.d disagree on its cardinality",
        ),
        ("types:\n  A:\n    kind: a\n    fields: {x: str}\n", "A.x: unknown field type 'str'"),
        ("types:\n  A: {kind: Big Kind}\n", "'kind' must be a URI segment"),
        (
            "types:\n  A:\n    kind: a\n    relationships:\n      b: {inverse_of: A.zz}\n",
            "'inverse_of: A.zz' names no declared relationship",
        ),
        ("types: {}\n", "no types are declared"),
        ("types: [\n", "not valid YAML"),
    ],
)
def test_a_bad_declaration_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(SchemaError) as err:
        load_schema(write(tmp_path, text))
    assert message in str(err.value)
