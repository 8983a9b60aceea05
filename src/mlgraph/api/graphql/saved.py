"""Saved searches and reverse search in GraphQL (seed 003's names; docs/api.md#saved-searches).

Queries: ``savedSearch(id)``, ``savedSearches(owner, first, after)``,
``reverseSearch(index, document, first, after)`` (the searches a document
matches: the criteria matcher) and ``reverseSearchEntity(uri, first, after)``
(those an entity matches now). A ``SavedSearch`` pages its ``members`` and
``transitions``. Mutations: ``upsertSavedSearch(input)``, whose payload holds
the search or the DSL error (line, column, reason), and
``deleteSavedSearch(id)``. Who may do what is in ``api/saved_ops.py``.

The types are made with the entity types, because members and transitions
lead to entities (``Entity``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from enum import Enum
from typing import Annotated, Any

import strawberry
from fastapi import FastAPI
from graphql import GraphQLError
from strawberry.types import Info

from mlgraph.api import saved_ops as ops
from mlgraph.api.auth import AuthError, Principal
from mlgraph.api.graphql.build import Builder, data_type
from mlgraph.api.graphql.context import Context
from mlgraph.api.graphql.paging import PageInfo, decode, encode
from mlgraph.api.graphql.root import SearchIndex
from mlgraph.api.graphql.scalars import JSON, BigInt
from mlgraph.api.matcher import SearchMatcher, matcher_of
from mlgraph.errors import NotFound, ValidationError
from mlgraph.reverse import DslError, SavedSearch, SavedSearches

Resolver = Callable[..., Any]


@strawberry.enum(description="An entity started or stopped matching a saved search.")
class TransitionKind(Enum):
    ENTERED = "entered"
    LEFT = "left"
    INVALID = "invalid"  # the search itself no longer compiles (`uri` is empty)


@strawberry.type(
    name="DslError",
    description="Why a saved search's filter is not valid, and where: `line` and `column` "
    "(1-based) of the start, `excerpt` the line with carets under the fault.",
)
class DslErrorInfo:
    message: str
    reason: str
    line: int
    column: int
    excerpt: str


@strawberry.input(
    name="UpsertSavedSearchInput",
    description="Create a saved search, or edit one: by `id`, or by `owner` and `name`. "
    "`owner` defaults to the token's name; another owner needs the 'admin' scope.",
)
class UpsertSavedSearchInput:
    filter: str
    id: strawberry.ID | None = None
    owner: str | None = None
    name: str | None = None
    index: SearchIndex = SearchIndex.ENTITIES


def _app(info: Info[Context, None]) -> FastAPI:
    request = info.context.request
    if request is None:
        raise RuntimeError("a GraphQL request without its HTTP request")
    app: FastAPI = request.app
    return app


def _matcher(info: Info[Context, None]) -> SearchMatcher:
    return matcher_of(_app(info))


def _searches(info: Info[Context, None]) -> SavedSearches:
    return SavedSearches(info.context.store, _matcher(info).mapping)


def _principal(info: Info[Context, None]) -> Principal:
    request = info.context.request
    found = None if request is None else getattr(request.state, "principal", None)
    if not isinstance(found, Principal):
        raise GraphQLError("authentication required", extensions={"code": "UNAUTHENTICATED"})
    return found


def refused(exc: AuthError) -> GraphQLError:
    code = "UNAUTHENTICATED" if exc.status == 401 else "FORBIDDEN"
    return GraphQLError(str(exc), extensions={"code": code})


def _dsl_error(exc: DslError) -> DslErrorInfo:
    return DslErrorInfo(
        message=str(exc), reason=exc.reason, line=exc.line, column=exc.column, excerpt=exc.excerpt
    )


def _after_id(after: str | None) -> int:
    if after is None:
        return 0
    value = decode(after, "s")
    if not (value.isascii() and value.isdigit()) or len(value) > 19:
        raise ValidationError(f"invalid cursor {after!r}")
    return int(value)


class SavedSearchTypes:
    """The saved-search types and fields of one GraphQL schema."""

    def __init__(self, builder: Builder) -> None:
        self.limits = builder.limits
        self._edges: dict[type, type] = {}  # connection type -> its edge type
        entity = builder.interface
        self.member = data_type(
            "SearchMember",
            {"uri": str, "since_tx": BigInt, "entity": entity | None},
            "An entity matching a saved search, since transaction `sinceTx`.",
        )
        self.members = self._connection(self.member, "SearchMember", total=True)
        self.transition = data_type(
            "SearchTransition",
            {
                "id": strawberry.ID,
                "uri": str,
                "tx": BigInt,
                "transition": TransitionKind,
                "at": datetime,
                "delivered_at": datetime | None,
                "entity": entity | None,
            },
            "An entity entered or left a saved search at transaction `tx`; `entity` is the "
            "entity as of then (null once it is gone). `INVALID`: the search itself stopped "
            "compiling (`uri` is empty).",
        )
        self.transitions = self._connection(self.transition, "SearchTransition", total=False)
        self.saved = self._saved_type()
        self.connection = self._connection(self.saved, "SavedSearch", total=True)
        self.upsert_payload = data_type(
            "UpsertSavedSearchPayload",
            {"saved_search": self.saved | None, "created": bool, "error": DslErrorInfo | None},
            "The search as saved (`created` when it is new), or, with nothing saved, why its "
            "filter is not valid.",
        )
        self.delete_payload = data_type(
            "DeleteSavedSearchPayload",
            {"deleted_id": strawberry.ID, "saved_search": self.saved},
            "The search deleted (its members went with it; its transitions stay).",
        )

    def _connection(self, node: type, name: str, *, total: bool) -> type:
        edge = data_type(f"{name}Edge", {"cursor": str, "node": node})
        fields: dict[str, Any] = {"edges": list[edge], "nodes": list[node], "page_info": PageInfo}  # type: ignore[valid-type]
        if total:
            fields["total_count"] = int
        conn = data_type(
            f"{name}Connection", fields, f"{name} items, a page at a time (a relay connection)."
        )
        self._edges[conn] = edge
        return conn

    # -- SavedSearch ---------------------------------------------------------------

    def _saved_type(self) -> type:
        annotations: dict[str, Any] = {
            "id": strawberry.ID,
            "owner": str,
            "name": str,
            "filter": str,
            "index": SearchIndex,
            "revision": BigInt,
            "saved_tx": BigInt,
            "built_tx": BigInt | None,
            "created_at": datetime,
            "updated_at": datetime,
            "invalid_reason": str | None,
        }
        namespace: dict[str, Any] = {
            "__annotations__": annotations,
            "__module__": __name__,
            "members": strawberry.field(
                resolver=self._members(),
                graphql_type=self.members,
                description="The entities matching it now (as of the reverse follower's last "
                "round), in URI order.",
            ),
            "transitions": strawberry.field(
                resolver=self._transitions(),
                graphql_type=self.transitions,
                description="Entities entering and leaving it, in the order recorded.",
            ),
        }
        cls = type("SavedSearch", (), namespace)
        return strawberry.type(
            cls,
            name="SavedSearch",
            description="A stored filter in the saved-search DSL (docs/dsl.md). `builtTx` is "
            "null until the reverse follower has computed its members (after every edit).",
        )

    def node(self, search: SavedSearch) -> Any:
        return self.saved(
            id=strawberry.ID(str(search.id)), owner=search.owner, name=search.name,
            filter=search.dsl, index=SearchIndex.ENTITIES, revision=search.revision,
            saved_tx=search.saved_tx, built_tx=search.built_tx, created_at=search.created_at,
            updated_at=search.updated_at, invalid_reason=search.invalid_reason,
        )  # fmt: skip

    def _members(self) -> Resolver:
        types = self
        default = self.limits.default_page

        async def resolve(
            root: Any, info: Info[Context, None], first: int = default, after: str | None = None
        ) -> Any:
            ctx = info.context
            size = ctx.limits.page(first, where="first of members")
            start = None if after is None else decode(after, "m")
            if start is not None:
                ops.check_text("after", start, 2000)  # a cursor is only a URI encoded
            searches, search_id = _searches(info), int(root.id)

            def read() -> tuple[list[tuple[str, int]], int]:
                found = searches.member_page(search_id, after=start, limit=size + 1)
                return found, searches.member_count(search_id)

            found, total = await asyncio.to_thread(read)
            page = found[:size]
            nodes = await ctx.nodes([u for u, _ in page], None)
            members = [
                types.member(uri=u, since_tx=tx, entity=n)
                for (u, tx), n in zip(page, nodes, strict=True)
            ]
            cursors = [encode("m", u) for u, _ in page]
            return types.page(types.members, members, cursors, len(found) > size, after, total)

        return resolve

    def _transitions(self) -> Resolver:
        types = self
        default = self.limits.default_page

        async def resolve(
            root: Any, info: Info[Context, None], first: int = default, after: str | None = None
        ) -> Any:
            ctx = info.context
            size = ctx.limits.page(first, where="first of transitions")
            start = 0
            if after is not None:
                value = decode(after, "t")
                if not (value.isascii() and value.isdigit()) or len(value) > 19:
                    raise ValidationError(f"invalid cursor {after!r}")
                start = int(value)
            searches = _searches(info)
            found = await asyncio.to_thread(
                searches.transitions, int(root.id), after=start, limit=size + 1
            )
            page = found[:size]
            # An `invalid` transition is the search's own: it names no entity.
            entities = await ctx.loaders.entities.load_many([(t.uri, t.tx) for t in page if t.uri])
            found_at = iter(entities)
            items = [
                types.transition(
                    id=strawberry.ID(str(t.id)),
                    uri=t.uri,
                    tx=t.tx,
                    transition=TransitionKind(t.transition),
                    at=t.at,
                    delivered_at=t.delivered_at,
                    entity=ctx.node(next(found_at), t.tx) if t.uri else None,
                )
                for t in page
            ]
            cursors = [encode("t", t.id) for t in page]
            return types.page(types.transitions, items, cursors, len(found) > size, after, None)

        return resolve

    def page(
        self, conn: type, items: list[Any], cursors: list[str], more: bool, after: str | None,
        total: int | None,
    ) -> Any:  # fmt: skip
        edge_cls = self._edges[conn]
        fields: dict[str, Any] = {
            "edges": [edge_cls(cursor=c, node=n) for c, n in zip(cursors, items, strict=True)],
            "nodes": items,
            "page_info": PageInfo(
                has_next_page=more,
                has_previous_page=after is not None,
                start_cursor=cursors[0] if cursors else None,
                end_cursor=cursors[-1] if cursors else None,
            ),
        }
        if total is not None:
            fields["total_count"] = total
        return conn(**fields)

    def search_page(
        self, found: list[SavedSearch], more: bool, after: str | None, total: int
    ) -> Any:
        nodes = [self.node(s) for s in found]
        cursors = [encode("s", s.id) for s in found]
        return self.page(self.connection, nodes, cursors, more, after, total)

    # -- Query ---------------------------------------------------------------------

    def query_type(self) -> type:
        fields: dict[str, Any] = {
            "saved_search": strawberry.field(
                resolver=self._saved_search(),
                graphql_type=self.saved | None,
                description="A saved search by id; null if there is none.",
            ),
            "saved_searches": strawberry.field(
                resolver=self._saved_searches(),
                graphql_type=self.connection,
                description="Saved searches in id order (one owner's if `owner` is given).",
            ),
            "reverse_search": strawberry.field(
                resolver=self._reverse_search(),
                graphql_type=self.connection | None,
                description="The saved searches a document matches (a reverse-search document: "
                'field path to value or list of values, e.g. {"type": "Model", "tags.team": '
                '"ranking"}), in id order. Every saved search reads entity documents, so both '
                "indexes percolate the same searches.",
            ),
            "reverse_search_entity": strawberry.field(
                resolver=self._reverse_search_entity(),
                graphql_type=self.connection,
                description="The saved searches an entity matches now, from its stored state.",
            ),
        }
        cls = type("SavedSearchQuery", (), {"__module__": __name__, **fields})
        return strawberry.type(cls, name="SavedSearchQuery")

    def _saved_search(self) -> Resolver:
        async def resolve(info: Info[Context, None], id: strawberry.ID) -> Any:
            searches = _searches(info)
            try:
                ident = ops.search_id(str(id))
            except NotFound:
                return None
            found = await asyncio.to_thread(searches.get, ident)
            return None if found is None else self.node(found)

        return resolve

    def _saved_searches(self) -> Resolver:
        default = self.limits.default_page

        async def resolve(
            info: Info[Context, None],
            owner: str | None = None,
            first: int = default,
            after: str | None = None,
        ) -> Any:
            size = info.context.limits.page(first, where="first of savedSearches")
            start, searches = _after_id(after), _searches(info)
            if owner is not None:
                ops.check_text("owner", owner, 200)

            def read() -> tuple[list[SavedSearch], int]:
                return searches.page(owner, after=start, limit=size + 1), searches.count(owner)

            found, total = await asyncio.to_thread(read)
            return self.search_page(found[:size], len(found) > size, after, total)

        return resolve

    async def _matched(
        self, info: Info[Context, None], ids: list[int], first: int, after: str | None
    ) -> Any:
        size = info.context.limits.page(first, where="first of reverseSearch")
        start = _after_id(after)
        matched = [i for i in ids if i > start]
        found = await asyncio.to_thread(_searches(info).many, matched[:size])
        return self.search_page(found, len(matched) > size, after, len(ids))

    def _reverse_search(self) -> Resolver:
        async def resolve(
            info: Info[Context, None],
            index: SearchIndex,
            document: JSON,
            first: int,
            after: str | None = None,
        ) -> Any:
            if not isinstance(document, dict):
                raise ValidationError("document must be a JSON object: field path -> value(s)")
            matcher = _matcher(info)
            ids = await asyncio.to_thread(matcher.match, document)
            return await self._matched(info, ids, first, after)

        return resolve

    def _reverse_search_entity(self) -> Resolver:
        default = self.limits.default_page

        async def resolve(
            info: Info[Context, None], uri: str, first: int = default, after: str | None = None
        ) -> Any:
            ops.check_text("uri", uri, 2000)
            canonical, matcher = info.context.uri(uri), _matcher(info)

            def match() -> list[int]:
                document = matcher.document(canonical)
                if document is None:
                    raise NotFound(f"no entity {canonical}")
                return matcher.match(document)

            ids = await asyncio.to_thread(match)
            return await self._matched(info, ids, first, after)

        return resolve

    # -- Mutation ------------------------------------------------------------------

    def mutation_type(self) -> type:
        fields: dict[str, Any] = {
            "upsert_saved_search": strawberry.field(
                resolver=self._upsert(),
                graphql_type=self.upsert_payload,
                description="Save a search, or edit one (by `id`, or `owner` and `name`). An "
                "invalid filter saves nothing: the payload's `error` says why and where.",
            ),
            "delete_saved_search": strawberry.field(
                resolver=self._delete(),
                graphql_type=self.delete_payload,
                description="Delete a saved search (its owner's, or anyone's with 'admin').",
            ),
        }
        cls = type("Mutation", (), {"__module__": __name__, **fields})
        return strawberry.type(cls, name="Mutation")

    def _upsert(self) -> Resolver:
        payload = self.upsert_payload

        async def resolve(
            info: Info[Context, None],
            input_: Annotated[UpsertSavedSearchInput, strawberry.argument(name="input")],
        ) -> Any:
            principal, searches = _principal(info), _searches(info)
            ident = None if input_.id is None else ops.search_id(str(input_.id))

            def save() -> ops.Upserted:
                return ops.upsert(
                    searches, principal, ident=ident, owner=input_.owner, name=input_.name,
                    text=input_.filter,
                )  # fmt: skip

            try:
                done = await asyncio.to_thread(save)
            except DslError as exc:
                return payload(saved_search=None, created=False, error=_dsl_error(exc))
            except AuthError as exc:
                raise refused(exc) from None
            return payload(saved_search=self.node(done.search), created=done.created, error=None)

        return resolve

    def _delete(self) -> Resolver:
        payload = self.delete_payload

        async def resolve(info: Info[Context, None], id: strawberry.ID) -> Any:
            principal, searches = _principal(info), _searches(info)
            ident = ops.search_id(str(id))
            try:
                gone = await asyncio.to_thread(ops.delete, searches, principal, ident)
            except AuthError as exc:
                raise refused(exc) from None
            return payload(deleted_id=strawberry.ID(str(gone.id)), saved_search=self.node(gone))

        return resolve
