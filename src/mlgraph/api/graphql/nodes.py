"""Entities as GraphQL objects: the data each carries, and the resolvers of its fields.

A node is an entity read at one point (now, or a past transaction); all it
reaches is read at that same point. Relationship resolvers ask the request's
loaders, so siblings resolve together.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry.types import Info

from mlgraph.api.graphql.context import Context
from mlgraph.api.graphql.naming import camel
from mlgraph.api.graphql.paging import encode, offset_after, page_info
from mlgraph.api.graphql.scalars import JSON, jsonable
from mlgraph.api.loaders import NeighborKey
from mlgraph.catalog.entity import Entity
from mlgraph.catalog.schema import RelationshipView
from mlgraph.store.batch_reads import NeighborPage

Resolver = Callable[..., Any]


class EntityNode:
    """The Python side of every entity object type: an entity read at ``tx``.

    ``pins`` fixes what a cardinality-one relationship resolves to (see
    ``model(id)`` in docs/api.md: a model seen through one of its instances).
    """

    def __init__(
        self, entity: Entity, tx: int | None = None, pins: Mapping[str, str] | None = None
    ) -> None:
        self.entity = entity
        self.tx = tx
        self.pins: Mapping[str, str] = pins or {}

    @property
    def uri(self) -> str:
        return self.entity.uri

    # What GraphQL reads for the plain fields, by their Python names (``c_`` common,
    # ``f_`` a field of the type). Plain attribute reads take strawberry's fast path:
    # no resolver call, no argument handling, which is most of a wide answer's cost.

    @property
    def c_id(self) -> str:
        return self.entity.uri

    @property
    def c_uri(self) -> str:
        return self.entity.uri

    @property
    def c_type(self) -> str:
        return self.entity.type

    @property
    def c_name(self) -> str | None:
        return self.entity.name

    @property
    def c_description(self) -> str | None:
        return self.entity.description

    @property
    def c_state(self) -> EntityState:
        return EntityState(self.entity.state.value)

    @property
    def c_tags(self) -> list[Tag]:
        return [Tag(key=k, value=v) for k, v in sorted(self.entity.tags.items())]

    @property
    def c_attributes(self) -> Any:
        return jsonable(self.entity.attributes)

    @property
    def c_source_created_at(self) -> datetime | None:
        return self.entity.source_created_at

    @property
    def c_source_updated_at(self) -> datetime | None:
        return self.entity.source_updated_at

    @property
    def c_as_of_tx(self) -> int | None:
        return self.tx

    def __getattr__(self, name: str) -> Any:
        # Only reached for names the class does not have: the type's own fields.
        entity = self.__dict__.get("entity")
        if entity is None or not name.startswith("f_"):
            raise AttributeError(name)
        value = entity.attributes.get(name[2:])
        return list(value) if isinstance(value, tuple) else value


class Registry:
    """The object class of every entity type, for wrapping entities into nodes."""

    def __init__(self) -> None:
        self.classes: dict[str, type[EntityNode]] = {}

    def wrap(
        self, entity: Entity, tx: int | None, pins: Mapping[str, str] | None = None
    ) -> EntityNode | None:
        cls = self.classes.get(entity.type)
        return None if cls is None else cls(entity, tx, pins)


@strawberry.enum(description="How much mlgraph knows about an entity.")
class EntityState(Enum):
    HYDRATED = "hydrated"  # read from its source of truth
    STUB = "stub"  # only referred to by other entities so far


@strawberry.enum(description="Whether a source stated an edge or the enricher inferred it.")
class EdgeOrigin(Enum):
    ASSERTED = "asserted"
    INFERRED = "inferred"


@strawberry.type(description="A key-value tag, such as team=personalization.")
class Tag:
    key: str
    value: str


# -- the fields every entity has -------------------------------------------------------


async def _last_hydrated_at(root: EntityNode, info: Info[Context, None]) -> datetime | None:
    status = await info.context.loaders.statuses.load(root.entity.uri)
    return None if status is None else status.hydrated_at


async def _last_enriched_at(root: EntityNode, info: Info[Context, None]) -> datetime | None:
    status = await info.context.loaders.statuses.load(root.entity.uri)
    return None if status is None else status.enriched_at


async def _unresolved(root: EntityNode, info: Info[Context, None]) -> str | None:
    status = await info.context.loaders.statuses.load(root.entity.uri)
    return None if status is None else status.unresolved


def common_fields() -> tuple[dict[str, Any], dict[str, Any]]:
    """The fields of the Entity interface that do not come from the type schema:
    (Python name -> field, Python name -> type) for the ``c_`` properties of
    EntityNode, whose GraphQL names are the camelCase of the rest."""
    plain: dict[str, tuple[Any, str | None]] = {
        "id": (strawberry.ID, "The entity's URI, as an ID."),
        "uri": (str, "The global URI: {scheme}://{kind}/{source}/{id}."),
        "type": (str, "The entity type, from the type schema."),
        "name": (str | None, None),
        "description": (str | None, None),
        "state": (EntityState, None),
        "tags": (list[Tag], None),
        "attributes": (JSON, "Every field of the type, as JSON."),
        "source_created_at": (datetime | None, None),
        "source_updated_at": (datetime | None, None),
        "as_of_tx": (int | None, "The transaction this entity was read at; null when read now."),
    }
    fields: dict[str, Any] = {}
    types: dict[str, Any] = {}
    for name, (kind, description) in plain.items():
        fields[f"c_{name}"] = strawberry.field(
            name=camel(name), graphql_type=kind, description=description
        )
        types[f"c_{name}"] = kind
    for name, resolver, description in (
        ("lastHydratedAt", _last_hydrated_at,
         "When its source was last read (even if nothing had changed)."),
        ("lastEnrichedAt", _last_enriched_at,
         "When the enricher last handled a change to it: inferred relationships are at "
         "least this fresh."),
        ("unresolvedReason", _unresolved, "Why this stub cannot be hydrated, when known."),
    ):  # fmt: skip
        fields[f"c_{name}"] = strawberry.field(
            resolver=resolver, name=name, description=description
        )
    return fields, types


def attribute_field(graphql_name: str, kind: Any, description: str | None) -> Any:
    """A field of the type, read from the entity's attributes (EntityNode.__getattr__)."""
    return strawberry.field(name=graphql_name, graphql_type=kind, description=description)


# -- relationships ---------------------------------------------------------------------


def neighbor_key(root: EntityNode, view: RelationshipView, offset: int, limit: int) -> NeighborKey:
    return NeighborKey(root.uri, view.labels, view.direction, root.tx, offset, limit)


async def load_page(
    info: Info[Context, None], root: EntityNode, view: RelationshipView, offset: int, limit: int
) -> NeighborPage:
    # A relationship on the Entity interface (owners) is declared on every type, with
    # that type's own edge labels: read the view of the entity's type.
    etype = info.context.store.schema.types.get(root.entity.type)
    if etype is not None:
        view = etype.relationships.get(view.name, view)
    return await info.context.loaders.neighbors.load(neighbor_key(root, view, offset, limit))


def one_resolver(view: RelationshipView) -> Resolver:
    """A cardinality-one relationship: the entity at the other end, or null."""

    async def resolve(root: EntityNode, info: Info[Context, None]) -> Any:
        ctx = info.context
        pinned = root.pins.get(view.name)
        if pinned is not None:
            return await ctx.node_at(pinned, root.tx)
        page = await load_page(info, root, view, 0, 1)
        return await ctx.node_at(page.items[0].uri, root.tx) if page.items else None

    return resolve


def list_resolver(view: RelationshipView, default: int) -> Resolver:
    """A relationship as a plain list: the first ``first`` entities in URI order."""

    async def resolve(root: EntityNode, info: Info[Context, None], first: int = default) -> Any:
        ctx = info.context
        size = ctx.limits.page(first, where=f"first of {camel(view.name)}")
        page = await load_page(info, root, view, 0, size)
        return [n for n in await ctx.nodes([i.uri for i in page.items], root.tx) if n is not None]

    return resolve


async def connection_of(
    info: Info[Context, None],
    root: EntityNode,
    view: RelationshipView,
    types: tuple[type, type],
    first: int,
    after: str | None,
) -> Any:
    """A page of ``root``'s neighbors along ``view`` as a ``types`` (connection, edge)."""
    connection, edge = types
    ctx = info.context
    size = ctx.limits.page(first, where=f"first of {camel(view.name)}")
    offset = offset_after(after)
    page = await load_page(info, root, view, offset, size)
    nodes = await ctx.nodes([i.uri for i in page.items], root.tx)
    edges = [
        edge(
            cursor=encode("o", offset + i + 1),
            node=node,
            origin=EdgeOrigin(item.origin),
            provenance=item.provenance,
            since_tx=item.since_tx,
        )
        for i, (item, node) in enumerate(zip(page.items, nodes, strict=True))
        if node is not None
    ]
    return connection(
        edges=edges,
        nodes=[e.node for e in edges],
        page_info=page_info(offset, len(page.items), page.total),
        total_count=page.total,
    )


def connection_resolver(view: RelationshipView, types: tuple[type, type], default: int) -> Resolver:
    """A relationship as a relay connection, in URI order."""

    async def resolve(
        root: EntityNode, info: Info[Context, None], first: int = default, after: str | None = None
    ) -> Any:
        return await connection_of(info, root, view, types, first, after)

    return resolve


def related_resolver(types: tuple[type, type], default: int) -> Resolver:
    """Any relationship of the entity's type, by its schema name (declared or inverse)."""

    async def resolve(
        root: EntityNode,
        info: Info[Context, None],
        relationship: str,
        first: int = default,
        after: str | None = None,
    ) -> Any:
        view = info.context.store.schema.type(root.entity.type).relationship(relationship)
        return await connection_of(info, root, view, types, first, after)

    return resolve
