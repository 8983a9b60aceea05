"""GraphQL at ``/graphql``: types derived from the type schema at startup (docs/api.md)."""

from __future__ import annotations

import weakref

import strawberry
from fastapi import Request
from starlette.requests import HTTPConnection
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.fastapi import GraphQLRouter
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types

from mlgraph.api.auth import Authenticator
from mlgraph.api.graphql.build import Builder
from mlgraph.api.graphql.context import Context
from mlgraph.api.graphql.errors import ErrorCodes, Schema
from mlgraph.api.graphql.nodes import Registry
from mlgraph.api.graphql.root import RootBuilder
from mlgraph.api.graphql.saved import SavedSearchTypes
from mlgraph.api.graphql.scalars import SCALARS
from mlgraph.api.graphql.subscriptions import (
    Subscription,
    SubscriptionRouter,
    WebhookMutation,
)
from mlgraph.api.limits import Limits, limit_extensions
from mlgraph.api.tokens import Scope
from mlgraph.catalog.schema import Schema as TypeSchema
from mlgraph.runtime import Service

__all__ = ["Context", "graphql_router", "graphql_schema"]

QUERY_CACHE = 256  # distinct query texts whose parse and validation are kept


Built = tuple[strawberry.Schema, Registry]
# Building takes about half a second; apps over the same type schema share the result
# (by identity: a schema is not hashable), until the schema is gone.
_built: dict[int, tuple[weakref.ref[TypeSchema], dict[Limits, Built]]] = {}


def graphql_schema(types: TypeSchema, limits: Limits) -> Built:
    """The GraphQL schema of a type schema, and the registry that wraps entities for it."""
    key = id(types)
    entry = _built.get(key)
    if entry is None or entry[0]() is not types:
        entry = (weakref.ref(types, lambda _: _built.pop(key, None)), {})
        _built[key] = entry
    if limits not in entry[1]:
        entry[1][limits] = _build(types, limits)
    return entry[1][limits]


def _build(types: TypeSchema, limits: Limits) -> Built:
    builder = Builder(types, limits)
    registry = builder.build()
    saved = SavedSearchTypes(builder)
    query = merge_types("Query", (RootBuilder(builder).query_type(), saved.query_type()))
    schema = Schema(
        query=query,
        mutation=merge_types("Mutation", (saved.mutation_type(), WebhookMutation)),
        subscription=Subscription,
        types=builder.types,
        # Parsing and validating a query takes longer than running a typical one: a
        # query text seen before (an app's own queries) is neither parsed nor validated again.
        extensions=[
            lambda: ParserCache(maxsize=QUERY_CACHE),
            *limit_extensions(limits),
            lambda: ValidationCache(maxsize=QUERY_CACHE),
            ErrorCodes,
        ],
        config=StrawberryConfig(scalar_map=SCALARS),
    )
    return schema, registry


def _ide_page(request: Request) -> bool:
    """A browser asking for GraphiQL: a page with no data in it, served to anyone."""
    return (
        request.method == "GET"
        and "text/html" in request.headers.get("accept", "")
        and "query" not in request.query_params
    )


def graphql_router(service: Service, limits: Limits) -> GraphQLRouter[Context, None]:
    """The ``/graphql`` route: GraphiQL in a browser, queries over GET and POST."""
    schema, registry = graphql_schema(service.store.schema, limits)

    async def context(request: HTTPConnection) -> Context:
        # A websocket (subscriptions) authenticates at connection_init (subscriptions.py).
        if isinstance(request, Request) and not _ide_page(request):
            auth: Authenticator = request.app.state.auth
            # Kept for resolvers that check more than `read` (saved searches: ownership).
            request.state.principal = await auth.authenticate(
                request.headers.get("authorization"), Scope.READ
            )
        return Context(service, limits, registry)

    return SubscriptionRouter(
        schema, path="/graphql", context_getter=context, graphql_ide="graphiql"
    )
