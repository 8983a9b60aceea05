"""Notifications end to end: reference sources, the service with its workers, a restart.

A saved search over the generated organisation (production model instances);
an instance is promoted through the registry's admin API (it enters), the
service restarts, and the instance is archived (it leaves). The webhook, the
Server-Sent Events stream and the GraphQL subscription each receive each
transition exactly once; the streams resume from the last id they had.
(The subscription needs a websocket library next to uvicorn: without one, it is
left out here, and tests/api/test_notify.py says so.)
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from mlgraph.api import create_app
from mlgraph.api.server import ApiThread
from mlgraph.api.tokens import Tokens
from mlgraph.catalog import Schema
from mlgraph.config import Settings
from mlgraph.connectors import load_connectors
from mlgraph.reverse.delivery import SIGNATURE_HEADER, verify
from mlgraph.runtime import Service
from mlgraph.sources import CollectingSink
from mlgraph.sources.sinks import HttpSink
from mlgraph.store import Store
from tests.api.test_notify import HAS_WS, SseReader, subscription
from tests.e2e.harness import drain, running_sources
from tests.reverse.test_webhooks import Receiver, receiver  # noqa: F401 - the fixture

PRODUCTION = "type == 'ModelInstance' AND stage == 'production'"


class WsReader:
    """A graphql-transport-ws subscription read in a thread; ``take(n)`` waits for n."""

    def __init__(self, api: str, token: str, search: int, after: str) -> None:
        self.notices: queue.Queue[dict[str, Any]] = queue.Queue()
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        args = (api.replace("http", "ws") + "/graphql", token, search, after)
        self._thread = threading.Thread(target=self._run, args=args, daemon=True)
        self._thread.start()
        assert self._ready.wait(10), "the subscription did not start"

    def _run(self, url: str, token: str, search: int, after: str) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._task = asyncio.current_task()
            with contextlib.suppress(asyncio.CancelledError):
                async with (
                    aiohttp.ClientSession() as http,
                    http.ws_connect(url, protocols=["graphql-transport-ws"]) as ws,
                ):
                    auth = {"Authorization": f"Bearer {token}"}
                    await ws.send_json({"type": "connection_init", "payload": auth})
                    assert (await ws.receive_json(timeout=10))["type"] == "connection_ack"
                    await ws.send_json(subscription(search, after))
                    self._ready.set()
                    while True:
                        message = await ws.receive_json()
                        self.notices.put(message["payload"]["data"]["savedSearchTransitions"])

        asyncio.run(main())

    def take(self, n: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        return [self.notices.get(timeout=timeout) for _ in range(n)]

    def close(self) -> None:
        if self._loop is not None and self._task is not None and self._thread.is_alive():
            with contextlib.suppress(RuntimeError):  # it ended meanwhile: its loop is closed
                self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(10)


def make_service(store: Store, urls: dict[str, str], data_dir: Path) -> Service:
    settings = Settings(
        workers=True, enrich=False, search=False, sources=urls, data_dir=data_dir,
        notify_poll_s=0.05, webhook_backoff_s=0.05,
    )  # fmt: skip
    return Service(settings, store, load_connectors(store.schema, urls))


def wait_for(condition: Any, what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.05)


def test_every_channel_hears_enter_and_leave_once_across_a_restart(
    store: Store,
    store_url: str,
    schema: Schema,
    tmp_path: Path,
    receiver: Receiver,  # noqa: F811
) -> None:
    tokens = Tokens(store.engine)
    alice = tokens.create("alice", ["read"]).secret
    sources_token = tokens.create("sources", ["write"]).secret
    as_alice = {"Authorization": f"Bearer {alice}"}
    sink = CollectingSink()
    with running_sources(sink) as (sources, thread, urls):
        # The organisation, hydrated before the service starts.
        service = make_service(store, urls, tmp_path)
        thread.emit_initial()
        thread.flush()
        service.accept(list(sink.events))
        drain(service)
        org = sources.org
        staged = next(i for i in org.ids("instances")
                      if (org.get("instances", i) or {}).get("stage") != "production")  # fmt: skip
        instance = f"aip://model/registry/{staged}"

        def change(stage: str) -> None:
            response = httpx.put(f"{urls['registry']}/admin/instances/{staged}",
                                 json={"stage": stage}, timeout=10)  # fmt: skip
            assert response.status_code == 200, response.text

        def listen(api: str) -> None:
            """From now on the sources' events go to the service at ``api``, as a webhook."""
            sink = HttpSink(f"{api}/v1/events",
                            headers={"Authorization": f"Bearer {sources_token}"})  # fmt: skip
            sources.attach_sink(sink)

        # -- the service, first run: the instance is promoted and enters. --
        with ApiThread(create_app(service)) as api:
            listen(api)
            body = {"name": "production instances", "filter": PRODUCTION}
            saved = httpx.post(f"{api}/v1/saved-searches", headers=as_alice, json=body, timeout=10)
            assert saved.status_code == 201, saved.text
            search = saved.json()["saved_search"]["id"]
            hook = httpx.post(f"{api}/v1/saved-searches/{search}/webhooks", headers=as_alice,
                              json={"url": receiver.url}, timeout=10).json()  # fmt: skip
            events_url = f"{api}/v1/saved-searches/{search}/events"
            sse = SseReader(events_url, as_alice)
            wait_for(lambda: sse.first_id is not None, "the stream's first id")
            assert sse.first_id is not None
            ws = WsReader(api, alice, search, after=sse.first_id) if HAS_WS else None
            change("production")
            (sse_entered,) = sse.take(1, timeout=30)
            ws_got = ws.take(1) if ws else []
            wait_for(lambda: len(receiver.accepted) == 1, "the webhook to hear 'entered'")
            sse.close()
            if ws:
                ws.close()

        # -- a restart: a new process's worth of parts over the same database. --
        store2 = Store.open(store_url, schema)
        service2 = make_service(store2, urls, tmp_path)
        with ApiThread(create_app(service2)) as api:
            listen(api)
            change("archived")
            wait_for(lambda: len(receiver.accepted) == 2, "the webhook to hear 'left'")
            # The streams come back with the last id they had: only what followed, once.
            sse = SseReader(f"{api}/v1/saved-searches/{search}/events",
                            as_alice | {"Last-Event-ID": sse_entered["id"]})  # fmt: skip
            ws = WsReader(api, alice, search, after=ws_got[-1]["id"]) if ws_got else None
            (sse_left,) = sse.take(1, timeout=30)
            ws_got += ws.take(1) if ws else []
            time.sleep(0.5)  # anything doubled would have arrived by now
            assert sse.events.empty()
            sse.close()
            if ws:
                assert ws.notices.empty()
                ws.close()
            shown = httpx.get(f"{api}/v1/webhooks/{hook['webhook']['id']}", headers=as_alice,
                              timeout=10).json()  # fmt: skip
            assert shown["deliveries"]["delivered"] == 2

    sse_got = [(e["event"], e["id"]) for e in (sse_entered, sse_left)]
    hook_got = [(r.json["event"]["kind"], str(r.json["event"]["id"])) for r in receiver.accepted]
    assert sse_got == hook_got
    assert [kind for kind, _ in sse_got] == ["entered", "left"]
    if HAS_WS:
        assert [(n["kind"].lower(), n["id"]) for n in ws_got] == sse_got
        assert [n["uri"] for n in ws_got] == [instance, instance]
    assert len(receiver.requests) == 2  # none failed, none repeated
    for r in receiver.accepted:
        assert verify(hook["secret"], r.body, r.headers[SIGNATURE_HEADER])
        assert r.json["event"]["uri"] == instance
