"""The entity model: URIs, the type schema and the normalized Entity."""

from mlgraph.catalog.entity import Entity, LifecycleState
from mlgraph.catalog.fields import Field, FieldType
from mlgraph.catalog.schema import (
    EntityType,
    Flow,
    Relationship,
    RelationshipView,
    Schema,
    load_schema,
)
from mlgraph.catalog.uri import URI, format_uri, parse_uri

__all__ = [
    "URI",
    "Entity",
    "EntityType",
    "Field",
    "FieldType",
    "Flow",
    "LifecycleState",
    "Relationship",
    "RelationshipView",
    "Schema",
    "format_uri",
    "load_schema",
    "parse_uri",
]
