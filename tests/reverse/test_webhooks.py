"""Webhook delivery against a real HTTP receiver, on SQLite and PostgreSQL.

Signed bodies a receiver can verify, retries with backoff (and Retry-After),
dead after N attempts, replay, the owner's access, and exactly once per
(webhook, transition) however often fan-out and dispatch run.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlgraph.reverse import ReverseFollower, SavedSearches
from mlgraph.reverse import tables as rt
from mlgraph.reverse.delivery import (
    SIGNATURE_HEADER,
    DeliveryPolicy,
    Dispatcher,
    OutboxBell,
    Reader,
    Webhooks,
    sign,
    verify,
)
from mlgraph.reverse.delivery.dispatcher import retry_after
from mlgraph.store import Store
from mlgraph.store.engine import writing
from tests.builders import entity, uri

PERSONALIZATION = "type == 'Model' AND tags.team == 'personalization'"
MODEL = uri("Model", "ranking")
FAST = DeliveryPolicy(max_attempts=5, backoff_s=0.05, backoff_max_s=1.0, timeout_s=2.0)


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float
    status: int

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1 that answers ``script`` in turn, then ``then``."""

    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    then: int = 200
    requests: list[Received] = field(default_factory=list)
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def accepted(self) -> list[Received]:
        return [r for r in self.requests if 200 <= r.status < 300]

    def answer(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str]]:
        with self._lock:
            status, extra = self.script.pop(0) if self.script else (self.then, {})
            self.requests.append(Received(headers, body, time.monotonic(), status))
        return status, extra


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            status, extra = found.answer(dict(self.headers.items()), body)
            self.send_response(status)
            for key, value in extra.items():
                self.send_header(key, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    found.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    yield found
    server.shutdown()
    server.server_close()


def enter_and_leave(store: Store, follower: ReverseFollower) -> tuple[int, int]:
    """The model enters the personalization search, then leaves it: their transactions."""
    entered = store.transact(upsert=[entity("Model", "ranking", tags={"team": "personalization"})])
    follower.catch_up()
    left = store.transact(upsert=[entity("Model", "ranking", tags={"team": "ads"})])
    follower.catch_up()
    assert entered.tx is not None and left.tx is not None
    return entered.tx, left.tx


def saved_search(store: Store) -> tuple[int, ReverseFollower]:
    saved = SavedSearches(store).save("alice", "my team's models", PERSONALIZATION)
    follower = ReverseFollower(store)
    follower.catch_up()
    return saved.id, follower


async def dispatch(store: Store, policy: DeliveryPolicy = FAST, **kwargs: Any) -> Dispatcher:
    async with aiohttp.ClientSession() as http:
        dispatcher = Dispatcher(store, http, policy=policy, seed=1, **kwargs)
        await dispatcher.drain(30)
    return dispatcher


def test_receivers_get_entered_then_left_signed_and_once(store: Store, receiver: Receiver) -> None:
    search, follower = saved_search(store)
    webhooks = Webhooks(store)
    created = webhooks.create(search, receiver.url, "alice")
    entered_tx, left_tx = enter_and_leave(store, follower)

    asyncio.run(dispatch(store))
    asyncio.run(dispatch(store))  # nothing new: nothing sent again
    events = [r.json["event"] for r in receiver.requests]
    assert [(e["kind"], e["uri"], e["tx"]) for e in events] == [
        ("entered", MODEL, entered_tx),
        ("left", MODEL, left_tx),
    ]
    for r in receiver.requests:
        # What a receiver does: the HMAC of the raw body with the secret it was given.
        assert verify(created.secret, r.body, r.headers[SIGNATURE_HEADER])
        assert not verify("another secret", r.body, r.headers[SIGNATURE_HEADER])
        assert not verify(created.secret, r.body + b" ", r.headers[SIGNATURE_HEADER])
        assert r.headers["X-Mlgraph-Delivery"] == str(r.json["delivery"])
        assert r.headers["X-Mlgraph-Event"] == r.json["event"]["kind"]
        assert r.json["search"] == {"id": search, "name": "my team's models"}
        assert r.json["webhook"] == created.webhook.id and r.json["attempt"] == 1
    assert webhooks.counts(created.webhook.id) == {
        "pending": 0, "delivered": 2, "dead": 0, "withheld": 0,
    }  # fmt: skip


def test_a_webhook_hears_only_what_follows_its_creation_unless_asked(
    store: Store, receiver: Receiver
) -> None:
    search, follower = saved_search(store)
    enter_and_leave(store, follower)
    webhooks = Webhooks(store)
    webhooks.create(search, receiver.url, "alice")  # from now
    asyncio.run(dispatch(store))
    assert receiver.requests == []
    webhooks.create(search, receiver.url, "alice", after=0)  # and the history
    asyncio.run(dispatch(store))
    assert [r.json["event"]["kind"] for r in receiver.requests] == ["entered", "left"]


def test_fan_out_and_concurrent_dispatchers_deliver_each_transition_once(
    store: Store, receiver: Receiver
) -> None:
    search, follower = saved_search(store)
    webhooks = Webhooks(store)
    hooks = [webhooks.create(search, receiver.url, "alice").webhook.id for _ in range(2)]
    for i in range(5):
        store.transact(upsert=[entity("Model", f"m{i}", tags={"team": "personalization"})])
    follower.catch_up()
    assert webhooks.fan_out() == 10
    # Fanned out again from the start (a crash before the cursor moved): no duplicates.
    with writing(store.engine) as conn:
        conn.execute(rt.webhook.update().values(cursor=0))
    webhooks.fan_out()

    async def two_dispatchers() -> None:
        await asyncio.gather(dispatch(store), dispatch(store))

    asyncio.run(two_dispatchers())
    keys = [(r.json["webhook"], r.json["event"]["id"]) for r in receiver.requests]
    assert len(keys) == len(set(keys)) == 10
    assert {w for w, _ in keys} == set(hooks)


def test_failures_are_retried_with_backoff_until_delivered(
    store: Store, receiver: Receiver
) -> None:
    receiver.script = [(503, {}), (500, {}), (404, {})]
    search, follower = saved_search(store)
    hook = Webhooks(store).create(search, receiver.url, "alice").webhook
    store.transact(upsert=[entity("Model", "ranking", tags={"team": "personalization"})])
    follower.catch_up()
    asyncio.run(dispatch(store))

    assert [r.status for r in receiver.requests] == [503, 500, 404, 200]
    assert len({r.headers["X-Mlgraph-Delivery"] for r in receiver.requests}) == 1
    assert [r.json["attempt"] for r in receiver.requests] == [1, 2, 3, 4]
    gaps = [b.at - a.at for a, b in zip(receiver.requests, receiver.requests[1:], strict=False)]
    # At least half of 0.05 s, 0.1 s, 0.2 s (the other half is jitter).
    assert [g >= FAST.backoff_s * 2**i / 2 for i, g in enumerate(gaps)] == [True] * 3
    (delivery,) = Webhooks(store).deliveries(hook.id)
    assert (delivery.status, delivery.attempts) == ("delivered", 4)
    assert delivery.last_error is not None and "HTTP 404" in delivery.last_error


def test_retry_after_is_honoured(store: Store, receiver: Receiver) -> None:
    receiver.script = [(429, {"Retry-After": "1"})]
    search, follower = saved_search(store)
    Webhooks(store).create(search, receiver.url, "alice")
    store.transact(upsert=[entity("Model", "ranking", tags={"team": "personalization"})])
    follower.catch_up()
    asyncio.run(dispatch(store))
    first, second = receiver.requests
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 0.95  # not the 0.05 s backoff


def test_dead_after_max_attempts_then_replay_delivers(store: Store, receiver: Receiver) -> None:
    receiver.then = 500
    search, follower = saved_search(store)
    webhooks = Webhooks(store)
    hook = webhooks.create(search, receiver.url, "alice").webhook
    store.transact(upsert=[entity("Model", "ranking", tags={"team": "personalization"})])
    follower.catch_up()
    policy = DeliveryPolicy(max_attempts=3, backoff_s=0.02, timeout_s=2.0)
    stats = asyncio.run(dispatch(store, policy)).stats
    assert (len(receiver.requests), stats.dead, stats.delivered) == (3, 1, 0)
    (dead,) = webhooks.deliveries(hook.id, "dead")
    assert dead.last_error is not None
    assert dead.last_error.startswith(f"gave up after 3 attempts: HTTP 500 from {receiver.url}")

    receiver.then = 200  # the receiver is fixed
    assert webhooks.replay(hook.id) == 1
    assert webhooks.replay(hook.id) == 0  # pending already
    asyncio.run(dispatch(store, policy))
    last = receiver.requests[-1]
    assert (last.status, last.headers["X-Mlgraph-Delivery"]) == (200, str(dead.id))
    assert webhooks.counts(hook.id)["delivered"] == 1
    # Replaying delivered ones sends them again, with the same delivery id to dedupe on.
    assert webhooks.replay(hook.id, delivered_too=True) == 1
    asyncio.run(dispatch(store, policy))
    assert [r.headers["X-Mlgraph-Delivery"] for r in receiver.accepted] == [str(dead.id)] * 2


def test_an_unreachable_receiver_fails_with_the_reason(store: Store) -> None:
    search, follower = saved_search(store)
    webhooks = Webhooks(store)
    hook = webhooks.create(search, "http://127.0.0.1:9/nobody", "alice").webhook
    store.transact(upsert=[entity("Model", "ranking", tags={"team": "personalization"})])
    follower.catch_up()
    asyncio.run(dispatch(store, DeliveryPolicy(max_attempts=1, timeout_s=2.0)))
    (dead,) = webhooks.deliveries(hook.id, "dead")
    assert dead.last_error is not None and "ClientConnectorError" in dead.last_error


class RefusingGate:
    """An owner who may not read at all, or may not read ``hidden``."""

    def __init__(self, refusal: str | None = None, hidden: str = "") -> None:
        self.refusal = refusal
        self.hidden = hidden

    async def reader(self, token_id: int | None) -> Reader | str:
        return self.refusal or (lambda u: u != self.hidden)


def test_an_owner_who_may_no_longer_read_stops_the_webhook(
    store: Store, receiver: Receiver
) -> None:
    search, follower = saved_search(store)
    webhooks = Webhooks(store)
    hook = webhooks.create(search, receiver.url, "alice", token_id=7).webhook
    enter_and_leave(store, follower)
    gate = RefusingGate("the webhook owner's API token 'alice' was revoked")
    asyncio.run(dispatch(store, gate=gate))
    assert receiver.requests == []
    stopped = webhooks.require(hook.id)
    assert not stopped.active and stopped.disabled_reason == gate.refusal
    dead = webhooks.deliveries(hook.id, "dead")
    assert len(dead) == 2 and {d.last_error for d in dead} == {gate.refusal}
    assert webhooks.replay(hook.id) == 0  # not while it is stopped


def test_nothing_is_sent_about_an_entity_the_owner_may_not_read(
    store: Store, receiver: Receiver
) -> None:
    search, follower = saved_search(store)
    webhooks = Webhooks(store)
    hook = webhooks.create(search, receiver.url, "alice").webhook
    team = {"team": "personalization"}
    store.transact(
        upsert=[entity("Model", "ranking", tags=team), entity("Model", "visible", tags=team)]
    )
    follower.catch_up()
    # The search stopped compiling (recorded by the recompiler as 'invalid', no entity).
    with writing(store.engine) as conn:
        conn.execute(rt.transition.insert().values(
            search=search, uri="", tx=store.last_tx(), transition="invalid", at=datetime.now(UTC)
        ))  # fmt: skip
    asyncio.run(dispatch(store, gate=RefusingGate(hidden=MODEL)))
    assert [(r.json["event"]["kind"], r.json["event"]["uri"]) for r in receiver.requests] == [
        ("entered", uri("Model", "visible")),
        ("invalid", None),
    ]
    (withheld,) = webhooks.deliveries(hook.id, "withheld")
    assert withheld.attempts == 0


def test_bad_webhook_urls_are_refused(store: Store) -> None:
    search, _ = saved_search(store)
    webhooks = Webhooks(store)
    for bad in ("ftp://example.com/x", "not a url", "http://", "https:///path"):
        with pytest.raises(ValueError, match="must be http:// or https:// with a host"):
            webhooks.create(search, bad, "alice")
    with pytest.raises(LookupError, match="no saved search 999"):
        webhooks.create(999, "http://127.0.0.1/x", "alice")
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(rt.webhook)).scalar() == 0


# -- pure parts ----------------------------------------------------------------------


@given(secret=st.text(min_size=1, max_size=40), body=st.binary(max_size=200),
       flip=st.integers(0, 199))  # fmt: skip
def test_a_signature_verifies_only_its_own_body(secret: str, body: bytes, flip: int) -> None:
    signature = sign(secret, body)
    assert signature.startswith("sha256=") and len(signature) == 7 + 64
    assert verify(secret, body, signature)
    if body:
        i = flip % len(body)
        tampered = body[:i] + bytes([body[i] ^ 1]) + body[i + 1 :]
        assert not verify(secret, tampered, signature)
    assert not verify(secret + "x", body, signature)
    assert not verify(secret, body, None)


@given(attempts=st.integers(1, 40), base=st.floats(0.01, 10), most=st.floats(0.1, 1000),
       seed=st.integers(0, 2**32))  # fmt: skip
def test_backoff_doubles_up_to_its_ceiling_with_half_jitter(
    attempts: int, base: float, most: float, seed: int
) -> None:
    policy = DeliveryPolicy(backoff_s=base, backoff_max_s=most)
    ceiling = min(most, base * 2 ** (attempts - 1))
    delay = policy.delay(attempts, None, random.Random(seed))
    assert ceiling / 2 <= delay <= ceiling
    assert policy.delay(attempts, 3.0, random.Random(seed)) == min(3.0, most)
    assert policy.delay(attempts, -5.0, random.Random(seed)) == 0.0


def test_retry_after_reads_seconds_and_dates() -> None:
    assert retry_after("7") == 7.0
    assert retry_after(None) is None and retry_after("soon") is None
    later = retry_after("Wed, 21 Oct 2099 07:28:00 GMT")
    assert later is not None and later > 1e9


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    answers=st.lists(st.sampled_from([200, 200, 500, 503, 429]), max_size=30),
    hooks=st.integers(1, 3),
    models=st.integers(1, 4),
    dispatchers=st.integers(1, 2),
)
def test_whatever_receivers_answer_each_transition_is_accepted_at_most_once(
    tmp_path_factory: pytest.TempPathFactory,
    receiver: Receiver,
    answers: list[int],
    hooks: int,
    models: int,
    dispatchers: int,
) -> None:
    """Delivered means accepted exactly once; dead means tried max_attempts times, never
    accepted; nothing is left pending."""
    receiver.requests.clear()
    receiver.script = [(status, {}) for status in answers]
    store = Store.open(f"sqlite:///{tmp_path_factory.mktemp('once') / 'store.db'}")
    try:
        search, follower = saved_search(store)
        webhooks = Webhooks(store)
        ids = [webhooks.create(search, receiver.url, "alice").webhook.id for _ in range(hooks)]
        for i in range(models):
            store.transact(upsert=[entity("Model", f"m{i}", tags={"team": "personalization"})])
        follower.catch_up()
        policy = DeliveryPolicy(max_attempts=3, backoff_s=0.01, backoff_max_s=0.02)

        async def run() -> None:
            await asyncio.gather(*(dispatch(store, policy) for _ in range(dispatchers)))

        asyncio.run(run())
        tries: dict[str, list[int]] = {}
        for r in receiver.requests:
            tries.setdefault(r.headers["X-Mlgraph-Delivery"], []).append(r.status)
        deliveries = [d for w in ids for d in webhooks.deliveries(w)]
        assert len(deliveries) == hooks * models
        for d in deliveries:
            statuses = tries[str(d.id)]
            assert statuses.count(200) == (1 if d.status == "delivered" else 0)
            if d.status == "delivered":
                assert statuses[-1] == 200 and len(statuses) == d.attempts <= 3
            else:
                assert d.status == "dead" and len(statuses) == d.attempts == 3
    finally:
        store.close()


# -- the bell ------------------------------------------------------------------------


def test_the_bell_rings_at_once_on_a_commit_here_and_by_polling_for_others(
    store: Store, store_url: str
) -> None:
    _, follower = saved_search(store)
    elsewhere = Store.open(store_url, store.schema)  # another process's engine: no commit event

    async def woken_after(bell: OutboxBell, write: Store) -> float:
        await bell.wait(-1, 5)  # the first look
        seen = bell.last
        started = time.monotonic()

        def commit() -> None:
            time.sleep(0.2)
            write.transact(
                upsert=[entity("Model", f"m{time.time_ns()}", tags={"team": "personalization"})]
            )
            ReverseFollower(write).catch_up()

        waiting = asyncio.create_task(bell.wait(seen, 10))
        await asyncio.to_thread(commit)
        assert await waiting and bell.last > seen
        await bell.close()
        return time.monotonic() - started

    try:
        follower.catch_up()
        here = asyncio.run(woken_after(OutboxBell(store, poll_s=3.0), store))
        assert here < 1.5  # the commit event, not the 3 s poll
        there = asyncio.run(woken_after(OutboxBell(store, poll_s=0.05), elsewhere))
        assert there < 1.5  # the poll
        slow = asyncio.run(woken_after(OutboxBell(store, poll_s=2.5), elsewhere))
        assert slow >= 2.0  # no commit event from another engine: only the poll saw it
    finally:
        elsewhere.close()
