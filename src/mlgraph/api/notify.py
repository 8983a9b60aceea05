"""Notifications over HTTP: Server-Sent Events of a saved search, and its webhooks.

- ``GET /v1/saved-searches/{id}/events``: a ``text/event-stream`` of the
  search's transitions. Each event's ``id`` is its outbox id: a client that
  reconnects with ``Last-Event-ID`` (browsers do it themselves) or
  ``?after=`` receives every later transition once. Needs ``read``.
- ``/v1/saved-searches/{id}/webhooks``: create (the search's owner or an
  admin), list. ``/v1/webhooks/{id}``: show, delete, its deliveries.
  ``POST /v1/webhooks/replay`` (admin): dead deliveries become pending again.

What a subscriber may be told is decided in one place, ``may_read``.
"""

from __future__ import annotations

import asyncio
import json
import signal
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import asdict
from datetime import datetime
from types import FrameType
from typing import Annotated, Any, Literal

import aiohttp
import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from mlgraph.api import saved_ops as ops
from mlgraph.api.auth import Authenticator, AuthError, Principal, require
from mlgraph.api.matcher import matcher_of
from mlgraph.api.tables import api_token
from mlgraph.api.tokens import Scope
from mlgraph.errors import NotFound, ValidationError
from mlgraph.reverse import SavedSearch, SavedSearches
from mlgraph.reverse.delivery import (
    ALLOW_ALL,
    DeliveryPolicy,
    Dispatcher,
    Notice,
    OutboxBell,
    Reader,
    Webhook,
    Webhooks,
    follow,
    last_notice_id,
)
from mlgraph.reverse.delivery.webhooks import STATUSES, Delivery, Status
from mlgraph.runtime import Service

router = APIRouter(tags=["notifications"])

ReaderPrincipal = Annotated[Principal, Depends(require(Scope.READ))]
AdminPrincipal = Annotated[Principal, Depends(require(Scope.ADMIN))]
SearchId = Annotated[int, Path(ge=1, le=ops.MAX_ID, description="The saved search's id.")]
WebhookId = Annotated[int, Path(ge=1, le=ops.MAX_ID, description="The webhook's id.")]
KEEP_ALIVE_S = 15.0  # a comment line this often keeps proxies from closing an idle stream
RECONNECT_MS = 2000
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


# -- who may be told what ----------------------------------------------------------


def may_read(scopes: frozenset[Scope], uri: str) -> bool:
    """Whether a subscriber holding ``scopes`` may be told about the entity ``uri``.

    Every notice passes here before it is sent, on every channel. With scopes
    only, whoever may read may read every entity; a finer check (per type,
    per owner, per source) belongs in this one function.
    """
    return Scope.READ in scopes


def reader_of(scopes: frozenset[Scope]) -> Reader:
    return lambda uri: may_read(scopes, uri)


class TokenGate:
    """Webhook owners are API tokens: a webhook delivers while its token may read."""

    def __init__(self, engine: Engine, auth: Authenticator) -> None:
        self.engine = engine
        self.auth = auth

    async def reader(self, token_id: int | None) -> Reader | str:
        if token_id is None:
            if await self.auth.enforced():
                return (
                    "the webhook was created while authentication was off, and it is on now: "
                    "create it again with a token"
                )
            return ALLOW_ALL
        row = await run_in_threadpool(self._token, token_id)
        if row is None:
            return f"the webhook owner's API token {token_id} no longer exists"
        label = f"{row.name!r} ({row.prefix}…)"
        if row.revoked_at is not None:
            return f"the webhook owner's API token {label} was revoked"
        scopes = frozenset(Scope(s) for s in str(row.scopes).split())
        if Scope.READ not in scopes:
            return f"the webhook owner's API token {label} may not read"
        return reader_of(scopes)

    def _token(self, token_id: int) -> Any:
        t = api_token
        query = sa.select(t.c.name, t.c.prefix, t.c.scopes, t.c.revoked_at).where(
            t.c.id == token_id
        )
        with self.engine.connect() as conn:
            return conn.execute(query).first()


# -- the running parts -------------------------------------------------------------


class Notifier:
    """What one API process runs for notifications: the outbox bell streams wait on,
    and (where the workers run) the webhook dispatcher."""

    def __init__(self, service: Service, auth: Authenticator) -> None:
        s = service.settings
        self.service = service
        self.bell = OutboxBell(service.store, s.notify_poll_s)
        self.gate = TokenGate(service.store.engine, auth)
        self.policy = DeliveryPolicy(
            max_attempts=s.webhook_max_attempts, backoff_s=s.webhook_backoff_s,
            backoff_max_s=s.webhook_backoff_max_s, timeout_s=s.webhook_timeout_s,
        )  # fmt: skip
        self.dispatcher: Dispatcher | None = None
        self.closing = asyncio.Event()  # set when the server is asked to stop

    @asynccontextmanager
    async def running(self, *, dispatch: bool) -> AsyncIterator[Notifier]:
        self.closing = asyncio.Event()
        try:
            with self._closing_on_signals():
                if not dispatch:
                    yield self
                    return
                async with self._dispatching():
                    yield self
        finally:
            self.closing.set()
            await self.bell.close()

    @contextmanager
    def _closing_on_signals(self) -> Iterator[None]:
        """Set ``closing`` when the process is told to stop, before the server waits for
        open responses to finish: an event stream never finishes by itself, so it ends
        then, and its client reconnects (to another process, or after the restart)."""
        if threading.current_thread() is not threading.main_thread():
            yield  # a server in a thread (tests) is stopped by whoever started it
            return
        loop = asyncio.get_running_loop()
        previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}

        def handler(sig: int, frame: FrameType | None) -> None:
            loop.call_soon_threadsafe(self.closing.set)
            chained = previous[signal.Signals(sig)]
            if callable(chained):
                chained(sig, frame)
            elif chained == signal.SIG_DFL:
                signal.default_int_handler(sig, frame)

        for sig in STOP_SIGNALS:
            signal.signal(sig, handler)
        try:
            yield
        finally:
            for sig, chained in previous.items():
                signal.signal(sig, chained)

    @asynccontextmanager
    async def _dispatching(self) -> AsyncIterator[None]:
        # trust_env: webhooks go out to other networks, through the configured proxy.
        async with aiohttp.ClientSession(trust_env=True) as http:
            self.dispatcher = Dispatcher(
                self.service.store, http, gate=self.gate, policy=self.policy, bell=self.bell
            )
            stop = asyncio.Event()
            task = asyncio.create_task(self.dispatcher.run(stop))
            try:
                yield
            finally:
                stop.set()
                await task
                self.dispatcher = None

    def wake(self) -> None:
        if self.dispatcher is not None:
            self.dispatcher.wake()


def install(app: FastAPI, service: Service) -> None:
    """Notifications on ``app``: its routes, and the notifier its lifespan runs."""
    app.state.notifier = Notifier(service, app.state.auth)
    app.include_router(router)


def notifier_of(request: HTTPConnection) -> Notifier:
    notifier: Notifier = request.app.state.notifier
    return notifier


def _store_of(request: Request) -> Any:
    return notifier_of(request).service.store


def _search(request: Request, search_id: int) -> SavedSearch:
    searches = SavedSearches(_store_of(request), matcher_of(request.app).mapping)
    return ops.require(searches, search_id)


# -- Server-Sent Events ------------------------------------------------------------


def sse(notice: Notice) -> str:
    data = json.dumps(notice.to_json(), separators=(",", ":"))
    return f"id: {notice.id}\nevent: {notice.kind}\ndata: {data}\n\n"


def start_after(after: int | str | None, last_event_id: str | None) -> int | None:
    """Where a stream starts: ``after``, else ``Last-Event-ID``; None means "from now"."""
    for where, value in (("after", after), ("Last-Event-ID", last_event_id)):
        if isinstance(value, int):
            return value
        if value is None or not value.strip():
            continue
        text = value.strip()
        if not (text.isascii() and text.isdigit()) or len(text) > 19:
            raise ValidationError(f"{where} must be an event id (a number), got {text!r}")
        return int(text)
    return None


async def _until_gone(request: Request, closing: asyncio.Event, gone: asyncio.Event) -> None:
    """Set ``gone`` when the client hangs up or the server is stopping: a stream otherwise
    notices only when a write fails, up to a keep-alive later, and holds up the server's
    shutdown meanwhile."""

    async def hung_up() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    waits = [asyncio.create_task(hung_up()), asyncio.create_task(closing.wait())]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waits:
            task.cancel()
    gone.set()


@router.get(
    "/v1/saved-searches/{search_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "The transitions, as SSE"},
        404: {"description": "No saved search with that id"},
    },
)
async def saved_search_events(
    request: Request,
    search_id: SearchId,
    _principal: ReaderPrincipal,
    after: Annotated[
        int | None,
        Query(ge=0, le=ops.MAX_ID, description="Start after this event id (default: from now)."),
    ] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=64)] = None,
) -> StreamingResponse:
    """The search's transitions as they happen (`entered`, `left`, `invalid`), as
    Server-Sent Events whose ids resume the stream exactly where it stopped."""
    cursor = start_after(after, last_event_id)
    store = _store_of(request)
    await run_in_threadpool(_search, request, search_id)
    if cursor is None:
        cursor = await run_in_threadpool(last_notice_id, store)
    auth: Authenticator = request.app.state.auth
    header = request.headers.get("authorization")

    async def admit() -> Reader:
        # Again before every read (cached for a few seconds): a revoked token's stream ends.
        return reader_of((await auth.authenticate(header, Scope.READ)).scopes)

    async def events(start: int) -> AsyncIterator[str]:
        gone = asyncio.Event()
        watcher = asyncio.create_task(_until_gone(request, notifier_of(request).closing, gone))
        yield f"retry: {RECONNECT_MS}\nid: {start}\n: streaming saved search {search_id}\n\n"
        stream = follow(store, notifier_of(request).bell, search_id, start, admit,
                        idle_s=KEEP_ALIVE_S, stop=gone)  # fmt: skip
        try:
            async for notice in stream:
                yield ": keep-alive\n\n" if notice is None else sse(notice)
        except AuthError as exc:
            yield f"event: error\ndata: {json.dumps({'error': str(exc)})}\n\n"
        finally:
            watcher.cancel()

    return StreamingResponse(
        events(cursor),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


# -- webhooks ----------------------------------------------------------------------


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2000, description="Where to POST (http or https).")
    after: int | None = Field(
        None, ge=0, le=ops.MAX_ID,
        description="Also deliver the search's transitions after this id (default: only new ones).",
    )  # fmt: skip


class WebhookOut(BaseModel):
    id: int
    search: int
    url: str
    owner: str
    active: bool
    disabled_reason: str | None
    cursor: int
    created_at: datetime
    deliveries: dict[str, int] | None = None


class CreatedOut(BaseModel):
    webhook: WebhookOut
    secret: str = Field(description="Signs every body (X-Mlgraph-Signature); shown only now.")


class DeliveryOut(BaseModel):
    id: int
    webhook: int
    transition: int
    status: Literal["pending", "delivered", "dead", "withheld"]
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class ReplayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    webhook: int | None = Field(None, ge=1, le=ops.MAX_ID, description="Only this webhook's.")
    ids: list[Annotated[int, Field(ge=1, le=ops.MAX_ID)]] | None = Field(
        None, max_length=10_000, description="Only these deliveries (default: all dead ones)."
    )
    delivered_too: bool = Field(False, description="Send delivered ones again as well.")


def _out(hook: Webhook, counts: dict[str, int] | None = None) -> WebhookOut:
    fields = asdict(hook)
    fields.pop("token_id")
    return WebhookOut(**fields, deliveries=counts)


def check_owner(principal: Principal, hook: Webhook) -> None:
    """A webhook is managed by the token that made it, or an admin."""
    if Scope.ADMIN in principal.scopes:
        return
    if principal.token is None or principal.token.id != hook.token_id:
        raise AuthError(
            403,
            f"webhook {hook.id} belongs to {hook.owner!r}: only the token that created it or "
            "an 'admin' token may see or change it",
            'Bearer error="insufficient_scope", scope="admin"',
        )


@router.post("/v1/saved-searches/{search_id}/webhooks", status_code=201, response_model=CreatedOut)
async def create_webhook(
    request: Request, search_id: SearchId, body: WebhookIn, principal: ReaderPrincipal
) -> CreatedOut:
    """POST the search's transitions to ``url``, signed with the secret returned (once)."""

    def create() -> Any:
        search = _search(request, search_id)
        ops.check_may_manage(principal, search)
        token_id = None if principal.token is None else principal.token.id
        return Webhooks(_store_of(request)).create(
            search_id, body.url, principal.name, token_id, after=body.after
        )

    created = await run_in_threadpool(create)
    notifier_of(request).wake()
    return CreatedOut(webhook=_out(created.webhook), secret=created.secret)


@router.get("/v1/saved-searches/{search_id}/webhooks", response_model=list[WebhookOut])
async def list_webhooks(
    request: Request, search_id: SearchId, principal: ReaderPrincipal
) -> list[WebhookOut]:
    def listing() -> list[Webhook]:
        _search(request, search_id)
        return Webhooks(_store_of(request)).listing(search_id)

    hooks = await run_in_threadpool(listing)
    admin = Scope.ADMIN in principal.scopes
    mine = None if principal.token is None else principal.token.id
    return [_out(h) for h in hooks if admin or h.token_id == mine]


async def _require(request: Request, webhook_id: int, principal: Principal) -> Webhook:
    hook = await run_in_threadpool(Webhooks(_store_of(request)).require, webhook_id)
    check_owner(principal, hook)
    return hook


@router.get("/v1/webhooks/{webhook_id}", response_model=WebhookOut)
async def show_webhook(
    request: Request, webhook_id: WebhookId, principal: ReaderPrincipal
) -> WebhookOut:
    """A webhook, with its deliveries counted by status."""
    hook = await _require(request, webhook_id, principal)
    counts = await run_in_threadpool(Webhooks(_store_of(request)).counts, webhook_id)
    return _out(hook, counts)


@router.delete("/v1/webhooks/{webhook_id}", response_model=WebhookOut)
async def delete_webhook(
    request: Request, webhook_id: WebhookId, principal: ReaderPrincipal
) -> WebhookOut:
    """Delete a webhook and its deliveries."""
    hook = await _require(request, webhook_id, principal)
    if not await run_in_threadpool(Webhooks(_store_of(request)).delete, webhook_id):
        raise NotFound(f"no webhook {webhook_id}")
    return _out(hook)


@router.get("/v1/webhooks/{webhook_id}/deliveries", response_model=list[DeliveryOut])
async def webhook_deliveries(
    request: Request,
    webhook_id: WebhookId,
    principal: ReaderPrincipal,
    status: Annotated[str | None, Query(description=" | ".join(STATUSES))] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> list[DeliveryOut]:
    """Its deliveries, oldest first, with attempts and the last error."""
    if status is not None and status not in STATUSES:
        raise ValidationError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
    await _require(request, webhook_id, principal)
    wanted: Status | None = status
    found: list[Delivery] = await run_in_threadpool(
        Webhooks(_store_of(request)).deliveries, webhook_id, wanted, limit
    )
    return [DeliveryOut(**asdict(d)) for d in found]


@router.post("/v1/webhooks/replay")
async def replay_deliveries(
    request: Request, body: ReplayIn, _principal: AdminPrincipal
) -> dict[str, int]:
    """Make dead deliveries pending again (same delivery ids), e.g. once a receiver is back."""
    webhooks = Webhooks(_store_of(request))
    if body.webhook is not None:
        await run_in_threadpool(webhooks.require, body.webhook)
    replayed = await run_in_threadpool(
        lambda: webhooks.replay(body.webhook, body.ids, delivered_too=body.delivered_too)
    )
    notifier_of(request).wake()
    return {"replayed": replayed}
