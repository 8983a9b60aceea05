"""The Query type: one field per entity type, and generic access to the graph.

``model(id)``, ``abTest(id)``… return that type. Types that share a URI kind
(Model and ModelInstance are both ``model``) accept each other's URIs: the
field follows the one cardinality-one relationship between them (an
instance's ``model``; a model's ``current_instance``) and pins the one that
leads back to the URI given, so ``model(id: <an instance>)`` is that
instance's model with ``currentInstance`` being the instance asked about
(docs/api.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry.types import Info

from mlgraph.api.graphql.build import Builder, data_type
from mlgraph.api.graphql.context import AsOfInput, Context
from mlgraph.api.graphql.naming import camel
from mlgraph.api.graphql.nodes import EntityNode
from mlgraph.api.graphql.paging import PageInfo, decode, encode, offset_after, page_info
from mlgraph.api.graphql.scalars import JSON, jsonable
from mlgraph.api.loaders import NeighborKey
from mlgraph.catalog.schema import RelationshipView, Schema
from mlgraph.enrich.lineage import impact as impact_of
from mlgraph.errors import NotFound, ValidationError
from mlgraph.reverse.forward import search_filter
from mlgraph.store.records import EdgeChange as StoreEdgeChange
from mlgraph.store.records import Version

Resolver = Callable[..., Any]
GENERIC_ROOTS = ("entity", "entities", "search", "lineage", "impact", "history")


@strawberry.enum
class LineageDirection(Enum):
    UPSTREAM = "upstream"
    DOWNSTREAM = "downstream"


@strawberry.enum
class SearchIndex(Enum):
    ENTITIES = "entities"
    OWNERS = "owners"


@strawberry.type
class Provenance:
    source: str | None
    event_id: str | None
    actor: str | None


@strawberry.type
class FieldChange:
    field: str
    old: JSON | None
    new: JSON | None


@strawberry.type
class EdgeChange:
    relationship: str
    direction: str
    uri: str


@strawberry.type
class TypeCount:
    type: str
    count: int


@strawberry.type
class FacetValue:
    value: str
    count: int


@strawberry.type
class Facet:
    name: str
    values: list[FacetValue]


@dataclass(frozen=True)
class Routes:
    """How a typed root field reaches its type from an entity of another type of its kind."""

    follow: RelationshipView  # from the entity given to the entity returned
    pin: RelationshipView | None  # on the returned entity, back to the one given


def same_kind_routes(schema: Schema) -> dict[tuple[str, str], Routes]:
    """``(wanted type, given type) -> Routes`` for types that share a URI kind."""

    def one_to(frm: str, to: str) -> RelationshipView | None:
        found = [
            v
            for v in schema.type(frm).relationships.values()
            if v.cardinality == "one" and v.targets == (to,)
        ]
        return found[0] if len(found) == 1 else None

    routes: dict[tuple[str, str], Routes] = {}
    for want in schema.types.values():
        for given in schema.types_of_kind(want.kind):
            if given.name != want.name and (follow := one_to(given.name, want.name)):
                routes[(want.name, given.name)] = Routes(follow, one_to(want.name, given.name))
    return routes


class RootBuilder:
    def __init__(self, builder: Builder) -> None:
        self.b = builder
        self.schema = builder.schema
        self.limits = builder.limits
        self.entity = builder.interface
        self.routes = same_kind_routes(self.schema)
        self._results()

    def _results(self) -> None:
        e = self.entity
        self.listing_edge = data_type("EntityListingEdge", {"cursor": str, "node": e})
        self.listing = data_type(
            "EntityListing",
            {
                "edges": list[self.listing_edge],  # type: ignore[name-defined]
                "nodes": list[e],  # type: ignore[valid-type]
                "page_info": PageInfo,
                "total_count": int,
            },
            "Entities in URI order, a page at a time (a relay connection).",
        )
        self.lineage_node = data_type("LineageNode", {"depth": int, "entity": e})
        self.lineage = data_type(
            "LineageResult",
            {"start": e, "partial": bool, "nodes": list[self.lineage_node]},  # type: ignore[name-defined]
            "Entities upstream or downstream of `start`, nearest first; `partial` when the "
            "page size cut the walk short.",
        )
        self.affected = data_type(
            "ImpactedEntity",
            {"entity": e, "depth": int, "via": str | None, "source": e | None},
            "An entity a change reaches: through lineage (`via` null), or one hop of an "
            "inferred relationship (`via`, its edge label) from `source`.",
        )
        self.owner = data_type("ImpactOwner", {"owner": e, "owns": list[e]})  # type: ignore[valid-type]
        self.impact = data_type(
            "ImpactResult",
            {
                "start": e,
                "partial": bool,
                "affected": list[self.affected],  # type: ignore[name-defined]
                "by_type": list[TypeCount],
                "owners": list[self.owner],  # type: ignore[name-defined]
            },
            "What a change to `start` affects, and the owners to tell.",
        )
        self.version = data_type(
            "Version",
            {
                "tx": int,
                "at": datetime,
                "op": str,
                "provenance": Provenance,
                "changes": list[FieldChange],
                "edges_added": list[EdgeChange],
                "edges_removed": list[EdgeChange],
                "entity": e | None,
            },
            "One transaction in an entity's history; `entity` is the entity as of it "
            "(its relationships read at that transaction too), null once retracted.",
        )
        self.history = data_type(
            "HistoryResult",
            {
                "uri": str,
                "total_count": int,
                "page_info": PageInfo,
                "versions": list[self.version],  # type: ignore[name-defined]
            },
        )
        self.hit = data_type("SearchHit", {"score": float, "highlights": JSON, "entity": e | None})
        self.search = data_type(
            "SearchResult",
            {
                "query": str,
                "total": int,
                "hits": list[self.hit],  # type: ignore[name-defined]
                "facets": list[Facet],
                "page_info": PageInfo,
                "index_version": str,
            },
        )

    # -- fields --------------------------------------------------------------------

    def query_type(self) -> type:
        fields: dict[str, Any] = {
            "entity": strawberry.field(
                resolver=self._entity(),
                graphql_type=self.entity | None,
                description="Any entity by URI.",
            ),
            "entities": strawberry.field(
                resolver=self._entities(),
                graphql_type=self.listing,
                description="Entities in URI order, of one type if `type` is given.",
            ),
            "search": strawberry.field(
                resolver=self._search(),
                graphql_type=self.search,
                description="Full-text search with filters (docs/search.md), best first, with "
                "facet counts.",
            ),
            "lineage": strawberry.field(
                resolver=self._lineage(),
                graphql_type=self.lineage,
                description="Upstream or downstream lineage, following the schema's `flow`.",
            ),
            "impact": strawberry.field(
                resolver=self._impact(),
                graphql_type=self.impact,
                description="What a change to the entity affects, by type, and whom to tell.",
            ),
            "history": strawberry.field(
                resolver=self._history(),
                graphql_type=self.history,
                description="Every transaction that changed the entity or its edges, oldest first.",
            ),
        }
        for name in self.schema.types:
            field_name = camel(name)
            if field_name in GENERIC_ROOTS:
                continue  # entity(uri) still reaches it
            desc = f"A {name} by URI."
            if any(want == name for want, _ in self.routes):
                kinds = sorted(g for w, g in self.routes if w == name)
                desc += f" Also takes the URI of a {' or '.join(kinds)} (see docs/api.md)."
            fields[field_name] = strawberry.field(
                resolver=self._typed(name),
                name=field_name,
                graphql_type=self.b.objects[name] | None,
                description=desc,
            )
        cls = type("Query", (), {"__module__": __name__})
        for attr, value in fields.items():
            setattr(cls, f"q_{attr}", value)
            if value.graphql_name is None:
                value.graphql_name = attr
        return strawberry.type(cls, name="Query")

    def _entity(self) -> Resolver:
        async def resolve(
            info: Info[Context, None], uri: str, as_of: AsOfInput | None = None
        ) -> EntityNode | None:
            ctx = info.context
            return await ctx.node_at(ctx.uri(uri), await ctx.tx(as_of))

        return resolve

    def _typed(self, type_name: str) -> Resolver:
        routes = {given: r for (want, given), r in self.routes.items() if want == type_name}

        async def resolve(
            info: Info[Context, None], id: str, as_of: AsOfInput | None = None
        ) -> EntityNode | None:
            ctx = info.context
            uri, tx = ctx.uri(id, "id"), await ctx.tx(as_of)
            entity = await ctx.loaders.entities.load((uri, tx))
            if entity is None or entity.type == type_name:
                return ctx.node(entity, tx)
            route = routes.get(entity.type)
            if route is None:
                raise ValidationError(f"{uri} is a {entity.type}, not a {type_name}")
            f = route.follow
            key = NeighborKey(uri, f.labels, f.direction, tx, 0, 1)
            page = await ctx.loaders.neighbors.load(key)
            if not page.items:
                raise NotFound(f"{uri} is a {entity.type} with no {f.name}: no {type_name} to show")
            found = await ctx.loaders.entities.load((page.items[0].uri, tx))
            pins = {route.pin.name: uri} if route.pin is not None else {}
            return ctx.node(found, tx, pins)

        return resolve

    def _entities(self) -> Resolver:
        conn, edge = self.listing, self.listing_edge
        default = self.limits.default_page

        async def resolve(
            info: Info[Context, None],
            type: str | None = None,
            first: int = default,
            after: str | None = None,
            as_of: AsOfInput | None = None,
        ) -> Any:
            ctx = info.context
            size = ctx.limits.page(first, where="first of entities")
            start = None if after is None else ctx.uri(decode(after, "u"), "after")
            tx = await ctx.tx(as_of)
            page = await asyncio.to_thread(ctx.store.entity_page, type, start, size, tx)
            nodes = await ctx.nodes(page.uris, tx)
            edges = [edge(cursor=encode("u", n.uri), node=n) for n in nodes if n is not None]
            return conn(
                edges=edges,
                nodes=[e.node for e in edges],
                page_info=PageInfo(
                    has_next_page=len(page.uris) == size and size > 0,
                    has_previous_page=after is not None,
                    start_cursor=edges[0].cursor if edges else None,
                    end_cursor=edges[-1].cursor if edges else None,
                ),
                total_count=page.total,
            )

        return resolve

    def _search(self) -> Resolver:
        default = self.limits.default_page
        hit_cls, result_cls = self.hit, self.search

        async def resolve(
            info: Info[Context, None],
            query: str,
            first: int = default,
            after: str | None = None,
            facets: bool = True,
            index: SearchIndex = SearchIndex.ENTITIES,
            filter: str | None = None,  # a saved-search filter (docs/dsl.md)
        ) -> Any:
            ctx = info.context
            size = ctx.limits.page(first, where="first of search")
            if size == 0:
                raise ValidationError("first of search must be at least 1")
            # A DslError is a ValidationError: BAD_REQUEST, its message says where.
            where = search_filter(ctx.service.search.store.schema, filter)
            page = await asyncio.to_thread(
                ctx.service.search.search,
                query,
                limit=size,
                cursor=after,
                facets=facets,
                index=index.value,
                where=where,
            )
            nodes = await ctx.nodes([h.uri for h in page.hits], None)
            return result_cls(
                query=page.query,
                total=page.total,
                hits=[
                    hit_cls(score=h.score, highlights=h.highlights, entity=n)
                    for h, n in zip(page.hits, nodes, strict=True)
                ],
                facets=[
                    Facet(name=name, values=[FacetValue(value=v, count=c) for v, c in vs.items()])
                    for name, vs in page.facets.items()
                ],
                page_info=PageInfo(
                    has_next_page=page.next_cursor is not None,
                    has_previous_page=after is not None,
                    start_cursor=None,
                    end_cursor=page.next_cursor,
                ),
                index_version=page.version,
            )

        return resolve

    def _lineage(self) -> Resolver:
        node_cls, result_cls = self.lineage_node, self.lineage

        async def resolve(
            info: Info[Context, None],
            uri: str,
            direction: LineageDirection = LineageDirection.DOWNSTREAM,
            depth: int = 3,
            relationships: list[str] | None = None,
            types: list[str] | None = None,
            first: int = 100,
            as_of: AsOfInput | None = None,
        ) -> Any:
            ctx = info.context
            size = ctx.limits.page(first, where="first of lineage")
            if size == 0:
                raise ValidationError("first of lineage must be at least 1")
            tx = await ctx.tx(as_of)
            walk = await asyncio.to_thread(
                ctx.store.traverse,
                ctx.uri(uri),
                direction.value,
                depth=depth,
                relationships=relationships,
                types=types,
                limit=size,
                as_of=tx,
            )
            nodes = await ctx.nodes([walk.start, *(r.uri for r in walk.nodes)], tx)
            return result_cls(
                start=nodes[0],
                partial=walk.partial,
                nodes=[
                    node_cls(depth=r.depth, entity=n)
                    for r, n in zip(walk.nodes, nodes[1:], strict=True)
                    if n is not None
                ],
            )

        return resolve

    def _impact(self) -> Resolver:
        affected_cls, owner_cls, result_cls = self.affected, self.owner, self.impact

        async def resolve(
            info: Info[Context, None], uri: str, depth: int = 5, first: int = 100
        ) -> Any:
            ctx = info.context
            size = ctx.limits.page(first, where="first of impact")
            if size == 0:
                raise ValidationError("first of impact must be at least 1")
            found = await asyncio.to_thread(
                impact_of, ctx.store, ctx.uri(uri), depth=depth, limit=size
            )
            uris = {found.start, *(a.uri for a in found.affected), *(o.uri for o in found.owners)}
            uris |= {a.source for a in found.affected if a.source}
            uris |= {u for o in found.owners for u in o.owns}
            ordered = sorted(uris)
            by_uri = dict(zip(ordered, await ctx.nodes(ordered, None), strict=True))
            return result_cls(
                start=by_uri[found.start],
                partial=found.partial,
                affected=[
                    affected_cls(
                        entity=by_uri[a.uri],
                        depth=a.depth,
                        via=a.via,
                        source=by_uri.get(a.source) if a.source else None,
                    )
                    for a in found.affected
                    if by_uri.get(a.uri) is not None
                ],
                by_type=[TypeCount(type=t, count=len(a)) for t, a in found.by_type.items()],
                owners=[
                    owner_cls(owner=by_uri[o.uri], owns=[by_uri[u] for u in o.owns if by_uri[u]])
                    for o in found.owners
                    if by_uri.get(o.uri) is not None
                ],
            )

        return resolve

    def _history(self) -> Resolver:
        version_cls, result_cls = self.version, self.history

        async def resolve(
            info: Info[Context, None], uri: str, first: int = 100, after: str | None = None
        ) -> Any:
            ctx = info.context
            size = ctx.limits.page(first, where="first of history")
            offset = offset_after(after)
            canonical = ctx.uri(uri)
            versions = await asyncio.to_thread(ctx.store.history, canonical)
            if not versions and await ctx.loaders.entities.load((canonical, None)) is None:
                raise NotFound(f"no entity {canonical}")
            page = versions[offset : offset + size]
            return result_cls(
                uri=canonical,
                total_count=len(versions),
                page_info=page_info(offset, len(page), len(versions)),
                versions=[version_of(version_cls, v, ctx) for v in page],
            )

        return resolve


def version_of(cls: type, v: Version, ctx: Context) -> Any:
    """A ``Version`` GraphQL object for one entry of ``Store.history``."""

    def edges(changes: tuple[StoreEdgeChange, ...]) -> list[EdgeChange]:
        return [EdgeChange(relationship=c.relationship, direction=c.direction, uri=c.uri)
                for c in changes]  # fmt: skip

    return cls(
        tx=v.tx,
        at=v.at,
        op=v.op,
        provenance=Provenance(
            source=v.provenance.source, event_id=v.provenance.event_id, actor=v.provenance.actor
        ),
        changes=[
            FieldChange(field=k, old=jsonable(old), new=jsonable(new))
            for k, (old, new) in v.changes.items()
        ],
        edges_added=edges(v.edges_added),
        edges_removed=edges(v.edges_removed),
        entity=ctx.node(v.entity, v.tx),
    )
