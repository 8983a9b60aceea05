"""Webhooks on saved searches and their deliveries, in the store.

A webhook is told about every transition of its search recorded after it was
created. ``fan_out`` turns new outbox rows into deliveries (one per webhook and
transition: the unique key makes it idempotent, and a cursor per webhook keeps
it cheap); the dispatcher claims due deliveries, POSTs them and records the
outcome here. A delivery is ``pending`` until a 2xx (``delivered``), ``dead``
after too many failures or when its owner may no longer read, and
``withheld`` when its entity is one the owner may not read. ``replay`` makes
dead (or delivered) deliveries pending again, with the same delivery id.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

import sqlalchemy as sa

from mlgraph.errors import NotFound, ValidationError
from mlgraph.reverse import tables as rt
from mlgraph.reverse.delivery.notices import Notice
from mlgraph.reverse.outbox import insert_ignoring_duplicates
from mlgraph.store import Store
from mlgraph.store.engine import writing

Status = Literal["pending", "delivered", "dead", "withheld"]
STATUSES: tuple[Status, ...] = ("pending", "delivered", "dead", "withheld")
MAX_URL = 2000
MAX_ERROR = 1000  # characters of a failure kept (a receiver's error page can be long)
FAN_OUT_BATCH = 1000


@dataclass(frozen=True, slots=True)
class Webhook:
    id: int
    search: int
    url: str
    owner: str
    token_id: int | None
    cursor: int  # transitions up to this id are fanned out (or predate the webhook)
    active: bool
    disabled_reason: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Created:
    """A new webhook, and the secret its bodies are signed with (shown this once)."""

    webhook: Webhook
    secret: str


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int  # stable across retries and replays: receivers dedupe on it
    webhook: int
    transition: int
    status: Status
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True, slots=True)
class Due:
    """A claimed delivery with what sending it needs."""

    delivery: int
    attempts: int  # made so far
    webhook: int
    url: str
    secret: str
    token_id: int | None
    search_name: str | None  # None once the search is deleted
    notice: Notice


def _webhook(row: Any) -> Webhook:
    return Webhook(
        int(row.id), int(row.search), row.url, row.owner,
        None if row.token_id is None else int(row.token_id), int(row.cursor),
        bool(row.active), row.disabled_reason, row.created_at,
    )  # fmt: skip


def _delivery(row: Any) -> Delivery:
    return Delivery(
        int(row.id), int(row.webhook), int(row.transition), row.status, int(row.attempts),
        row.next_attempt_at, row.last_error, row.created_at, row.delivered_at,
    )  # fmt: skip


def check_url(url: str) -> str:
    """``url`` if a webhook can POST to it; else a ValidationError saying why."""
    url = url.strip()
    if len(url) > MAX_URL:
        raise ValidationError(f"a webhook url must be at most {MAX_URL} characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(f"a webhook url must be http:// or https:// with a host, got {url!r}")
    return url


class Webhooks:
    def __init__(self, store: Store) -> None:
        self.store = store

    # -- managing ------------------------------------------------------------------

    def create(
        self,
        search_id: int,
        url: str,
        owner: str,
        token_id: int | None = None,
        *,
        after: int | None = None,
    ) -> Created:
        """A webhook told about the search's transitions after id ``after`` (default: now)."""
        url = check_url(url)
        if after is not None and after < 0:
            raise ValidationError(f"after must be a transition id >= 0, got {after}")
        secret = "whsec_" + secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        s = rt.saved_search
        with writing(self.store.engine) as conn:
            if conn.execute(sa.select(s.c.id).where(s.c.id == search_id)).first() is None:
                raise NotFound(f"no saved search {search_id}")
            newest = conn.execute(sa.select(sa.func.max(rt.transition.c.id))).scalar()
            cursor = int(newest or 0) if after is None else after
            webhook_id = conn.execute(
                rt.webhook.insert().values(
                    search=search_id,
                    url=url,
                    secret=secret,
                    owner=owner,
                    token_id=token_id,
                    cursor=cursor,
                    active=True,
                    created_at=now,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
        return Created(self.require(int(webhook_id)), secret)

    def get(self, webhook_id: int) -> Webhook | None:
        w = rt.webhook
        with self.store.engine.connect() as conn:
            row = conn.execute(sa.select(w).where(w.c.id == webhook_id)).first()
        return None if row is None else _webhook(row)

    def require(self, webhook_id: int) -> Webhook:
        found = self.get(webhook_id)
        if found is None:
            raise NotFound(f"no webhook {webhook_id}")
        return found

    def listing(self, search_id: int | None = None) -> list[Webhook]:
        w = rt.webhook
        query = sa.select(w).order_by(w.c.id)
        if search_id is not None:
            query = query.where(w.c.search == search_id)
        with self.store.engine.connect() as conn:
            return [_webhook(r) for r in conn.execute(query)]

    def delete(self, webhook_id: int) -> bool:
        """Delete a webhook and its deliveries."""
        d = rt.webhook_delivery
        with writing(self.store.engine) as conn:
            conn.execute(d.delete().where(d.c.webhook == webhook_id))
            gone = conn.execute(rt.webhook.delete().where(rt.webhook.c.id == webhook_id))
        return bool(gone.rowcount)

    def disable(self, webhook_id: int, reason: str) -> int:
        """Stop a webhook for good: its pending deliveries die with ``reason``; how many."""
        w, d = rt.webhook, rt.webhook_delivery
        with writing(self.store.engine) as conn:
            conn.execute(
                w.update().where(w.c.id == webhook_id).values(active=False, disabled_reason=reason)
            )
            killed = conn.execute(
                d.update()
                .where(d.c.webhook == webhook_id, d.c.status == "pending")
                .values(status="dead", last_error=reason)
            )
        return int(killed.rowcount)

    def deliveries(
        self, webhook_id: int | None = None, status: Status | None = None, limit: int = 100
    ) -> list[Delivery]:
        d = rt.webhook_delivery
        query = sa.select(d).order_by(d.c.id).limit(limit)
        if webhook_id is not None:
            query = query.where(d.c.webhook == webhook_id)
        if status is not None:
            query = query.where(d.c.status == status)
        with self.store.engine.connect() as conn:
            return [_delivery(r) for r in conn.execute(query)]

    def counts(self, webhook_id: int | None = None) -> dict[str, int]:
        d = rt.webhook_delivery
        query = sa.select(d.c.status, sa.func.count()).group_by(d.c.status)
        if webhook_id is not None:
            query = query.where(d.c.webhook == webhook_id)
        with self.store.engine.connect() as conn:
            found = {str(s): int(n) for s, n in conn.execute(query)}
        return {s: found.get(s, 0) for s in STATUSES}

    def replay(
        self,
        webhook_id: int | None = None,
        ids: list[int] | None = None,
        *,
        delivered_too: bool = False,
    ) -> int:
        """Make dead (with ``delivered_too``, also delivered) deliveries pending again, due
        now, with a fresh count of attempts; only those of active webhooks. How many."""
        d, w = rt.webhook_delivery, rt.webhook
        statuses = ["dead", "delivered"] if delivered_too else ["dead"]
        active = sa.select(w.c.id).where(w.c.active.is_(True))
        query = d.update().where(d.c.status.in_(statuses), d.c.webhook.in_(active))
        if webhook_id is not None:
            query = query.where(d.c.webhook == webhook_id)
        if ids is not None:
            query = query.where(d.c.id.in_(ids))
        with writing(self.store.engine) as conn:
            done = conn.execute(
                query.values(status="pending", attempts=0, next_attempt_at=datetime.now(UTC),
                             delivered_at=None)
            )  # fmt: skip
        return int(done.rowcount)

    # -- dispatching ---------------------------------------------------------------

    def any_active(self) -> bool:
        w = rt.webhook
        with self.store.engine.connect() as conn:
            return (
                conn.execute(sa.select(w.c.id).where(w.c.active.is_(True)).limit(1)).first()
                is not None
            )

    def fan_out(self, limit: int = FAN_OUT_BATCH) -> int:
        """Deliveries for the transitions after each active webhook's cursor; how many."""
        w, tr = rt.webhook, rt.transition
        made = 0
        now = datetime.now(UTC)
        with self.store.engine.connect() as conn:
            hooks = conn.execute(
                sa.select(w.c.id, w.c.search, w.c.cursor).where(w.c.active.is_(True))
            ).all()
        for hook in hooks:
            with self.store.engine.connect() as conn:
                ids = list(
                    conn.execute(
                        sa.select(tr.c.id)
                        .where(tr.c.search == hook.search, tr.c.id > hook.cursor)
                        .order_by(tr.c.id)
                        .limit(limit)
                    ).scalars()
                )
            if not ids:
                continue
            with writing(self.store.engine) as conn:
                insert_ignoring_duplicates(
                    conn,
                    rt.webhook_delivery,
                    [
                        {"webhook": hook.id, "transition": i, "status": "pending", "attempts": 0,
                         "next_attempt_at": now, "created_at": now}
                        for i in ids
                    ],
                )  # fmt: skip
                # Only forwards: another dispatcher may have moved it already.
                conn.execute(
                    w.update().where(w.c.id == hook.id, w.c.cursor < ids[-1]).values(cursor=ids[-1])
                )
            made += len(ids)
        return made

    def claim_due(self, lease: timedelta, limit: int) -> list[Due]:
        """Due pending deliveries, each claimed for ``lease`` (another dispatcher, in this
        process or another, skips it meanwhile; a crashed one's claims expire)."""
        d, w, tr, s = rt.webhook_delivery, rt.webhook, rt.transition, rt.saved_search
        now = datetime.now(UTC)
        query = (
            sa.select(
                d.c.id,
                d.c.attempts,
                d.c.next_attempt_at,
                w.c.id.label("webhook"),
                w.c.url,
                w.c.secret,
                w.c.token_id,
                s.c.name.label("search_name"),
                tr.c.id.label("t_id"),
                tr.c.search,
                tr.c.transition,
                tr.c.uri,
                tr.c.tx,
                tr.c.at,
            )
            .join(w, w.c.id == d.c.webhook)
            .join(tr, tr.c.id == d.c.transition)
            .outerjoin(s, s.c.id == tr.c.search)
            .where(d.c.status == "pending", d.c.next_attempt_at <= now, w.c.active.is_(True))
            .order_by(d.c.next_attempt_at, d.c.id)
            .limit(limit)
        )
        claimed: list[Due] = []
        with writing(self.store.engine) as conn:
            for row in conn.execute(query).all():
                taken = conn.execute(
                    d.update()
                    .where(d.c.id == row.id, d.c.status == "pending",
                           d.c.next_attempt_at == row.next_attempt_at)
                    .values(next_attempt_at=now + lease)
                )  # fmt: skip
                if taken.rowcount:
                    notice = Notice(int(row.t_id), int(row.search), row.transition, row.uri,
                                    int(row.tx), row.at)  # fmt: skip
                    claimed.append(
                        Due(int(row.id), int(row.attempts), int(row.webhook), row.url,
                            row.secret, None if row.token_id is None else int(row.token_id),
                            row.search_name, notice)
                    )  # fmt: skip
        return claimed

    def next_due(self) -> datetime | None:
        d = rt.webhook_delivery
        with self.store.engine.connect() as conn:
            at: datetime | None = conn.execute(
                sa.select(sa.func.min(d.c.next_attempt_at)).where(d.c.status == "pending")
            ).scalar()
        return at

    def settle(
        self,
        delivery_id: int,
        status: Status,
        attempts: int,
        *,
        error: str | None = None,
        retry_at: datetime | None = None,
    ) -> None:
        """Record the outcome of an attempt (or a decision not to make one)."""
        d = rt.webhook_delivery
        values: dict[str, Any] = {"status": status, "attempts": attempts}
        if error is not None:
            values["last_error"] = error[:MAX_ERROR]
        if status == "delivered":
            values["delivered_at"] = datetime.now(UTC)
        if retry_at is not None:
            values["next_attempt_at"] = retry_at
        with writing(self.store.engine) as conn:
            conn.execute(d.update().where(d.c.id == delivery_id).values(**values))
