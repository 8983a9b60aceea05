"""Notifications over the API: SSE and GraphQL subscriptions with resume, webhook routes.

Streams run over a real uvicorn server (``ApiThread``); the reverse follower is
driven by the test, so each transition appears exactly when the test says.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
from fastapi.testclient import TestClient

from mlgraph.api import create_app
from mlgraph.api.server import ApiThread
from mlgraph.api.tokens import Tokens
from mlgraph.config import Settings
from mlgraph.connectors import load_connectors
from mlgraph.reverse import ReverseFollower, SavedSearches
from mlgraph.reverse.delivery import Webhooks
from mlgraph.runtime import Service
from mlgraph.store import Store
from tests.builders import entity, uri

PERSONALIZATION = "type == 'Model' AND tags.team == 'personalization'"
# uvicorn serves websockets only with one of these installed (uvicorn[standard] brings one).
HAS_WS = any(importlib.util.find_spec(m) is not None for m in ("websockets", "wsproto"))
needs_ws = pytest.mark.skipif(not HAS_WS, reason="uvicorn has no websocket library installed")
MODEL = uri("Model", "ranking")
TEAM = {"team": "personalization"}


class Scene:
    """A store with tokens, a saved search of the reader's, and a follower the test drives."""

    def __init__(self, store: Store) -> None:
        self.store = store
        tokens = Tokens(store.engine)
        self.reader = tokens.create("alice", ["read"]).secret
        self.other = tokens.create("bob", ["read"]).secret
        self.writer = tokens.create("registry", ["write"]).secret
        self.admin = tokens.create("operator", ["admin"]).secret
        self.search = SavedSearches(store).save("alice", "my team's models", PERSONALIZATION).id
        self.follower = ReverseFollower(store)
        self.follower.catch_up()

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.reader}"}

    def enter(self, name: str = "ranking") -> int:
        tx = self.store.transact(upsert=[entity("Model", name, tags=TEAM)]).tx
        self.follower.catch_up()
        assert tx is not None
        return tx

    def leave(self, name: str = "ranking") -> int:
        tx = self.store.transact(upsert=[entity("Model", name, tags={"team": "ads"})]).tx
        self.follower.catch_up()
        assert tx is not None
        return tx


def make_service(store: Store) -> Service:
    return Service(
        Settings(workers=False, notify_poll_s=0.05), store, load_connectors(store.schema)
    )


@pytest.fixture
def scene(store: Store) -> Scene:
    return Scene(store)


@pytest.fixture
def server(store: Store, scene: Scene) -> Iterator[str]:
    with ApiThread(create_app(make_service(store))) as url:
        yield url


# -- Server-Sent Events --------------------------------------------------------------


class SseReader:
    """Reads an event stream in a thread; ``take(n)`` waits for n events (not comments)."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.first_id: str | None = None
        self.status = 0
        self.content_type = ""
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._thread = threading.Thread(target=self._run, args=(url, headers), daemon=True)
        self._thread.start()
        assert self._ready.wait(10), "the stream did not open"

    def _run(self, url: str, headers: dict[str, str]) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._task = asyncio.current_task()
            with contextlib.suppress(asyncio.CancelledError):
                await self._stream(url, headers)

        asyncio.run(main())

    async def _stream(self, url: str, headers: dict[str, str]) -> None:
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        async with (
            aiohttp.ClientSession(timeout=timeout) as http,
            http.get(url, headers=headers) as response,
        ):
            self.status = response.status
            self.content_type = response.headers.get("content-type", "")
            self._ready.set()
            if response.status != 200:
                return
            event: dict[str, Any] = {}
            async for raw in response.content:
                line = raw.decode().rstrip("\r\n")
                if line == "":
                    if "data" in event:
                        self.events.put(event)
                    elif "id" in event and self.first_id is None:
                        self.first_id = event["id"]
                    event = {}
                elif not line.startswith(":"):
                    key, _, value = line.partition(":")
                    event[key] = value.removeprefix(" ")

    def take(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        return [self.events.get(timeout=timeout) for _ in range(n)]

    def close(self) -> None:
        """Hang up, as a client going away does."""
        if self._loop is not None and self._task is not None and self._thread.is_alive():
            with contextlib.suppress(RuntimeError):  # it ended meanwhile: its loop is closed
                self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(10)


def test_sse_streams_entered_and_left_and_resumes_from_the_last_id(
    scene: Scene, server: str
) -> None:
    url = f"{server}/v1/saved-searches/{scene.search}/events"
    stream = SseReader(url, scene.headers())
    assert stream.status == 200 and stream.content_type.startswith("text/event-stream")
    entered_tx = scene.enter()
    (entered,) = stream.take(1)
    left_tx = scene.leave()
    (left,) = stream.take(1)
    stream.close()
    for event, kind, tx in ((entered, "entered", entered_tx), (left, "left", left_tx)):
        data = json.loads(event["data"])
        assert event["event"] == kind and event["id"] == str(data["id"])
        assert (data["kind"], data["uri"], data["tx"], data["search"]) == (
            kind, MODEL, tx, scene.search,
        )  # fmt: skip
    assert stream.first_id is not None and int(stream.first_id) < int(entered["id"])

    # Reconnecting with the last id received: only what came after, once.
    scene.enter("other")
    resumed = SseReader(url, scene.headers() | {"Last-Event-ID": entered["id"]})
    got = resumed.take(2)
    assert [(e["event"], json.loads(e["data"])["uri"]) for e in got] == [
        ("left", MODEL),
        ("entered", uri("Model", "other")),
    ]
    time.sleep(0.3)
    assert resumed.events.empty()
    resumed.close()
    # ?after= does the same; after=0 is the whole history.
    everything = SseReader(url + "?after=0", scene.headers())
    assert [e["event"] for e in everything.take(3)] == ["entered", "left", "entered"]
    everything.close()


def test_a_revoked_token_ends_its_stream_before_the_next_notice(scene: Scene) -> None:
    app = create_app(make_service(scene.store))
    with ApiThread(app) as server:
        stream = SseReader(f"{server}/v1/saved-searches/{scene.search}/events", scene.headers())
        alice = next(t for t in Tokens(scene.store.engine).listing() if t.name == "alice")
        Tokens(scene.store.engine).revoke(alice.id)
        app.state.auth.forget()  # as the cache would after a few seconds
        scene.enter()
        (last,) = stream.take(1)
        stream.close()
    assert last["event"] == "error"
    assert "invalid or revoked API token" in json.loads(last["data"])["error"]


def test_sse_needs_read_and_an_existing_search(scene: Scene, server: str) -> None:
    url = f"{server}/v1/saved-searches/{scene.search}/events"
    with httpx.Client(timeout=5) as http:
        assert http.get(url).status_code == 401
        assert http.get(url, headers=scene.headers(scene.writer)).status_code == 403
        missing = http.get(f"{server}/v1/saved-searches/999/events", headers=scene.headers())
        assert missing.status_code == 404 and "no saved search 999" in missing.text
        bad = http.get(url, headers=scene.headers() | {"Last-Event-ID": "yesterday"})
        assert bad.status_code == 422 and "Last-Event-ID must be an event id" in bad.text


# -- GraphQL subscriptions -----------------------------------------------------------

SUBSCRIBE = """subscription($id: ID!, $after: ID) {
  savedSearchTransitions(id: $id, after: $after) { id search kind uri tx }
}"""


def subscription(search: int, after: str | None = None, op: str = "1") -> dict[str, Any]:
    variables = {"id": str(search), "after": after}
    return {"id": op, "type": "subscribe", "payload": {"query": SUBSCRIBE, "variables": variables}}


def subscribe(ws: Any, search: int, after: str | None = None) -> None:
    ws.send_json(subscription(search, after))


def test_a_subscription_receives_transitions_and_resumes_after_an_id(scene: Scene) -> None:
    with TestClient(create_app(make_service(scene.store))) as client:
        with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
            ws.send_json({"type": "connection_init",
                          "payload": {"Authorization": f"Bearer {scene.reader}"}})  # fmt: skip
            assert ws.receive_json()["type"] == "connection_ack"
            subscribe(ws, scene.search)
            time.sleep(0.3)  # subscribed "from now" before the change
            scene.enter()
            entered = ws.receive_json()
            scene.leave()
            left = ws.receive_json()
            ws.send_json({"id": "1", "type": "complete"})
        notices = [m["payload"]["data"]["savedSearchTransitions"] for m in (entered, left)]
        assert [(n["kind"], n["uri"], n["search"]) for n in notices] == [
            ("ENTERED", MODEL, str(scene.search)),
            ("LEFT", MODEL, str(scene.search)),
        ]
        with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
            ws.send_json({"type": "connection_init",
                          "payload": {"Authorization": f"Bearer {scene.reader}"}})  # fmt: skip
            assert ws.receive_json()["type"] == "connection_ack"
            subscribe(ws, scene.search, after=notices[0]["id"])
            again = ws.receive_json()["payload"]["data"]["savedSearchTransitions"]
            assert again == notices[1]


def test_a_subscription_needs_a_token_that_may_read(scene: Scene) -> None:
    from starlette.websockets import WebSocketDisconnect

    with TestClient(create_app(make_service(scene.store))) as client:
        with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
            ws.send_json({"type": "connection_init", "payload": {"Authorization": "Bearer nope"}})
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_json()
            assert closed.value.code == 4403
        with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
            ws.send_json({"type": "connection_init",
                          "payload": {"Authorization": f"Bearer {scene.reader}"}})  # fmt: skip
            assert ws.receive_json()["type"] == "connection_ack"
            subscribe(ws, 999)
            error = ws.receive_json()
            assert error["type"] == "error" or "errors" in error["payload"]
            assert "no saved search 999" in json.dumps(error)


@needs_ws
def test_a_subscription_over_a_real_server_and_websocket(scene: Scene, server: str) -> None:
    """graphql-transport-ws through uvicorn, with aiohttp's websocket client."""

    async def session() -> list[dict[str, Any]]:
        ws_url = server.replace("http", "ws") + "/graphql"
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(ws_url, protocols=["graphql-transport-ws"]) as ws,
        ):
            auth = {"Authorization": f"Bearer {scene.reader}"}
            await ws.send_json({"type": "connection_init", "payload": auth})
            assert (await ws.receive_json(timeout=10))["type"] == "connection_ack"
            await ws.send_json(subscription(scene.search, after="0"))
            await asyncio.to_thread(scene.enter)
            await asyncio.to_thread(scene.leave)
            return [await ws.receive_json(timeout=10) for _ in range(2)]

    messages = asyncio.run(session())
    kinds = [m["payload"]["data"]["savedSearchTransitions"]["kind"] for m in messages]
    assert kinds == ["ENTERED", "LEFT"]


# -- webhook routes ------------------------------------------------------------------


@pytest.fixture
def client(scene: Scene) -> Iterator[TestClient]:
    with TestClient(create_app(make_service(scene.store))) as c:
        yield c


def test_webhooks_are_created_listed_shown_and_deleted_by_their_owner(
    scene: Scene, client: TestClient
) -> None:
    base = f"/v1/saved-searches/{scene.search}/webhooks"
    made = client.post(base, json={"url": "http://127.0.0.1:9/x"}, headers=scene.headers())
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["secret"].startswith("whsec_")
    hook = body["webhook"]
    assert (hook["search"], hook["owner"], hook["active"]) == (scene.search, "alice", True)
    assert "secret" not in hook and "token_id" not in hook

    listed = client.get(base, headers=scene.headers()).json()
    assert [h["id"] for h in listed] == [hook["id"]]
    assert client.get(base, headers=scene.headers(scene.other)).json() == []  # not bob's
    shown = client.get(f"/v1/webhooks/{hook['id']}", headers=scene.headers()).json()
    assert shown["deliveries"] == {"pending": 0, "delivered": 0, "dead": 0, "withheld": 0}
    assert client.get(f"/v1/webhooks/{hook['id']}", headers=scene.headers(scene.other)
                      ).status_code == 403  # fmt: skip
    assert client.get(f"/v1/webhooks/{hook['id']}", headers=scene.headers(scene.admin)
                      ).status_code == 200  # fmt: skip

    scene.enter()
    Webhooks(scene.store).fan_out()
    deliveries = client.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=scene.headers())
    assert [(d["status"], d["attempts"]) for d in deliveries.json()] == [("pending", 0)]

    assert client.delete(f"/v1/webhooks/{hook['id']}", headers=scene.headers(scene.other)
                         ).status_code == 403  # fmt: skip
    assert client.delete(f"/v1/webhooks/{hook['id']}", headers=scene.headers()).status_code == 200
    assert client.get(f"/v1/webhooks/{hook['id']}", headers=scene.headers()).status_code == 404
    assert Webhooks(scene.store).deliveries(hook["id"]) == []


def test_webhook_routes_refuse_bad_input_with_the_reason(scene: Scene, client: TestClient) -> None:
    base = f"/v1/saved-searches/{scene.search}/webhooks"
    bad_url = client.post(base, json={"url": "ftp://x"}, headers=scene.headers())
    assert bad_url.status_code == 422 and "must be http:// or https://" in bad_url.json()["error"]
    extra = client.post(base, json={"url": "http://x", "secret": "s"}, headers=scene.headers())
    assert extra.status_code == 422
    missing = client.post("/v1/saved-searches/999/webhooks", json={"url": "http://x"},
                          headers=scene.headers())  # fmt: skip
    assert missing.status_code == 404
    # Only the search's owner (or an admin) may attach a webhook to it.
    bobs = client.post(base, json={"url": "http://x"}, headers=scene.headers(scene.other))
    assert bobs.status_code == 403 and "belongs to 'alice'" in bobs.json()["error"]
    status = client.get("/v1/webhooks/1/deliveries?status=lost", headers=scene.headers())
    assert status.status_code == 422 and "status must be one of" in status.json()["error"]


def test_replay_needs_admin_and_makes_dead_deliveries_pending(
    scene: Scene, client: TestClient
) -> None:
    hooks = Webhooks(scene.store)
    hook = hooks.create(scene.search, "http://127.0.0.1:9/x", "alice").webhook
    scene.enter()
    hooks.fan_out()
    (delivery,) = hooks.deliveries(hook.id)
    hooks.settle(delivery.id, "dead", 8, error="gave up after 8 attempts: HTTP 500")
    assert client.post("/v1/webhooks/replay", json={}, headers=scene.headers()).status_code == 403
    replayed = client.post("/v1/webhooks/replay", json={"webhook": hook.id},
                           headers=scene.headers(scene.admin))  # fmt: skip
    assert replayed.json() == {"replayed": 1}
    (again,) = hooks.deliveries(hook.id)
    assert (again.id, again.status, again.attempts) == (delivery.id, "pending", 0)


def test_a_stopping_server_ends_its_event_streams(tmp_path: Path) -> None:
    """SIGTERM to `mlgraph serve` with a stream open: the stream ends, the process exits
    (uvicorn would otherwise wait for the never-ending response)."""
    url = f"sqlite:///{tmp_path / 'serve.db'}"
    with Store.open(url) as store:
        search = SavedSearches(store).save("alice", "models", "type == 'Model'").id
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = os.environ | {"MLGRAPH_STORE_URL": url, "MLGRAPH_WORKERS": "false",
                        "MLGRAPH_DATA_DIR": str(tmp_path), "MLGRAPH_PORT": str(port)}  # fmt: skip
    env.pop("MLGRAPH_CONFIG", None)
    server = subprocess.Popen([sys.executable, "-m", "mlgraph.cli", "serve"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        stream = SseReader(f"{base}/v1/saved-searches/{search}/events", {})
        assert stream.status == 200
        started = time.monotonic()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)
        assert time.monotonic() - started < 5
        stream.close()
        # A graceful shutdown (uvicorn then re-raises the signal it caught).
        assert server.returncode == -signal.SIGTERM
        assert server.stderr is not None
        assert "Application shutdown complete" in server.stderr.read().decode()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


CREATE = """mutation($search: ID!, $url: String!) {
  createWebhook(searchId: $search, url: $url) { secret webhook { id search owner active } }
}"""
DELETE = "mutation($id: ID!) { deleteWebhook(id: $id) { id url } }"


def test_webhooks_over_graphql(scene: Scene, client: TestClient) -> None:
    def gql(query: str, token: str, **variables: Any) -> dict[str, Any]:
        response = client.post("/graphql", json={"query": query, "variables": variables},
                               headers=scene.headers(token))  # fmt: skip
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    made = gql(CREATE, scene.reader, search=str(scene.search), url="http://127.0.0.1:9/x")
    created = made["data"]["createWebhook"]
    assert created["secret"].startswith("whsec_")
    hook = created["webhook"]
    assert (hook["search"], hook["owner"], hook["active"]) == (str(scene.search), "alice", True)

    bobs = gql(CREATE, scene.other, search=str(scene.search), url="http://127.0.0.1:9/x")
    assert bobs["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    bad = gql(CREATE, scene.reader, search=str(scene.search), url="gopher://x")
    assert "must be http:// or https://" in bad["errors"][0]["message"]
    assert gql(DELETE, scene.other, id=hook["id"])["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    gone = gql(DELETE, scene.reader, id=hook["id"])
    assert gone["data"]["deleteWebhook"] == {"id": hook["id"], "url": "http://127.0.0.1:9/x"}
    assert Webhooks(scene.store).listing() == []
