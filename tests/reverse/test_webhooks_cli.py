"""`mlgraph webhooks`: list, deliveries, replay, delete; and a revoked owner stops a webhook."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from typer.testing import CliRunner

from mlgraph.api.auth import Authenticator
from mlgraph.api.notify import TokenGate
from mlgraph.api.tokens import Tokens
from mlgraph.cli import app as cli
from mlgraph.reverse.delivery import Dispatcher, Webhooks
from mlgraph.store import Store
from tests.builders import entity
from tests.reverse.test_webhooks import FAST, Receiver, saved_search
from tests.reverse.test_webhooks import receiver as receiver  # the fixture


def test_list_deliveries_replay_and_delete(
    store: Store,
    store_url: str,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLGRAPH_STORE_URL", store_url)
    monkeypatch.delenv("MLGRAPH_CONFIG", raising=False)
    search, follower = saved_search(store)
    hooks = Webhooks(store)
    hook = hooks.create(search, receiver.url, "alice").webhook
    store.transact(upsert=[entity("Model", "ranking", tags={"team": "personalization"})])
    follower.catch_up()
    hooks.fan_out()
    (delivery,) = hooks.deliveries(hook.id)
    hooks.settle(delivery.id, "dead", 8, error="gave up after 8 attempts: HTTP 500")
    runner = CliRunner()

    listed = runner.invoke(cli, ["webhooks", "list", "--search", str(search)])
    assert listed.exit_code == 0, listed.output
    assert f"{hook.id}  search {search}  {receiver.url}  owner=alice" in listed.output
    assert "dead=1" in listed.output
    dead = runner.invoke(cli, ["webhooks", "deliveries", str(hook.id), "--status", "dead"])
    assert dead.exit_code == 0 and "gave up after 8 attempts" in dead.output
    bad = runner.invoke(cli, ["webhooks", "deliveries", str(hook.id), "--status", "lost"])
    assert bad.exit_code == 1 and "--status must be one of" in bad.output

    replayed = runner.invoke(cli, ["webhooks", "replay", "--webhook", str(hook.id)])
    assert replayed.exit_code == 0 and "replayed 1" in replayed.output
    assert runner.invoke(cli, ["webhooks", "replay", "--webhook", "999"]).exit_code == 1

    async def send() -> None:
        async with aiohttp.ClientSession() as http:
            await Dispatcher(store, http, policy=FAST).drain(10)

    asyncio.run(send())
    assert [r.headers["X-Mlgraph-Delivery"] for r in receiver.accepted] == [str(delivery.id)]

    assert runner.invoke(cli, ["webhooks", "delete", str(hook.id)]).exit_code == 0
    assert hooks.get(hook.id) is None
    assert runner.invoke(cli, ["webhooks", "delete", str(hook.id)]).exit_code == 1


def test_a_revoked_owner_token_stops_its_webhook(store: Store, receiver: Receiver) -> None:
    tokens = Tokens(store.engine)
    alice = tokens.create("alice", ["read"])
    search, follower = saved_search(store)
    hooks = Webhooks(store)
    hook = hooks.create(search, receiver.url, "alice", token_id=alice.info.id).webhook
    gate = TokenGate(store.engine, Authenticator(tokens, ttl_s=0))

    def promote(name: str) -> None:
        store.transact(upsert=[entity("Model", name, tags={"team": "personalization"})])
        follower.catch_up()

    async def send() -> None:
        async with aiohttp.ClientSession() as http:
            await Dispatcher(store, http, gate=gate, policy=FAST).drain(10)

    promote("first")
    asyncio.run(send())
    assert len(receiver.accepted) == 1  # the token may read: delivered
    tokens.revoke(alice.info.id)
    promote("second")
    asyncio.run(send())
    assert len(receiver.requests) == 1  # nothing more was sent
    stopped = hooks.require(hook.id)
    assert not stopped.active
    assert stopped.disabled_reason == "the webhook owner's API token 'alice' " \
        f"({alice.info.prefix}…) was revoked"  # fmt: skip
    assert hooks.counts(hook.id) == {"pending": 0, "delivered": 1, "dead": 1, "withheld": 0}
