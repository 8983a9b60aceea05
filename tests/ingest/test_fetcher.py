"""The fetcher against the reference sources over real HTTP: answers, faults, limits, paging."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import pytest

from mlgraph.catalog import Schema
from mlgraph.connectors import BatchGet, Connector, Subject, load_connectors
from mlgraph.ingest.fetcher import (
    Fetcher,
    FetchPolicy,
    SourceRefused,
    SourceUnavailable,
    client_session,
    env_proxy,
)
from mlgraph.sources import FaultConfig, Sources
from tests.e2e.harness import running_sources

T = TypeVar("T")
ALICE = "/api/v1/users/alice"


@pytest.fixture(scope="module")
def sources() -> Iterator[tuple[Sources, dict[str, str]]]:
    with running_sources() as (sources, _, urls):
        yield sources, urls


@pytest.fixture
def identity(sources: tuple[Sources, dict[str, str]], schema: Schema) -> Iterator[Connector]:
    running, urls = sources
    yield load_connectors(schema, urls).get("identity")
    running.set_faults(FaultConfig())


def with_fetcher(work: Callable[[Fetcher], Awaitable[T]], policy: FetchPolicy | None = None) -> T:
    async def go() -> T:
        policy_ = policy or FetchPolicy()
        async with client_session(policy_) as http:
            return await work(Fetcher(http, policy_))

    return asyncio.run(go())


def test_get_answers_the_json_and_none_for_a_missing_object(identity: Connector) -> None:
    async def work(fetcher: Fetcher) -> None:
        alice = await fetcher.get(identity, identity.base_url + ALICE)
        assert alice is not None and alice["username"] == "alice"
        assert await fetcher.get(identity, identity.base_url + "/api/v1/users/nobody") is None

    with_fetcher(work)


def test_the_cache_answers_only_with_responses_fetched_after_the_event(
    identity: Connector,
) -> None:
    url = identity.base_url + ALICE

    async def work(fetcher: Fetcher) -> None:
        before = time.time()
        await fetcher.get(identity, url, fresh_after=before)
        await fetcher.get(identity, url, fresh_after=before)  # fetched after: cached
        assert fetcher.requests == 1
        await fetcher.get(identity, url, fresh_after=time.time() + 1)  # a later event
        await fetcher.get(identity, url)  # no event time: never cached
        assert fetcher.requests == 3

    with_fetcher(work)


def test_a_429_says_when_to_retry_and_does_not_open_the_circuit(
    sources: tuple[Sources, dict[str, str]], identity: Connector
) -> None:
    sources[0].set_faults(FaultConfig(rate_limit=1.0, retry_after_s=7), "identity")

    async def work(fetcher: Fetcher) -> None:
        for _ in range(FetchPolicy().breaker_threshold + 2):
            with pytest.raises(SourceUnavailable, match="429") as raised:
                await fetcher.get(identity, identity.base_url + ALICE)
            assert raised.value.retry_after_s == 7
        assert fetcher.requests == FetchPolicy().breaker_threshold + 2

    with_fetcher(work)


def test_server_errors_retry_then_open_the_circuit(
    sources: tuple[Sources, dict[str, str]], identity: Connector
) -> None:
    sources[0].set_faults(FaultConfig(error_rate=1.0), "identity")
    policy = FetchPolicy(breaker_threshold=3, breaker_cooldown_s=60)

    async def work(fetcher: Fetcher) -> None:
        for _ in range(3):
            with pytest.raises(SourceUnavailable, match=r": 50[03] "):
                await fetcher.get(identity, identity.base_url + ALICE)
        with pytest.raises(SourceUnavailable, match="circuit open") as raised:
            await fetcher.get(identity, identity.base_url + ALICE)
        assert raised.value.retry_after_s is not None and raised.value.retry_after_s > 50
        assert fetcher.requests == 3  # the open circuit made no call

    with_fetcher(work, policy)


def test_a_hanging_source_times_out(
    sources: tuple[Sources, dict[str, str]], identity: Connector
) -> None:
    sources[0].set_faults(FaultConfig(timeout_rate=1.0, timeout_s=2), "identity")

    async def work(fetcher: Fetcher) -> None:
        with pytest.raises(SourceUnavailable, match=r"timed out after 0.3s"):
            await fetcher.get(identity, identity.base_url + ALICE)

    with_fetcher(work, FetchPolicy(timeout_s=0.3))


def test_an_unreachable_source_is_unavailable(schema: Schema) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    down = load_connectors(schema, {"identity": f"http://127.0.0.1:{port}"}).get("identity")

    async def work(fetcher: Fetcher) -> None:
        with pytest.raises(SourceUnavailable, match="ClientConnectorError"):
            await fetcher.get(down, down.base_url + ALICE)

    with_fetcher(work)


def test_other_client_errors_are_refused(identity: Connector) -> None:
    async def work(fetcher: Fetcher) -> None:
        with pytest.raises(SourceRefused, match="422"):
            await fetcher.get(identity, identity.base_url + "/api/v1/users?limit=0")

    with_fetcher(work)


def users(ids: list[str]) -> list[Subject]:
    return [Subject("identity", "user", id) for id in ids]


def test_fetches_asked_for_together_go_out_as_one_batch_get(
    sources: tuple[Sources, dict[str, str]], identity: Connector
) -> None:
    known = sources[0].org.ids("users")[:5]
    asked = [*known, "nobody", known[0]]  # a missing user, and one asked for twice

    async def work(fetcher: Fetcher) -> list[object]:
        found = await asyncio.gather(*(fetcher.fetch(identity, s) for s in users(asked)))
        assert fetcher.requests == 1
        return list(found)

    found = with_fetcher(work)
    expected = [sources[0].org.get("users", id) for id in known]
    assert found == [*expected, None, expected[0]]


def test_a_batch_is_cut_at_max_ids_and_at_the_url_length(
    sources: tuple[Sources, dict[str, str]], identity: Connector
) -> None:
    user = identity.resources["user"]  # the fixture's connector is this test's own
    assert user.batch is not None
    ids = sources[0].org.ids("users")[:9]

    def fetch_all(batch: BatchGet, policy: FetchPolicy) -> int:
        identity.resources["user"] = dataclasses.replace(user, batch=batch)

        async def work(fetcher: Fetcher) -> int:
            found = await asyncio.gather(*(fetcher.fetch(identity, s) for s in users(ids)))
            assert all(f is not None for f in found)
            return fetcher.requests

        return with_fetcher(work, policy)

    assert fetch_all(dataclasses.replace(user.batch, max_ids=4), FetchPolicy()) == 3
    one_id = len(user.batch.url(identity.base_url, ids[:1]))
    assert fetch_all(user.batch, FetchPolicy(max_url_chars=one_id)) == len(ids)


def test_a_failed_batch_fails_every_fetch_in_it(
    sources: tuple[Sources, dict[str, str]], identity: Connector
) -> None:
    sources[0].set_faults(FaultConfig(rate_limit=1.0, retry_after_s=3), "identity")

    async def work(fetcher: Fetcher) -> list[BaseException | object]:
        return await asyncio.gather(
            *(fetcher.fetch(identity, s) for s in users(["alice", "bob"])), return_exceptions=True
        )

    failed = with_fetcher(work)
    assert all(isinstance(f, SourceUnavailable) and f.retry_after_s == 3 for f in failed)


def test_batch_answers_fill_the_cache_of_single_fetches(identity: Connector) -> None:
    async def work(fetcher: Fetcher) -> None:
        before = time.time()
        await asyncio.gather(*(fetcher.fetch(identity, s, fresh_after=before)
                               for s in users(["alice", "bob"])))  # fmt: skip
        alice = await fetcher.get(identity, identity.base_url + ALICE, fresh_after=before)
        assert alice is not None and alice["username"] == "alice"
        assert fetcher.requests == 1

    with_fetcher(work)


def test_an_unusable_batch_answer_falls_back_to_one_get_each(
    identity: Connector, caplog: pytest.LogCaptureFixture
) -> None:
    user = identity.resources["user"]
    assert user.batch is not None
    wrong = {
        "a list .objects.": dataclasses.replace(user.batch, items="objects"),
        "has no .id.": dataclasses.replace(user.batch, id_field="id"),
        "no batch GET": dataclasses.replace(user.batch, path="/api/v1/people:batchGet"),
    }
    for message, batch in wrong.items():
        identity.resources["user"] = dataclasses.replace(user, batch=batch)
        caplog.clear()

        async def work(fetcher: Fetcher) -> list[object]:
            found = await asyncio.gather(
                *(fetcher.fetch(identity, s) for s in users(["alice", "nobody"]))
            )
            assert fetcher.requests == 3  # the batch, then one GET each
            return list(found)

        alice, nobody = with_fetcher(work)
        assert isinstance(alice, dict) and alice["username"] == "alice"
        assert nobody is None  # a 404 of its own GET: truly missing
        assert re.search(message, caplog.text), caplog.text


def test_list_ids_follows_every_page(
    sources: tuple[Sources, dict[str, str]], identity: Connector
) -> None:
    users = sources[0].org.ids("users")

    async def work(fetcher: Fetcher) -> list[str]:
        return [id async for id, _ in fetcher.list_ids(identity, identity.resources["user"], 2)]

    listed = with_fetcher(work)
    assert sorted(listed) == sorted(users) and len(users) > 2


def test_the_proxy_variables_are_honoured_once_per_source(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    assert env_proxy("http://registry:8080") is None
    monkeypatch.setenv("HTTP_PROXY", "proxy.corp:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1,.internal")
    assert env_proxy("http://registry:8080") == "http://proxy.corp:3128"
    assert env_proxy("http://127.0.0.1:9101") is None
    assert env_proxy("http://registry.internal:8080") is None
    assert env_proxy("https://registry:8443") is None  # HTTPS_PROXY is not set
