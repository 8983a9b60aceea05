"""The document mapping is derived from the type schema, not written by hand."""

from __future__ import annotations

import pytest

from mlgraph.catalog import load_schema
from mlgraph.catalog.schema import build_schema
from mlgraph.errors import SchemaError
from mlgraph.search.filter_fields import Kind, document_mapping

MAPPING = document_mapping(load_schema())


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("uri", Kind.KEYWORD),
        ("type", Kind.KEYWORD),
        ("name", Kind.KEYWORD),
        ("description", Kind.TEXT),
        ("state", Kind.KEYWORD),
        ("updated_at", Kind.DATE),
        ("tags", Kind.KEYWORDS),
        ("tags.team", Kind.KEYWORD),
        ("tags.anything-at-all", Kind.KEYWORD),
        ("status", Kind.KEYWORD),  # PipelineRun, JobAttempt, AbTest
        ("stage", Kind.KEYWORD),
        ("framework", Kind.KEYWORD),
        ("hypothesis", Kind.TEXT),
        ("row_count", Kind.NUMBER),
        ("allocation", Kind.NUMBER),
        ("started_at", Kind.DATE),
        ("active", Kind.BOOLEAN),
        ("owners", Kind.KEYWORDS),
        ("owners.id", Kind.KEYWORDS),
        ("owners.name", Kind.KEYWORDS),
        ("owns.name", Kind.KEYWORDS),  # the inverse of owners
        ("pipeline.name", Kind.KEYWORDS),  # inferred on ModelInstance
        ("runs", Kind.KEYWORDS),  # the inverse of PipelineRun.pipeline
        ("cells.name", Kind.KEYWORDS),  # declared with inverse_of
    ],
)
def test_every_kind_of_path_is_there(path: str, kind: Kind) -> None:
    info = MAPPING.lookup(path)
    assert info is not None and info.kind is kind


def test_json_fields_and_unknown_paths_are_not() -> None:
    assert MAPPING.lookup("metrics") is None
    assert MAPPING.lookup("tags.") is None
    assert MAPPING.lookup("owners.email") is None


def test_a_field_two_types_declare_differently_becomes_text() -> None:
    info = MAPPING.lookup("version")
    assert info is not None and info.kind is Kind.KEYWORDS
    assert "Feature.version (number)" in MAPPING.conflicts["version"]


def test_relationship_uris_compare_by_id_too() -> None:
    owners = MAPPING.lookup("owners")
    assert owners is not None and owners.is_reference
    names = MAPPING.lookup("owners.name")
    assert names is not None and not names.is_reference
    assert "owners" in MAPPING.relationships


def test_a_new_type_is_a_declaration() -> None:
    schema = build_schema(
        {
            "types": {
                "User": {"kind": "user"},
                "Notebook": {
                    "kind": "notebook",
                    "fields": {"kernel": "string", "cells_run": "integer"},
                    "relationships": {"author": {"target": "User", "inverse": "notebooks"}},
                },
            }
        }
    )
    mapping = document_mapping(schema)
    assert {"kernel", "cells_run", "author.name", "notebooks.id"} <= set(mapping.fields)
    assert mapping.digest != MAPPING.digest


def test_a_field_named_like_a_base_field_is_refused() -> None:
    schema = build_schema({"types": {"Thing": {"kind": "thing", "fields": {"state": "string"}}}})
    with pytest.raises(SchemaError, match="Thing.state"):
        document_mapping(schema)
