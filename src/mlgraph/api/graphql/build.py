"""GraphQL types from the type schema, made at startup: a new entity type needs no code.

- the ``Entity`` interface: what every entity has (URI, name, owners, status
  times…) and ``related(relationship)`` for any relationship by name;
- one object type per entity type (``ModelInstance``), implementing it, with
  the type's fields (camelCase) and relationships, declared, inverse and
  inferred alike:
  - cardinality one: the object, or null;
  - lineage relationships read the way they are declared (``flow`` upstream or
    downstream: a model instance's ``features``, a feature's ``data``) fan out
    widely: relay connections (``edges { node }``, ``pageInfo``, ``totalCount``);
  - every other relationship (owners, membership, inferred associations,
    inverses) is a plain list of at most ``first``, with a ``…Connection``
    sibling to page through all of it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Literal

import strawberry

from mlgraph.api.graphql.naming import camel, checked
from mlgraph.api.graphql.nodes import (
    EdgeOrigin,
    EntityNode,
    Registry,
    attribute_field,
    common_fields,
    connection_resolver,
    list_resolver,
    one_resolver,
    related_resolver,
)
from mlgraph.api.graphql.paging import PageInfo
from mlgraph.api.graphql.scalars import JSON, graphql_type_of
from mlgraph.api.limits import Limits
from mlgraph.catalog.schema import EntityType, Flow, RelationshipView, Schema
from mlgraph.errors import SchemaError

log = logging.getLogger("mlgraph.api")

Shape = Literal["one", "list", "connection"]

# Names the API defines itself; an entity type may not take them.
RESERVED_TYPES = frozenset(
    {"Entity", "Query", "Mutation", "Subscription", "PageInfo", "Tag", "AsOf", "EntityState",
     "EdgeOrigin", "BigInt", "JSON", "DateTime", "EntityListing", "LineageNode", "Version",
     "Provenance", "FieldChange", "EdgeChange", "TypeCount", "Facet", "FacetValue", "SearchHit",
     "ImpactedEntity", "ImpactOwner", "LineageDirection", "SearchIndex"}
)  # fmt: skip
RESERVED_SUFFIXES = ("Connection", "Edge", "Result")

_PLAIN: dict[str, Any] = {
    # Dataclass equality would make every node equal to every other: keep identity.
    "__eq__": object.__eq__,
    "__hash__": object.__hash__,
    "__init__": EntityNode.__init__,
    "__module__": __name__,
}


def _type_name(node: EntityNode, *_: Any) -> str:
    return node.entity.type


def shape(view: RelationshipView) -> Shape:
    if view.cardinality == "one":
        return "one"
    if view.direction == "out" and view.declarations[0].flow is not Flow.NONE:
        return "connection"
    return "list"


def data_type(name: str, fields: Mapping[str, Any], description: str | None = None) -> type:
    """A plain GraphQL object type holding ``fields`` (name -> type), made at run time."""
    cls = type(name, (), {"__annotations__": dict(fields), "__module__": __name__})
    return strawberry.type(cls, name=name, description=description)


def describe(view: RelationshipView) -> str | None:
    rel = view.declarations[0]
    text = view.description or ""
    if view.direction == "in":
        text = f"{text} (the inverse of {', '.join(view.labels)})".strip()
    elif rel.rule:
        text = f"{text} (inferred: {rel.rule})".strip()
    return text or None


class Builder:
    """Makes the entity types of one schema; ``build()`` once, then use the results."""

    def __init__(self, schema: Schema, limits: Limits) -> None:
        self.schema = schema
        self.limits = limits
        self.registry = Registry()
        # An entity's object type is named after its schema type: no need for strawberry's
        # search of the implementations for every node returned as an Entity.
        self.interface: type = type(
            "Entity", (EntityNode,), {**_PLAIN, "resolve_type": staticmethod(_type_name)}
        )
        self.objects: dict[str, type] = {}
        self._connections: dict[str, tuple[type, type]] = {}
        self._interface_names: set[str] = set()

    def build(self) -> Registry:
        for name in self.schema.types:
            self._check_type_name(name)
            self.objects[name] = type(name, (self.interface,), dict(_PLAIN))
        shared = self._shared_relationships()
        self._fill_interface(shared)
        for name, etype in self.schema.types.items():
            self._fill_object(self.objects[name], etype, shared)
        for name, etype in self.schema.types.items():
            desc = etype.description or None
            strawberry.type(self.objects[name], name=name, description=desc)
            self.registry.classes[name] = self.objects[name]
        return self.registry

    @property
    def types(self) -> list[type]:
        """Every entity object type, for ``strawberry.Schema(types=…)``."""
        return list(self.objects.values())

    # -- naming ------------------------------------------------------------------

    def _check_type_name(self, name: str) -> None:
        checked(name, "entity type")
        if name in RESERVED_TYPES or name.endswith(RESERVED_SUFFIXES):
            raise SchemaError(
                f"entity type {name!r}: the GraphQL API reserves this name (and names ending "
                f"in {', '.join(RESERVED_SUFFIXES)}); rename the type"
            )

    # -- types -------------------------------------------------------------------

    def target(self, view: RelationshipView) -> tuple[str, type]:
        """The GraphQL type at the other end: the one object type, or the interface."""
        targets = view.targets
        if len(targets) == 1 and targets[0] in self.objects:
            return targets[0], self.objects[targets[0]]
        return "Entity", self.interface

    def connection(self, name: str, node: type) -> tuple[type, type]:
        """The connection and edge types of nodes of type ``name``, made once."""
        if name not in self._connections:
            edge = data_type(
                f"{name}Edge",
                {
                    "cursor": str,
                    "node": node,
                    "origin": EdgeOrigin,
                    "provenance": JSON | None,
                    "since_tx": int,
                },
                "One edge: the entity, whether it was inferred (with its provenance) and the "
                "transaction since which it holds.",
            )
            conn = data_type(
                f"{name}Connection",
                {
                    "edges": list[edge],  # type: ignore[valid-type]
                    "nodes": list[node],  # type: ignore[valid-type]
                    "page_info": PageInfo,
                    "total_count": int,
                },
                "A page of related entities, in URI order.",
            )
            self._connections[name] = (conn, edge)
        return self._connections[name]

    # -- fields ------------------------------------------------------------------

    def relationship_fields(self, view: RelationshipView, taken: set[str]) -> dict[str, Any]:
        """The GraphQL fields of one relationship (python attribute -> field)."""
        name = checked(camel(view.name), f"relationship {view.owner}.{view.name}")
        if name in taken:
            log.warning(
                "GraphQL: %s.%s is hidden by another field named %r; reach it with "
                "related(relationship: %r)", view.owner, view.name, name, view.name,
            )  # fmt: skip
            return {}
        taken.add(name)
        tname, node = self.target(view)
        kind, desc = shape(view), describe(view)
        f = strawberry.field
        if kind == "one":
            return {f"r_{view.name}": f(resolver=one_resolver(view), name=name,
                                        graphql_type=node | None, description=desc)}  # fmt: skip
        types = self.connection(tname, node)

        def paged(graphql_name: str) -> Any:
            return f(
                resolver=connection_resolver(view, types, self.limits.default_page),
                name=graphql_name,
                graphql_type=types[0],
                description=desc,
            )

        if kind == "connection":
            return {f"r_{view.name}": paged(name)}
        fields = {
            f"r_{view.name}": f(
                resolver=list_resolver(view, self.limits.max_page),
                name=name,
                graphql_type=list[node],  # type: ignore[valid-type]
                description=desc,
            )
        }
        if f"{name}Connection" not in taken:
            taken.add(f"{name}Connection")
            fields[f"c_{view.name}"] = paged(f"{name}Connection")
        return fields

    def _shared_relationships(self) -> dict[str, RelationshipView]:
        """Relationships every type has in the same shape: they go on the interface."""
        types = list(self.schema.types.values())
        shared: dict[str, RelationshipView] = {}
        for name, view in types[0].relationships.items():
            sig = (shape(view), view.targets)
            if all(
                name in t.relationships
                and (shape(t.relationships[name]), t.relationships[name].targets) == sig
                for t in types
            ):
                shared[name] = view
        return shared

    def _fill_interface(self, shared: Mapping[str, RelationshipView]) -> None:
        fields, annotations = common_fields()
        taken = {f.graphql_name for f in fields.values()} | {"related"}
        for view in shared.values():
            fields.update(self.relationship_fields(view, taken))
        types = self.connection("Entity", self.interface)
        fields["c_related"] = strawberry.field(
            name="related",
            resolver=related_resolver(types, self.limits.default_page),
            graphql_type=types[0],
            description="Any relationship of the entity's type, by its schema name "
            "(declared or inverse, e.g. 'features' or 'used_by').",
        )
        for attr, value in fields.items():
            setattr(self.interface, attr, value)
        self.interface.__annotations__ = annotations  # plain fields need them (dataclass)
        strawberry.interface(
            self.interface,
            name="Entity",
            description="What every entity has, whatever its type. Use `... on Type` for the "
            "fields and relationships of one type.",
        )
        self._interface_names = taken

    def _fill_object(
        self, cls: type, etype: EntityType, shared: Mapping[str, RelationshipView]
    ) -> None:
        taken = set(self._interface_names)
        annotations: dict[str, Any] = {}
        for fname, field in etype.fields.items():
            name = checked(camel(fname), f"field {etype.name}.{fname}")
            if name in taken:
                log.warning(
                    "GraphQL: %s.%s is hidden by the common field %r; it is in `attributes`",
                    etype.name, fname, name,
                )  # fmt: skip
                continue
            taken.add(name)
            kind = graphql_type_of(field.type)
            annotations[f"f_{fname}"] = kind
            desc = field.description or None
            setattr(cls, f"f_{fname}", attribute_field(name, kind, desc))
        cls.__annotations__ = annotations
        for rname, view in etype.relationships.items():
            if rname in shared:
                continue  # inherited from the interface
            for attr, value in self.relationship_fields(view, taken).items():
                setattr(cls, attr, value)
