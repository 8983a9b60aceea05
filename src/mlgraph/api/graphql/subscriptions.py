"""Notifications over GraphQL: the Subscription type, and webhook mutations.

``savedSearchTransitions(id, after)`` streams what the SSE endpoint streams:
each notice's ``id`` is its outbox id, so a client that reconnects with
``after`` (the last id it received) gets every later transition exactly once,
across a dropped connection or a service restart. Without ``after`` it starts
from now. The token goes in the ``connection_init`` payload
(``{"Authorization": "Bearer mlg_…"}``; browsers cannot set headers on a
websocket) or in the upgrade request's header, and needs ``read``.

``createWebhook`` / ``deleteWebhook`` manage webhooks as REST does (api/notify.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from datetime import datetime
from enum import Enum

import strawberry
from graphql import GraphQLError
from starlette.requests import HTTPConnection
from strawberry.exceptions import ConnectionRejectionError
from strawberry.fastapi import GraphQLRouter
from strawberry.types import Info
from strawberry.types.unset import UNSET, UnsetType

from mlgraph.api import saved_ops as ops
from mlgraph.api.auth import Authenticator, AuthError, Principal
from mlgraph.api.graphql.context import Context
from mlgraph.api.graphql.scalars import BigInt
from mlgraph.api.matcher import matcher_of
from mlgraph.api.notify import check_owner, notifier_of, reader_of, start_after
from mlgraph.api.tokens import Scope
from mlgraph.errors import NotFound
from mlgraph.reverse import DocumentMapping, SavedSearches
from mlgraph.reverse.delivery import Notice, Reader, Webhook, Webhooks, follow, last_notice_id
from mlgraph.reverse.delivery.webhooks import Created

KEEP_ALIVE_S = 15.0


@strawberry.enum(
    name="NoticeKind",
    description="ENTERED / LEFT: an entity started / stopped matching the search. INVALID: "
    "the search itself no longer compiles against the index mapping (edit it).",
)
class NoticeKind(Enum):
    ENTERED = "entered"
    LEFT = "left"
    INVALID = "invalid"


@strawberry.type(
    name="SavedSearchNotice",
    description="One transition of a saved search. `id` is the cursor: pass the last one "
    "received as `after` to resume.",
)
class SavedSearchNotice:
    id: strawberry.ID
    search: strawberry.ID
    kind: NoticeKind
    uri: str | None = strawberry.field(description="The entity; null for INVALID.")
    tx: BigInt = strawberry.field(description="The transaction (entity version) it happened at.")
    at: datetime


def _notice(n: Notice) -> SavedSearchNotice:
    return SavedSearchNotice(
        id=strawberry.ID(str(n.id)), search=strawberry.ID(str(n.search)),
        kind=NoticeKind(n.kind), uri=n.uri or None, tx=BigInt(n.tx), at=n.at,
    )  # fmt: skip


def _authorization(context: Context) -> str | None:
    params = context.connection_params
    if isinstance(params, dict):
        for key in ("Authorization", "authorization"):
            if isinstance(params.get(key), str):
                return str(params[key])
    request: HTTPConnection | None = context.request
    return None if request is None else request.headers.get("authorization")


async def authenticate(context: Context) -> Principal:
    """The subscriber, from the connection_init payload or the request's header."""
    request: HTTPConnection | None = context.request
    if request is None:
        raise RuntimeError("a GraphQL subscription without its connection")
    auth: Authenticator = request.app.state.auth
    principal = await auth.authenticate(_authorization(context), Scope.READ)
    request.state.principal = principal
    return principal


def _refused(exc: AuthError) -> GraphQLError:
    code = "UNAUTHENTICATED" if exc.status == 401 else "FORBIDDEN"
    return GraphQLError(str(exc), extensions={"code": code})


async def saved_search_transitions(
    info: Info[Context, None], id: strawberry.ID, after: strawberry.ID | None = None
) -> AsyncGenerator[SavedSearchNotice, None]:
    context = info.context
    store = context.store
    search = ops.search_id(str(id), "id")
    start = None if after is None else start_after(str(after), None)
    request: HTTPConnection | None = context.request
    if request is None:
        raise RuntimeError("a GraphQL subscription without its connection")

    def exists() -> None:
        if SavedSearches(store, _mapping(request)).get(search) is None:
            raise NotFound(f"no saved search {search}")

    async def admit() -> Reader:
        # Again before every read (cached for a few seconds): a revoked token's stream ends.
        try:
            return reader_of((await authenticate(context)).scopes)
        except AuthError as exc:
            raise _refused(exc) from None

    await admit()
    await asyncio.to_thread(exists)
    if start is None:
        start = await asyncio.to_thread(last_notice_id, store)
    bell = notifier_of(request).bell
    async for notice in follow(store, bell, search, start, admit, idle_s=KEEP_ALIVE_S):
        if notice is not None:
            yield _notice(notice)


@strawberry.type(name="Subscription")
class Subscription:
    saved_search_transitions: AsyncGenerator[SavedSearchNotice, None] = strawberry.subscription(
        resolver=saved_search_transitions,
        description="The saved search's transitions as they happen, after the notice `after` "
        "(default: from now). Entities the caller may not read are left out.",
    )


# -- webhooks: mutations -----------------------------------------------------------


@strawberry.type(
    name="Webhook",
    description="A URL told about a saved search's transitions (signed POSTs; "
    "docs/reverse.md#notifications).",
)
class WebhookNode:
    id: strawberry.ID
    search: strawberry.ID
    url: str
    owner: str
    active: bool
    disabled_reason: str | None
    created_at: datetime


@strawberry.type(name="CreateWebhookPayload")
class CreateWebhookPayload:
    webhook: WebhookNode
    secret: str = strawberry.field(
        description="Signs every body (X-Mlgraph-Signature: sha256=<HMAC>); shown only now."
    )


def _webhook(hook: Webhook) -> WebhookNode:
    return WebhookNode(
        id=strawberry.ID(str(hook.id)), search=strawberry.ID(str(hook.search)), url=hook.url,
        owner=hook.owner, active=hook.active, disabled_reason=hook.disabled_reason,
        created_at=hook.created_at,
    )  # fmt: skip


def _principal(info: Info[Context, None]) -> Principal:
    request = info.context.request
    found = None if request is None else getattr(request.state, "principal", None)
    if not isinstance(found, Principal):
        raise GraphQLError("authentication required", extensions={"code": "UNAUTHENTICATED"})
    return found


async def create_webhook(
    info: Info[Context, None],
    search_id: strawberry.ID,
    url: str,
    after: strawberry.ID | None = None,
) -> CreateWebhookPayload:
    principal = _principal(info)
    request: HTTPConnection | None = info.context.request
    if request is None:
        raise RuntimeError("a GraphQL request without its HTTP request")
    store = info.context.store
    search = ops.search_id(str(search_id), "searchId")
    start = None if after is None else start_after(str(after), None)

    def create() -> Created:
        found = SavedSearches(store, _mapping(request)).get(search)
        if found is None:
            raise NotFound(f"no saved search {search}")
        ops.check_may_manage(principal, found)
        token_id = None if principal.token is None else principal.token.id
        return Webhooks(store).create(search, url, principal.name, token_id, after=start)

    try:
        created = await asyncio.to_thread(create)
    except AuthError as exc:
        raise _refused(exc) from None
    notifier_of(request).wake()
    return CreateWebhookPayload(webhook=_webhook(created.webhook), secret=created.secret)


async def delete_webhook(info: Info[Context, None], id: strawberry.ID) -> WebhookNode:
    principal = _principal(info)
    webhooks = Webhooks(info.context.store)
    ident = start_after(str(id), None) or 0
    hook = await asyncio.to_thread(webhooks.require, ident)
    try:
        check_owner(principal, hook)
    except AuthError as exc:
        raise _refused(exc) from None
    await asyncio.to_thread(webhooks.delete, hook.id)
    return _webhook(hook)


@strawberry.type(name="WebhookMutation")
class WebhookMutation:
    create_webhook: CreateWebhookPayload = strawberry.mutation(
        resolver=create_webhook,
        description="POST the saved search's transitions to `url` (its owner, or 'admin'). "
        "`after`: also those after this transition id (default: only new ones).",
    )
    delete_webhook: WebhookNode = strawberry.mutation(
        resolver=delete_webhook,
        description="Delete a webhook and its deliveries (the token that made it, or 'admin').",
    )


def _mapping(request: HTTPConnection) -> DocumentMapping:
    return matcher_of(request.app).mapping


class SubscriptionRouter(GraphQLRouter[Context, None]):
    """The GraphQL router, refusing a websocket whose token may not read at connection_init."""

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        try:
            await authenticate(context)
        except AuthError as exc:
            raise ConnectionRejectionError({"error": str(exc)}) from None
        unset: UnsetType = UNSET
        return unset  # a plain connection_ack, no payload
